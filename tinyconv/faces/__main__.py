"""Command line: a face database (enrol, verify, identify, list, remove), the LFW benchmark, and fine-tuning.

    python -m tinyconv.faces enroll kian kian.jpg kian2.jpg --db faces.h5
    python -m tinyconv.faces verify camera_2.jpg kian --db faces.h5
    python -m tinyconv.faces identify group.jpg --db faces.h5 --annotate group-named.jpg
    python -m tinyconv.faces evaluate --lfw ../shared/data/faces/lfw --plots plots/
    python -m tinyconv.faces train --lfw ../shared/data/faces/lfw --steps 50 -o facenet-tuned.h5

Faces are found by the MTCNN detector (preprocessing mtcnn-flip, the default; see --preprocess of enroll).
identify and verify print one line per face, PHOTO,x0,y0,x1,y1,NAME,DISTANCE (NAME "unknown" when the distance is
not below the threshold). Exit status: 0 yes (a known face; verify: it is NAME), 3 no, 1 error, 2 usage.
"""
import argparse
import inspect
import math
import sys
from pathlib import Path

from tinyconv import weights
from tinyconv.cli import NO, YES, HelpFormatter, nonnegative_float, nonnegative_int, positive_float, \
    positive_int, run_command
from tinyconv.faces.annotate import annotate
from tinyconv.faces.database import FaceDatabase
from tinyconv.faces.evaluation import evaluate
from tinyconv.faces.lfw import read_pairs
from tinyconv.faces.preprocess import parse_preprocessing
from tinyconv.faces.recognition import face_distances, identify, resolve_preprocessing
from tinyconv.faces.thresholds import DEFAULT_PREPROCESS, THRESHOLDS, default_threshold, same_person
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
    database.add_argument("--db", default="faces.h5", help="face database file")
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
    boxes, names, distances = face_distances(args.image, db, load_model(args), preprocess)
    column = distances[:, names.index(args.name)]
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
    print(f"{args.db}: {len(db)} people, model {db.model}, preprocessing {db.preprocess}" if len(db)
          else f"{args.db}: empty", file=sys.stderr)
    for name in db.names():
        print(f"{name},{len(db[name])}")
    return YES


def run_remove(args):
    db = open_database(args)
    db.remove(args.name)
    print(f"removed {args.name}; {len(db)} people left in {args.db}")
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
