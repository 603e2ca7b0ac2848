"""Regenerate the README's style-transfer pictures (docs/images/), all made by `python -m tinyconv.stylize`.

    python scripts/make_readme_pictures.py [--shared ../shared] [--only tubingen:the_scream ...]

For each shared pair: the default run at 512 px (written as a small JPEG, docs/images/stylize_<content>_<style>.jpg);
for The Scream and Shipwreck also the picture beside the Lua/Torch reference (compare_<content>_<style>.jpg, made
by scripts/side_by_side.py). Then measure them: python scripts/measure_stylisation.py. The runs go one after the
other (they share the CPU): about two minutes each on a quiet 2-core machine.
"""
import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from measure_stylisation import PAIRS  # noqa: E402

IMAGES = ROOT / "docs" / "images"
COMPARED = {("tubingen", "the_scream"), ("tubingen", "shipwreck")}


def run(*args):
    print("$ python", " ".join(map(str, args)), file=sys.stderr, flush=True)
    subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, check=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--only", nargs="+", metavar="CONTENT:STYLE", help="only these pairs (default: all five)")
    args = p.parse_args()
    data = args.shared / "data" / "style"
    for content, style, reference in PAIRS:
        if args.only and f"{content}:{style}" not in args.only:
            continue
        out = IMAGES / f"stylize_{content}_{style}.jpg"
        run("-m", "tinyconv.stylize", data / "content" / f"{content}.jpg", data / "styles" / f"{style}.jpg",
            "-o", out)
        if (content, style) in COMPARED:
            run("scripts/side_by_side.py", out, data / "reference_outputs" / reference,
                "-o", IMAGES / f"compare_{content}_{style}.jpg")


if __name__ == "__main__":
    main()
