"""How stylised is a style-transfer result? Ours beside the Lua/Torch reference, measured, not judged by eye.

    python scripts/measure_stylisation.py [--shared ../shared] [--ours docs/images/stylize_{content}_{style}.jpg]

For each of the five shared pairs (content photo x painting), our picture (the --ours pattern) and the reference
output (../shared/data/style/reference_outputs/) are compared, at 512 px on the longest side, with the painting
and the photo:

- style: the distance of the picture's Gram matrices (per position, as in the style cost) to the painting's, at
  VGG16 layers that style transfer does NOT optimise (block1_conv2, block2_conv2, block3_conv3, block4_conv3,
  block5_conv2; the optimised ones are block1..5_conv1 and block4_conv2): ||G - G_painting|| / ||G_painting||
  (Frobenius), averaged over the layers. Lower = closer to the painting's textures.
- colour: the sliced Wasserstein distance between the RGB colours of the picture's pixels and the painting's
  (the mean over 64 fixed random directions of the 1-D earth mover's distance between the projected colours), in
  pixel levels 0..255. Lower = closer to the painting's palette.
- content: ||a - a_photo|| / ||a_photo|| at block4_conv3 (not optimised either) against the photo: how far the
  picture has moved from the photo's structure; higher = less of the photo left.
Each line gives ours, the reference's, and their ratio (ours / reference: below 1 = closer to the painting).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tinyconv import no_grad  # noqa: E402
from tinyconv.files import load_image  # noqa: E402
from tinyconv.models.vgg import vgg16  # noqa: E402
from tinyconv.style.costs import style_gram  # noqa: E402
from tinyconv.style.images import fit_longest, resize  # noqa: E402

PAIRS = [("tubingen", "starry_night", "tubingen_starry.png"), ("tubingen", "the_scream", "tubingen_scream.png"),
         ("tubingen", "composition_vii", "tubingen_composition_vii.png"),
         ("tubingen", "shipwreck", "tubingen_shipwreck.png"), ("golden_gate", "starry_night", "golden_gate_starry.png")]
STYLE_LAYERS = ["block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv2"]
CONTENT_LAYER = "block4_conv3"
SIZE = 512


def at_size(rgb, size=SIZE):
    return resize(rgb, *fit_longest(*rgb.shape[:2], size))


def style_distance(model, rgb, painting_grams):
    with no_grad():
        acts = model.features(model.preprocess(rgb), STYLE_LAYERS)
    return float(np.mean([np.linalg.norm(style_gram(acts[n]).data - painting_grams[n]) /
                          np.linalg.norm(painting_grams[n]) for n in STYLE_LAYERS]))


def colour_distance(rgb, painting, directions=64, levels=256):
    """Sliced Wasserstein-1 distance between the two images' pixel colours (0..255 units)."""
    v = np.random.default_rng(0).standard_normal((directions, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q = np.linspace(0, 1, levels)
    a = np.quantile(rgb.reshape(-1, 3).astype(np.float64) @ v.T, q, axis=0)
    b = np.quantile(painting.reshape(-1, 3).astype(np.float64) @ v.T, q, axis=0)
    return float(np.abs(a - b).mean())


def content_distance(model, rgb, photo):
    photo = resize(photo, *rgb.shape[:2])
    with no_grad():
        a, p = (model.features(model.preprocess(x), [CONTENT_LAYER])[CONTENT_LAYER].data for x in (rgb, photo))
    return float(np.linalg.norm(a - p) / np.linalg.norm(p))


def measure(model, rgb, painting, painting_grams, photo):
    rgb = at_size(rgb)
    return dict(style=style_distance(model, rgb, painting_grams), colour=colour_distance(rgb, painting),
                content=content_distance(model, rgb, photo))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--ours", default="docs/images/stylize_{content}_{style}.jpg",
                   help="our pictures, {content} and {style} replaced by the pair's names (relative to the "
                        "project root or absolute; default %(default)s)")
    p.add_argument("--pairs", nargs="+", metavar="CONTENT:STYLE", help="only these pairs (default: all five)")
    args = p.parse_args()
    data = args.shared / "data" / "style"
    model = vgg16()
    pairs = [pair for pair in PAIRS if not args.pairs or f"{pair[0]}:{pair[1]}" in args.pairs]
    print("pair | style: ours / ref (ratio) | colour: ours / ref (ratio) | content: ours / ref")
    for content, style, reference in pairs:
        painting = at_size(load_image(data / "styles" / f"{style}.jpg"))
        with no_grad():
            acts = model.features(model.preprocess(painting), STYLE_LAYERS)
        grams = {n: style_gram(acts[n]).data for n in STYLE_LAYERS}
        photo = at_size(load_image(data / "content" / f"{content}.jpg"))
        ours_path = ROOT / args.ours.format(content=content, style=style)
        ours = measure(model, load_image(ours_path), painting, grams, photo)
        ref = measure(model, load_image(data / "reference_outputs" / reference), painting, grams, photo)
        print(f"{content} x {style} | {ours['style']:.3f} / {ref['style']:.3f} ({ours['style'] / ref['style']:.2f}) "
              f"| {ours['colour']:.1f} / {ref['colour']:.1f} ({ours['colour'] / ref['colour']:.2f}) "
              f"| {ours['content']:.3f} / {ref['content']:.3f}", flush=True)


if __name__ == "__main__":
    main()
