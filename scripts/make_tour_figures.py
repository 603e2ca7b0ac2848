"""Regenerate the pictures of docs/tour.md (docs/figures/), all made by tinyconv's own commands.

    python scripts/make_tour_figures.py [--only units|style|roc ...] [--shared ../shared]

Needs the VGG16 and FaceNet weights (fetched on first use) and the data in ../shared/ (read there, never copied).
The jobs run one after the other (they share the CPU); expect some 20-40 minutes on 2 cores in all:

- units_block1..5.jpg: `python -m tinyconv.visualize` for four units of one layer per VGG16 block, over the
  course's face pictures and the style-transfer photos and paintings.
- style_progression.jpg: `python -m tinyconv.stylize --scales 1 --save-every`, Tübingen x The Starry Night, as a strip
  content | style | iterations ... | result.
- roc.png, distances.png: `python -m tinyconv.faces evaluate` on all 6,000 LFW pairs (minutes the first time,
  then seconds from the encoding cache): its ROC curve and the histograms of same-person and different-person
  distances with the chosen threshold.
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tinyconv.files import atomic_write, load_image, save_image  # noqa: E402

FIGURES = ROOT / "docs" / "figures"

# layer, units, image size, ascent size, ascent steps
UNIT_FIGURES = [
    ("block1_conv1", [0, 1, 2, 3], 128, 64, 40),
    ("block2_conv2", [0, 1, 2, 3], 128, 64, 40),
    ("block3_conv3", [0, 1, 2, 3], 128, 96, 40),
    ("block4_conv3", [0, 1, 2, 3], 160, 96, 40),
    ("block5_conv3", [0, 1, 2, 3], 224, 96, 40),
]
STYLE = dict(content="data/style/content/tubingen.jpg", style="data/style/styles/starry_night.jpg", size=224,
             iterations=40, every=10)


def run(*args):
    """Run `python -m ...` from the project root, showing its progress; stop on failure."""
    print("$ python", " ".join(map(str, args)), file=sys.stderr, flush=True)
    subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, check=True)


def unit_figures(shared):
    folders = [shared / "data/faces/coursera", shared / "data/style/content", shared / "data/style/styles"]
    for block, (layer, units, size, ascent, steps) in enumerate(UNIT_FIGURES, 1):
        run("-m", "tinyconv.visualize", layer, "--units", *units, "--images", *folders, "--size", size,
            "--ascent-size", ascent, "--steps", steps, "-o", FIGURES / f"units_block{block}.jpg")


def style_figure(shared, work):
    out = work / "stylized.png"
    run("-m", "tinyconv.stylize", shared / STYLE["content"], shared / STYLE["style"], "-o", out,
        "--size", STYLE["size"], "--scales", 1, "--iterations", STYLE["iterations"], "--save-every", STYLE["every"])
    steps = [(work / f"stylized_1_{i:04d}.png", f"iteration {i}")
             for i in range(STYLE["every"], STYLE["iterations"], STYLE["every"])]
    panels = [(shared / STYLE["content"], "content"), (shared / STYLE["style"], "style"), *steps,
              (out, f"iteration {STYLE['iterations']}")]
    save_image(FIGURES / "style_progression.jpg", strip(panels, height=128))


def strip(panels, height):
    """Images side by side, each scaled to `height` pixels, with a caption under each."""
    images = []
    for path, caption in panels:
        rgb = Image.fromarray(load_image(path))
        images.append((rgb.resize((round(rgb.width * height / rgb.height), height), Image.BILINEAR), caption))
    width = sum(im.width for im, _ in images) + 4 * (len(images) - 1)
    canvas = Image.new("RGB", (width, height + 18), "white")
    draw, x = ImageDraw.Draw(canvas), 0
    for im, caption in images:
        canvas.paste(im, (x, 0))
        draw.text((x + 2, height + 3), caption, fill="black")
        x += im.width + 4
    return np.asarray(canvas)


def roc_figure(shared, work):
    run("-m", "tinyconv.faces", "evaluate", "--lfw", shared / "data/faces/lfw", "--out", work)  # cached encodings
    for made, figure in (("roc", "roc.png"), ("distances", "distances.png")):
        with atomic_write(FIGURES / figure) as tmp:
            shutil.copyfile(work / f"{made}-standardize-crop150.png", tmp)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=("units", "style", "roc"), default=("units", "style", "roc"))
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared data folder")
    args = p.parse_args()
    FIGURES.mkdir(parents=True, exist_ok=True)
    shared = args.shared.resolve()
    with tempfile.TemporaryDirectory() as work:
        if "roc" in args.only:
            roc_figure(shared, Path(work))
        if "style" in args.only:
            style_figure(shared, Path(work))
        if "units" in args.only:
            unit_figures(shared)
    for figure in sorted(FIGURES.iterdir()):
        print(f"{figure.relative_to(ROOT)}: {figure.stat().st_size // 1024} KB", file=sys.stderr)


if __name__ == "__main__":
    main()
