"""Command line: a face database (enrol, verify, identify, list, remove), photo collections (index, search,
cluster, name), the LFW benchmark, and fine-tuning.

    python -m tinyconv.faces enroll kian kian.jpg kian2.jpg --db faces.db
    python -m tinyconv.faces verify camera_2.jpg kian --db faces.db
    python -m tinyconv.faces identify camera_0.jpg --db faces.db
    python -m tinyconv.faces index ~/Pictures --db faces.db --workers 2
    python -m tinyconv.faces search party.jpg --db faces.db
    python -m tinyconv.faces cluster --db faces.db
    python -m tinyconv.faces name 3 ada --db faces.db
    python -m tinyconv.faces migrate faces.h5 faces.db
    python -m tinyconv.faces evaluate --lfw ../shared/data/faces/lfw
    python -m tinyconv.faces train --lfw ../shared/data/faces/lfw --steps 50 -o facenet-tuned.h5
"""
import argparse
import functools
import math
import sys
from pathlib import Path

import numpy as np

from tinyconv import weights
from tinyconv.faces.cluster import cluster_faces
from tinyconv.faces.database import FaceDatabase, migrate
from tinyconv.faces.index import encode_faces, index_photos
from tinyconv.faces.search import SWITCH, FaceSearch, hnsw_available, update_hnsw
from tinyconv.faces.evaluation import evaluate
from tinyconv.faces.lfw import read_pairs
from tinyconv.faces.preprocess import parse_preprocessing
from tinyconv.faces.recognition import verify, who_is_it
from tinyconv.cli import run_command
from tinyconv.faces.thresholds import DEFAULT_PREPROCESS, THRESHOLDS, cluster_threshold, default_threshold
from tinyconv.files import load_image
from tinyconv.faces.train import people_images, save_fine_tuned, train
from tinyconv.models.facenet import facenet

THRESHOLD_HELP = ("same person when the distance between encodings is below this. Default: the threshold "
                  "calibrated on LFW for the preprocessing (the best overall threshold of `evaluate` on the 6,000 "
                  "pairs of pairs.txt; table and method in tinyconv/faces/thresholds.py): "
                  + ", ".join(f"{p} {t}" for p, t in THRESHOLDS.items())
                  + " (plain 'course' keeps the course's 0.7, made for its 96 px face crops)")
PREPROCESS_HELP = (f"course | standardize, optionally -crop<pixels> (default {DEFAULT_PREPROCESS}, or the "
                   "database's own: the best on LFW; 'course' reproduces the Coursera notebook)")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(args.run, args)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tinyconv.faces", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 2)[2])
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default="faces.db", help="face database file (default: faces.db)")
    common.add_argument("--threshold", type=float, help=THRESHOLD_HELP)
    common.add_argument("--preprocess", help=PREPROCESS_HELP)
    common.add_argument("--weights", help="a tinyconv FaceNet weights file (default: the pretrained weights, "
                                          "fetched once)")

    cmd = commands.add_parser("enroll", parents=[common], help="add one or more images of a person")
    cmd.add_argument("name")
    cmd.add_argument("images", nargs="+", metavar="IMG")
    cmd.set_defaults(run=run_enroll)
    cmd = commands.add_parser("verify", parents=[common], help="is IMG the person NAME? (exit status 0 yes, 3 no)")
    cmd.add_argument("image", metavar="IMG")
    cmd.add_argument("name")
    cmd.set_defaults(run=run_verify)
    cmd = commands.add_parser("identify", parents=[common], help="who in the database is IMG?")
    cmd.add_argument("image", metavar="IMG")
    cmd.set_defaults(run=run_identify)
    cmd = commands.add_parser("list", parents=[common], help="the people in the database")
    cmd.set_defaults(run=run_list)
    cmd = commands.add_parser("remove", parents=[common], help="forget a person")
    cmd.add_argument("name")
    cmd.set_defaults(run=run_remove)

    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--db", default="faces.db", help="face database file (default: faces.db)")
    network = argparse.ArgumentParser(add_help=False)
    network.add_argument("--weights", help="a tinyconv FaceNet weights file (default: the pretrained weights, "
                                           "fetched once)")
    cmd = commands.add_parser("index", parents=[database, network],
                              help="find, encode and store every face of the photos in folders (resumable)")
    cmd.add_argument("folders", nargs="+", metavar="DIR")
    cmd.add_argument("--preprocess", help=PREPROCESS_HELP)
    cmd.add_argument("--workers", type=int, default=1, metavar="N", help="processes on this machine (default 1)")
    cmd.add_argument("--dask", metavar="ADDRESS",
                     help="run detection and encoding on this Dask scheduler (e.g. tcp://10.0.0.5:8786); "
                          "needs `pip install tinyconv[dask]` here and tinyconv on the workers")
    cmd.set_defaults(run=run_index)
    cmd = commands.add_parser("search", parents=[database, network],
                              help="the indexed photos that show the person (or each person) in PHOTO")
    cmd.add_argument("photo", metavar="PHOTO")
    cmd.add_argument("--threshold", type=float, help=THRESHOLD_HELP)
    cmd.add_argument("--limit", type=int, default=50, metavar="N",
                     help="at most N photos per face of PHOTO, nearest first (default 50)")
    cmd.set_defaults(run=run_search)
    cmd = commands.add_parser("cluster", parents=[database],
                              help="group the faces that have no name yet (Chinese whispers)")
    cmd.add_argument("--threshold", type=float,
                     help="faces closer than this are linked (default: chosen on LFW for the preprocessing, see "
                          "tinyconv/faces/thresholds.py)")
    cmd.add_argument("--min-faces", type=int, default=2, metavar="K",
                     help="list the clusters of at least K faces (default 2)")
    cmd.set_defaults(run=run_cluster)
    cmd = commands.add_parser("name", parents=[database], help="turn cluster CLUSTER into the person NAME")
    cmd.add_argument("cluster", metavar="CLUSTER")
    cmd.add_argument("name", metavar="NAME")
    cmd.set_defaults(run=run_name)
    cmd = commands.add_parser("migrate", help="copy an old HDF5 face database (tinyconv 0.1) into a new SQLite one")
    cmd.add_argument("old", metavar="OLD.h5")
    cmd.add_argument("new", metavar="NEW.db")
    cmd.set_defaults(run=run_migrate)

    cmd = commands.add_parser("evaluate", parents=[common], help="LFW 10-fold verification accuracy, AUC, ROC")
    cmd.add_argument("--lfw", required=True, metavar="DIR", help="LFW folder (pairs.txt, lfw-deepfunneled/)")
    cmd.add_argument("--pairs-per-fold", type=int, metavar="K", help="use only K pairs of each fold (quick)")
    cmd.add_argument("--out", default=".", metavar="DIR", help="where to write the ROC and histogram PNGs")
    cmd.add_argument("--cache", metavar="DIR", help="encoding cache folder (default $TINYCONV_HOME/cache)")
    cmd.set_defaults(run=run_evaluate)

    cmd = commands.add_parser("train", parents=[common], help="fine-tune with the triplet loss on LFW people")
    cmd.add_argument("--lfw", required=True, metavar="DIR", help="LFW folder (pairs.txt, lfw-deepfunneled/)")
    cmd.add_argument("-o", "--out", required=True, help="where to save the fine-tuned weights file")
    cmd.add_argument("--steps", type=int, default=20)
    cmd.add_argument("--lr", type=float, default=1e-5, help="Adam learning rate (default 1e-5)")
    cmd.add_argument("--people", type=int, default=10, help="people per batch (default 10)")
    cmd.add_argument("--images-per-person", type=int, default=3, help="(default 3)")
    cmd.add_argument("--alpha", type=float, default=0.5,
                     help="triplet margin (default 0.5: with the paper's 0.2 most small batches of the pretrained "
                          "network have no triplet inside the margin)")
    cmd.add_argument("--train-bn", action="store_true", help="also train batch norm (frozen by default)")
    cmd.add_argument("--eval-pairs-per-fold", type=int, default=20, metavar="K",
                     help="LFW accuracy before/after on K pairs per fold; their people are left out of training")
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--cache", metavar="DIR", help="encoding cache folder (default $TINYCONV_HOME/cache)")
    cmd.set_defaults(run=run_train)
    return parser


def load_model(args):
    return facenet(args.weights)


def open_database(args, must_exist=True):
    db = FaceDatabase(args.db)
    if must_exist and not len(db):
        raise ValueError(f"{args.db}: the database is empty (or missing): enrol someone first")
    return db


def threshold_for(args, preprocess):
    return args.threshold if args.threshold is not None else default_threshold(preprocess)


def run_enroll(args):
    db = open_database(args, must_exist=False)
    if args.preprocess:
        parse_preprocessing(args.preprocess)
        db.check_preprocessing(args.preprocess)
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: no such image file")
    db.enroll(args.name, args.images, load_model(args), args.preprocess)
    print(f"enrolled {args.name}: {len(db[args.name])} encoding(s); {len(db)} people in {args.db} "
          f"(preprocessing {db.preprocess})")
    return 0


def run_verify(args):
    db = open_database(args)
    if args.name not in db:
        raise ValueError(f"{args.db}: no one named {args.name!r} in the database")
    preprocess = args.preprocess or db.preprocess
    threshold = threshold_for(args, preprocess)
    distance, door_open = verify(args.image, args.name, db, load_model(args), threshold, preprocess)
    print(f"distance: {distance:.4f} (threshold {threshold:.3f})")
    return 0 if door_open else 3


def run_identify(args):
    db = open_database(args)
    preprocess = args.preprocess or db.preprocess
    threshold = threshold_for(args, preprocess)
    distance, identity = who_is_it(args.image, db, load_model(args), threshold, preprocess)
    verdict = identity if distance <= threshold else "not in the database"
    print(f"identity: {verdict} (nearest: {identity}, distance {distance:.4f}, threshold {threshold:.3f})")
    return 0


def run_list(args):
    db = open_database(args, must_exist=False)
    if not len(db):
        print(f"{args.db}: empty")
        return 0
    print(f"{args.db}: {len(db)} people, model {db.model}, preprocessing {db.preprocess}")
    for name in db.names():
        print(f"{name}\t{len(db[name])} encoding(s)")
    return 0


def run_remove(args):
    db = open_database(args)
    db.remove(args.name)
    print(f"removed {args.name}; {len(db)} people left in {args.db}")
    return 0


def positive(value, what):
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be a positive number, not {value}")
    return value


def run_index(args):
    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, not {args.workers}")
    db = FaceDatabase(args.db)
    preprocess = args.preprocess or db.preprocess or DEFAULT_PREPROCESS
    parse_preprocessing(preprocess)
    db.check_preprocessing(preprocess)
    weights_path = str(Path(args.weights).resolve()) if args.weights else None
    if weights_path and not Path(weights_path).is_file():
        raise FileNotFoundError(f"{args.weights}: no such weights file")
    load_model = functools.partial(facenet, weights_path)
    executor, workers = None, args.workers
    if args.dask:
        try:
            from distributed import Client
        except ImportError:
            raise ValueError("--dask needs Dask: pip install -e \".[dask]\"") from None
        client = Client(args.dask, timeout="20s")
        workers = max(1, sum(w["nthreads"] for w in client.scheduler_info()["workers"].values()))
        executor = client.get_executor(pure=False)
    try:
        counts = index_photos(db, args.folders, load_model, preprocess, workers, executor,
                              report=lambda line: print(line, file=sys.stderr))
    finally:
        if args.dask:
            client.close()
    total = db.counts()
    if total["faces"] >= SWITCH and hnsw_available():
        update_hnsw(db)
    seconds = max(counts["seconds"], 1e-9)
    print(f"indexed {counts['photos']} photos ({counts['faces']} faces) in {counts['seconds']:.1f} s: "
          f"{counts['photos'] / seconds:.2f} photos/s, {counts['faces'] / seconds:.2f} faces/s; "
          f"{counts['already']} already indexed, {counts['problems']} skipped with a problem; "
          f"{args.db}: {total['photos']} photos, {total['faces']} faces, {total['unnamed']} without a name")
    return 0


def run_search(args):
    db = open_database(args, must_exist=False)
    if not db.counts()["faces"]:
        raise ValueError(f"{args.db}: no faces yet: index some photos first")
    if args.limit < 1:
        raise ValueError(f"--limit must be at least 1, not {args.limit}")
    threshold = positive(args.threshold, "--threshold") if args.threshold is not None else \
        default_threshold(db.preprocess)
    image = load_image(args.photo)
    model = load_model(args)
    db.check_model(model)
    faces = encode_faces(image, model, db.preprocess)
    if not faces:
        print(f"{args.photo}: no face found", file=sys.stderr)
        return 3
    search = FaceSearch(db)
    found = 0
    for number, (encoding, _, _) in enumerate(faces, 1):
        ids, dist = search.nearest(encoding, 10 * args.limit)
        records = db.face_records(ids[0])
        best = {}  # photo -> (distance, box), nearest face of each photo
        for face, d in zip(ids[0], dist[0]):
            record = records.get(int(face))
            if record is None or record["photo"] is None or d >= threshold:
                continue
            if record["photo"] not in best:
                best[record["photo"]] = (float(d), record["box"])
        for photo, (d, box) in list(best.items())[:args.limit]:
            box = ",".join(f"{v:.0f}" for v in box) if box else ",,,"
            print(f"{number},{d:.4f},{box},{photo}")
            found += 1
    return 0 if found else 3


def run_cluster(args):
    db = open_database(args, must_exist=False)
    if args.min_faces < 1:
        raise ValueError(f"--min-faces must be at least 1, not {args.min_faces}")
    ids, encodings = db.faces("person IS NULL")
    if not len(ids):
        raise ValueError(f"{args.db}: no faces without a name: index some photos first")
    threshold = positive(args.threshold, "--threshold") if args.threshold is not None else \
        cluster_threshold(db.preprocess)
    labels = cluster_faces(encodings, threshold) + 1
    db.set_clusters(ids, labels)
    sizes = db.clusters()
    shown = {c: n for c, n in sizes.items() if n >= args.min_faces}
    examples = db.face_records([ids[np.argmax(labels == c)] for c in shown])
    by_cluster = {record["cluster"]: record for record in examples.values()}
    for cluster, n in shown.items():
        print(f"{cluster},{n},{by_cluster[cluster]['photo'] or ''}")
    print(f"{len(ids)} faces without a name: {len(sizes)} clusters at threshold {threshold:.3f}, {len(shown)} of "
          f"{args.min_faces} faces or more (CLUSTER,FACES,EXAMPLE PHOTO above); name one with "
          f"`python -m tinyconv.faces name CLUSTER NAME --db {args.db}`", file=sys.stderr)
    return 0


def run_name(args):
    db = open_database(args, must_exist=False)
    try:
        cluster = int(args.cluster)
    except ValueError:
        raise ValueError(f"no cluster {args.cluster!r}: a cluster is a number shown by `cluster`") from None
    faces = db.name_cluster(cluster, args.name)
    print(f"{args.name}: {faces} faces of cluster {cluster}; {len(db[args.name])} encodings in all")
    return 0


def run_migrate(args):
    people, encodings = migrate(args.old, args.new)
    print(f"migrated {people} people ({encodings} encodings) from {args.old} to {args.new}")
    return 0


def run_evaluate(args):
    preprocess = args.preprocess or DEFAULT_PREPROCESS
    parse_preprocessing(preprocess)
    read_pairs(args.lfw, args.pairs_per_fold)  # a wrong folder fails before the model loads
    result = evaluate(load_model(args), args.lfw, preprocess, args.pairs_per_fold, args.out, args.cache)
    print("\n".join(result.lines()))
    return 0


def run_train(args):
    preprocess = args.preprocess or DEFAULT_PREPROCESS
    parse_preprocessing(preprocess)
    held_out = read_pairs(args.lfw, args.eval_pairs_per_fold)
    people = people_images(args.lfw, exclude={Path(p).parent.name for p in held_out.left + held_out.right})
    if not Path(args.out).resolve().parent.is_dir():
        raise FileNotFoundError(f"{args.out}: the folder {Path(args.out).parent} does not exist")
    base = args.weights or weights.ensure("facenet")
    model = facenet(base)
    print(f"training on {len(people)} people with several images; evaluating on {len(held_out)} pairs of "
          f"other people", file=sys.stderr)
    before = evaluate(model, args.lfw, preprocess, args.eval_pairs_per_fold, None, args.cache)
    losses = train(model, people, args.steps, preprocess, args.lr, args.people, args.images_per_person,
                   args.alpha, not args.train_bn, args.seed)
    after = evaluate(model, args.lfw, preprocess, args.eval_pairs_per_fold, None, args.cache)
    save_fine_tuned(args.out, model, base, f"triplet loss, {args.steps} steps of {args.people}x"
                    f"{args.images_per_person} LFW images, Adam lr {args.lr}, alpha {args.alpha}, "
                    f"batch norm {'trained' if args.train_bn else 'frozen'}, preprocessing {preprocess}")
    done = [x for x in losses if not math.isnan(x)]
    head, tail = done[:max(1, len(done) // 4)], done[-max(1, len(done) // 4):]
    if done:
        print(f"loss: first steps {sum(head) / len(head):.4f}, last steps {sum(tail) / len(tail):.4f}")
    print(f"LFW accuracy on {before.pairs} pairs: before {100 * before.accuracy:.2f}% ± "
          f"{100 * before.accuracy_std:.2f}, after {100 * after.accuracy:.2f}% ± {100 * after.accuracy_std:.2f}")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
