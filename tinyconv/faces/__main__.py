"""Command line: a face database (enrol, verify, identify, list, remove), photo collections (index, search,
cluster, name), the LFW benchmark, and fine-tuning.

    python -m tinyconv.faces enroll kian kian.jpg kian2.jpg --db faces.db
    python -m tinyconv.faces verify camera_2.jpg kian --db faces.db
    python -m tinyconv.faces identify group.jpg --db faces.db --annotate group-named.jpg
    python -m tinyconv.faces index ~/Pictures --db faces.db --workers 2
    python -m tinyconv.faces search party.jpg --db faces.db
    python -m tinyconv.faces cluster --db faces.db
    python -m tinyconv.faces name 3 ada --db faces.db
    python -m tinyconv.faces migrate faces.h5 faces.db
    python -m tinyconv.faces evaluate --lfw ../shared/data/faces/lfw --plots plots/
    python -m tinyconv.faces train --lfw ../shared/data/faces/lfw --steps 50 -o facenet-tuned.h5

Faces are found by the MTCNN detector (preprocessing mtcnn-flip, the default; see --preprocess of enroll).
identify and verify print one line per face, PHOTO,x0,y0,x1,y1,NAME,DISTANCE (NAME "unknown" when the distance is
not below the threshold). search prints FACE,DISTANCE,x0,y0,x1,y1,PHOTO lines, cluster CLUSTER,FACES,PHOTO lines.
Exit status: 0 yes (a known face; verify: it is NAME; search: a photo found), 3 no, 1 error, 2 usage.
"""
import argparse
import functools
import inspect
import math
import sys
from pathlib import Path

import numpy as np

from tinyconv import weights
from tinyconv.cli import NO, YES, HelpFormatter, nonnegative_float, nonnegative_int, positive_float, \
    positive_int, run_command
from tinyconv.faces.annotate import annotate
from tinyconv.faces.cluster import cluster_faces
from tinyconv.faces.database import FaceDatabase, migrate
from tinyconv.faces.index import faces_and_encodings, index_photos
from tinyconv.faces.search import FaceSearch, update_hnsw, use_hnsw
from tinyconv.faces.evaluation import evaluate
from tinyconv.faces.lfw import read_pairs
from tinyconv.faces.preprocess import parse_preprocessing
from tinyconv.faces.recognition import distances_to, identify, resolve_preprocessing
from tinyconv.faces.thresholds import DEFAULT_PREPROCESS, THRESHOLDS, cluster_threshold, default_threshold, \
    same_person
from tinyconv.faces.train import people_images, save_fine_tuned, train
from tinyconv.files import load_image
from tinyconv.models.facenet import facenet

TRAIN = {name: p.default for name, p in inspect.signature(train).parameters.items()
         if p.default is not inspect.Parameter.empty}  # train's defaults are the command line's
THRESHOLD_HELP = ("same person when the distance between encodings is below this. Default: the threshold of the "
                  "database's preprocessing, measured on LFW (tinyconv/faces/thresholds.py: a door's threshold "
                  "with detection, the best overall LFW threshold for the others): "
                  + ", ".join(f"{p} {t}" for p, t in THRESHOLDS.items()))
PREPROCESS_HELP = ("mtcnn (detect each face, FaceNet's crop and standardisation), standardize or course (no "
                   "detection: images that are already face crops, optionally -crop<pixels> for the central box), "
                   "any of them optionally -flip (encode the face and its mirror image); see "
                   "tinyconv/faces/preprocess.py")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(args.run, args)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tinyconv.faces", description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter, epilog=__doc__.split("\n", 2)[2])
    commands = parser.add_subparsers(dest="command", required=True)
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--db", default="faces.db", help="face database file (SQLite)")
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--weights", help="a tinyconv FaceNet weights file (default: the pretrained weights, "
                                         "fetched once)")
    threshold = argparse.ArgumentParser(add_help=False)
    threshold.add_argument("--threshold", type=positive_float, help=THRESHOLD_HELP)
    lfw = argparse.ArgumentParser(add_help=False)
    lfw.add_argument("--lfw", required=True, metavar="DIR", help="LFW folder (pairs.txt, lfw-deepfunneled/)")
    lfw.add_argument("--preprocess", default=DEFAULT_PREPROCESS, help=PREPROCESS_HELP)
    lfw.add_argument("--cache", metavar="DIR", help="encoding cache folder (default: $TINYCONV_HOME/cache)")

    def command(name, parents, run, **kwargs):
        cmd = commands.add_parser(name, parents=parents, formatter_class=HelpFormatter, allow_abbrev=False, **kwargs)
        cmd.set_defaults(run=run)
        return cmd

    cmd = command("enroll", [database, model], run_enroll, help="add one or more photos of a person")
    cmd.add_argument("name", help="the person's name")
    cmd.add_argument("images", nargs="+", metavar="PHOTO", help="photos of this person, one face each")
    cmd.add_argument("--largest", action="store_true", help="a photo with several faces: take the largest "
                                                            "(without it such a photo is refused)")
    cmd.add_argument("--preprocess", help=PREPROCESS_HELP + f". Default: the database's own, or "
                                                            f"{DEFAULT_PREPROCESS} for a new database")
    cmd = command("verify", [database, model, threshold], run_verify,
                  help="is someone in PHOTO the person NAME? (exit status 0 yes, 3 no)")
    cmd.add_argument("image", metavar="PHOTO", help="the photo to check (any face in it may be NAME)")
    cmd.add_argument("name", help="the person claimed")
    cmd = command("identify", [database, model, threshold], run_identify,
                  help="name every face in PHOTO (exit status 0 if one is known, 3 if none)")
    cmd.add_argument("image", metavar="PHOTO", help="a photo of one or several people")
    cmd.add_argument("--annotate", metavar="OUT", help="also write the photo with each face's box, name and "
                                                      "distance drawn on it (.jpg or .png)")
    command("list", [database], run_list, help="the people in the database: NAME,ENCODINGS lines")
    cmd = command("remove", [database], run_remove, help="forget a person")
    cmd.add_argument("name", help="the person to forget")

    cmd = command("index", [database, model], run_index,
                  help="find, encode and store every face of the photos in folders (resumable)")
    cmd.add_argument("folders", nargs="+", metavar="DIR", help="folders of photos (walked recursively)")
    cmd.add_argument("--preprocess", help=PREPROCESS_HELP + f". Default: the database's own, or "
                                                            f"{DEFAULT_PREPROCESS} for a new database")
    cmd.add_argument("--workers", type=positive_int, default=1, metavar="N", help="processes on this machine")
    cmd.add_argument("--batch", type=positive_int, default=8, metavar="B",
                     help="photos per task: their faces go through the network together (faster); an "
                          "interruption loses at most the tasks in flight")
    cmd.add_argument("--dask", metavar="ADDRESS",
                     help="run detection and encoding on this Dask scheduler (e.g. tcp://10.0.0.5:8786); needs "
                          "the extra tinyconv[dask] here and tinyconv on the workers (README: Dask)")
    cmd = command("search", [database, model, threshold], run_search,
                  help="the indexed photos that show the person (or each person) in PHOTO, nearest first")
    cmd.add_argument("photo", metavar="PHOTO", help="a photo of one or several people")
    cmd.add_argument("--limit", type=positive_int, default=50, metavar="N", help="at most N photos per face")
    cmd = command("cluster", [database], run_cluster, help="group the faces that have no name yet "
                                                          "(Chinese whispers)")
    cmd.add_argument("--threshold", type=positive_float,
                     help="faces closer than this are linked (default: chosen on LFW for the preprocessing, "
                          "tinyconv/faces/thresholds.py)")
    cmd.add_argument("--min-faces", type=positive_int, default=2, metavar="K", help="list the clusters of K "
                                                                                    "faces or more")
    cmd = command("name", [database], run_name, help="turn cluster CLUSTER into the person NAME")
    cmd.add_argument("cluster", metavar="CLUSTER", help="a cluster number printed by `cluster`")
    cmd.add_argument("name", metavar="NAME", help="the person's name (new, or someone already known)")
    cmd = command("migrate", [], run_migrate, help="copy an old HDF5 face database (tinyconv 0.1) into a new "
                                                   "SQLite one")
    cmd.add_argument("old", metavar="OLD.h5", help="the HDF5 database")
    cmd.add_argument("new", metavar="NEW.db", help="the SQLite database to create")

    cmd = command("evaluate", [lfw, model], run_evaluate, help="LFW 10-fold verification accuracy, AUC, ROC")
    cmd.add_argument("--pairs-per-fold", type=positive_int, metavar="K",
                     help="use only K pairs of each fold, K >= 2 (quick; default: all 600)")
    cmd.add_argument("--plots", metavar="DIR", help="write the ROC curve and the distance histograms as PNG here")

    cmd = command("train", [lfw, model], run_train, help="fine-tune with the triplet loss on LFW people")
    cmd.add_argument("-o", "--output", required=True, help="where to save the fine-tuned weights file")
    cmd.add_argument("--steps", type=positive_int, default=TRAIN["steps"], help="training steps (batches)")
    cmd.add_argument("--lr", type=positive_float, default=TRAIN["lr"], help="Adam learning rate")
    cmd.add_argument("--people", type=positive_int, default=TRAIN["n_people"], help="people per batch")
    cmd.add_argument("--images-per-person", type=positive_int, default=TRAIN["images_per_person"],
                     help="images of each person in a batch")
    cmd.add_argument("--alpha", type=nonnegative_float, default=TRAIN["alpha"],
                     help="triplet margin (with the paper's 0.2 most small batches of the pretrained network "
                          "have no triplet inside the margin)")
    cmd.add_argument("--train-bn", action="store_true", help="also train batch norm (frozen by default)")
    cmd.add_argument("--eval-pairs-per-fold", type=positive_int, default=20, metavar="K",
                     help="LFW accuracy before/after on K pairs per fold; their people are left out of training")
    cmd.add_argument("--seed", type=nonnegative_int, default=TRAIN["seed"], help="random seed of the batches")
    return parser


def load_model(args):
    return facenet(args.weights)


def open_database(args, must_exist=True):
    db = FaceDatabase(args.db)
    if must_exist and not len(db):
        raise ValueError(f"{args.db}: the database is empty (or missing): enrol someone first")
    return db


def face_line(photo, box, name, distance):
    """The parseable line of one face: PHOTO,x0,y0,x1,y1,NAME,DISTANCE (pixels rounded to integers)."""
    return ",".join([str(photo), *(str(round(float(v))) for v in box), name, f"{distance:.4f}"])


def run_enroll(args):
    db = open_database(args, must_exist=False)
    if args.preprocess:
        parse_preprocessing(args.preprocess)
        db.check_preprocessing(args.preprocess)
    db.enroll(args.name, args.images, load_model(args), args.preprocess, pick="largest" if args.largest else "one")
    print(f"enrolled {args.name}: {len(db[args.name])} encoding(s); {len(db)} people in {args.db} "
          f"(preprocessing {db.preprocess})")
    return YES


def run_verify(args):
    db = open_database(args)
    if args.name not in db:
        raise ValueError(f"{args.db}: no one named {args.name!r} in the database")
    preprocess = resolve_preprocessing(db)
    threshold = default_threshold(preprocess) if args.threshold is None else args.threshold
    boxes, column = distances_to(args.image, args.name, db, load_model(args), preprocess)
    face = int(column.argmin())
    yes = same_person(column[face], threshold)
    print(face_line(args.image, boxes[face], args.name if yes else "unknown", column[face]))
    verdict = f"It's {args.name}, welcome in!" if yes else f"It's not {args.name}, please go away"
    print(f"{verdict} (nearest of {len(boxes)} face(s): distance {column[face]:.4f}, threshold {threshold})",
          file=sys.stderr)
    return YES if yes else NO


def run_identify(args):
    db = open_database(args)
    if args.annotate:
        check_output(args.annotate)
    matches = identify(args.image, db, load_model(args), args.threshold)
    for match in matches:
        print(face_line(args.image, match.box, match.nearest if match.known else "unknown", match.distance))
    if args.annotate:
        annotate(args.annotate, load_image(args.image), matches)
        print(f"wrote {args.annotate}", file=sys.stderr)
    return YES if any(match.known for match in matches) else NO


def run_list(args):
    db = open_database(args, must_exist=False)
    counts = db.counts()
    print(f"{args.db}: {counts['people']} people, {counts['faces']} faces ({counts['unnamed']} without a name), "
          f"model {db.model}, preprocessing {db.preprocess}" if counts["faces"] else f"{args.db}: empty",
          file=sys.stderr)
    for name in db.names():
        print(f"{name},{len(db[name])}")
    return YES


def run_remove(args):
    db = open_database(args)
    db.remove(args.name)
    print(f"removed {args.name}; {len(db)} people left in {args.db}")
    return YES


def run_index(args):
    db = FaceDatabase(args.db)
    preprocess = args.preprocess or db.preprocess or DEFAULT_PREPROCESS
    parse_preprocessing(preprocess)
    db.check_preprocessing(preprocess)
    weights_path = str(Path(args.weights).resolve()) if args.weights else None
    if weights_path and not Path(weights_path).is_file():
        raise FileNotFoundError(f"{args.weights}: no such weights file")
    load = functools.partial(facenet, weights_path)
    executor, workers = None, args.workers
    if args.dask:
        try:
            from distributed import Client
        except ImportError:
            raise ValueError('--dask needs Dask: pip install -e ".[dask]"') from None
        client = Client(args.dask, timeout="20s")
        workers = max(1, sum(w["nthreads"] for w in client.scheduler_info()["workers"].values()))
        executor = client.get_executor(pure=False)
    try:
        counts = index_photos(db, args.folders, load, preprocess, workers, executor,
                              report=lambda line: print(line, file=sys.stderr), batch=args.batch)
    finally:
        if args.dask:
            client.close()
    total = db.counts()
    if use_hnsw(total["faces"]):  # the graph follows the additions now, not at the next search
        update_hnsw(db)
    seconds = max(counts["seconds"], 1e-9)
    print(f"indexed {counts['photos']} photos ({counts['faces']} faces) in {counts['seconds']:.1f} s: "
          f"{counts['photos'] / seconds:.2f} photos/s, {counts['faces'] / seconds:.2f} faces/s; "
          f"{counts['already']} already indexed, {counts['problems']} skipped with a problem; "
          f"{args.db}: {total['photos']} photos, {total['faces']} faces, {total['unnamed']} without a name")
    return YES


def run_search(args):
    db = FaceDatabase(args.db)
    if not db.counts()["faces"]:
        raise ValueError(f"{args.db}: no faces yet: index some photos first")
    threshold = default_threshold(db.preprocess) if args.threshold is None else args.threshold
    image = load_image(args.photo)
    model = load_model(args)
    db.check_model(model)
    faces = faces_and_encodings(image, model, db.preprocess)
    if not faces:
        print(f"{args.photo}: no face found", file=sys.stderr)
        return NO
    search = FaceSearch(db)
    found = 0
    for number, (encoding, _, _) in enumerate(faces, 1):
        ids, dist = search.nearest(encoding, 10 * args.limit)
        records = db.face_records(ids[0])
        best = {}  # photo -> (distance, box) of its nearest face
        for face, d in zip(ids[0], dist[0]):
            record = records.get(int(face))
            if record is not None and record["photo"] is not None and same_person(d, threshold):
                best.setdefault(record["photo"], (float(d), record["box"]))
        for photo, (d, box) in list(best.items())[:args.limit]:
            print(f"{number},{d:.4f},{','.join(f'{v:.0f}' for v in box) if box else ',,,'},{photo}")
            found += 1
    return YES if found else NO


def run_cluster(args):
    db = FaceDatabase(args.db)
    ids, encodings = db.faces("person IS NULL")
    if not len(ids):
        raise ValueError(f"{args.db}: no faces without a name: index some photos first")
    threshold = cluster_threshold(db.preprocess) if args.threshold is None else args.threshold
    labels = cluster_faces(encodings, threshold) + 1
    db.set_clusters(ids, labels)
    shown = {c: n for c, n in db.clusters().items() if n >= args.min_faces}
    examples = db.face_records([ids[np.argmax(labels == c)] for c in shown])
    photo = {record["cluster"]: record["photo"] for record in examples.values()}
    for cluster, n in shown.items():
        print(f"{cluster},{n},{photo.get(cluster) or ''}")
    print(f"{len(ids)} faces without a name: {labels.max()} clusters at threshold {threshold}, {len(shown)} of "
          f"{args.min_faces} faces or more; name one with `python -m tinyconv.faces name CLUSTER NAME --db "
          f"{args.db}`", file=sys.stderr)
    return YES


def run_name(args):
    db = FaceDatabase(args.db)
    try:
        cluster = int(args.cluster)
    except ValueError:
        raise ValueError(f"no cluster {args.cluster!r}: a cluster is a number printed by `cluster`") from None
    faces = db.name_cluster(cluster, args.name)
    print(f"{args.name}: {faces} faces of cluster {cluster}; {len(db[args.name])} encodings in all")
    return YES


def run_migrate(args):
    people, encodings = migrate(args.old, args.new)
    print(f"migrated {people} people ({encodings} encodings) from {args.old} to {args.new}")
    return YES


def run_evaluate(args):
    parse_preprocessing(args.preprocess)
    read_pairs(args.lfw, args.pairs_per_fold)  # a wrong folder or K fails before the model loads
    result = evaluate(load_model(args), args.lfw, args.preprocess, args.pairs_per_fold, args.plots, args.cache)
    print("\n".join(result.lines()))
    return YES


def run_train(args):
    parse_preprocessing(args.preprocess)
    held_out = read_pairs(args.lfw, args.eval_pairs_per_fold)
    people = people_images(args.lfw, exclude={Path(p).parent.name for p in held_out.left + held_out.right})
    check_output(args.output)
    base = args.weights or weights.ensure("facenet")
    model = facenet(base)
    print(f"training on {len(people)} people with several images; evaluating on {len(held_out)} pairs of "
          f"other people", file=sys.stderr)
    before = evaluate(model, args.lfw, args.preprocess, args.eval_pairs_per_fold, None, args.cache)
    losses = train(model, people, args.steps, args.preprocess, args.lr, args.people, args.images_per_person,
                   args.alpha, not args.train_bn, args.seed)
    after = evaluate(model, args.lfw, args.preprocess, args.eval_pairs_per_fold, None, args.cache)
    save_fine_tuned(args.output, model, base, f"triplet loss, {args.steps} steps of {args.people}x"
                    f"{args.images_per_person} LFW images, Adam lr {args.lr}, alpha {args.alpha}, "
                    f"batch norm {'trained' if args.train_bn else 'frozen'}, preprocessing {args.preprocess}")
    done = [x for x in losses if not math.isnan(x)]
    head, tail = done[:max(1, len(done) // 4)], done[-max(1, len(done) // 4):]
    if done:
        print(f"loss: first steps {sum(head) / len(head):.4f}, last steps {sum(tail) / len(tail):.4f}")
    print(f"LFW accuracy on {before.pairs} pairs: before {100 * before.accuracy:.2f}% ± "
          f"{100 * before.accuracy_std:.2f}, after {100 * after.accuracy:.2f}% ± {100 * after.accuracy_std:.2f}")
    print(f"saved {args.output}")
    return YES


def check_output(path):
    """Fail before any work when the folder of an output file does not exist."""
    if not Path(path).resolve().parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {Path(path).parent} does not exist")


if __name__ == "__main__":
    sys.exit(main())
