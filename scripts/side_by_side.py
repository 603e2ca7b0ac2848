"""Put our style-transfer result beside the Lua/Torch reference output for the README (docs/images/).

    python scripts/side_by_side.py OURS.png REFERENCE.png -o docs/images/compare_tubingen_the_scream.jpg

Both are resized to the same height (default 256 px, so the pair is 512-700 px wide), with a caption strip
under each, and written as a small JPEG.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tinyconv.files import load_image, save_image  # noqa: E402
from tinyconv.style.images import resize  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("ours")
    p.add_argument("reference")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--height", type=int, default=256, help="height of each picture (default %(default)s px)")
    p.add_argument("--captions", nargs=2, default=["tinyconv", "Lua/Torch reference"])
    args = p.parse_args()
    panels = []
    for path, caption in zip((args.ours, args.reference), args.captions):
        rgb = load_image(path)
        rgb = resize(rgb, args.height, round(rgb.shape[1] * args.height / rgb.shape[0]))
        canvas = Image.new("RGB", (rgb.shape[1], args.height + 18), "white")
        canvas.paste(Image.fromarray(rgb), (0, 0))
        ImageDraw.Draw(canvas).text((4, args.height + 3), caption, fill="black")
        panels.append(np.asarray(canvas))
    gap = np.full((args.height + 18, 6, 3), 255, np.uint8)
    save_image(args.output, np.concatenate([panels[0], gap, panels[1]], axis=1))


if __name__ == "__main__":
    main()
