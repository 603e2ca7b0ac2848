"""python -m tinyconv.visualize LAYER --images DIR -o OUT.png: what a unit of VGG16 responds to.

Two views of the same units (channels) of one layer, side by side in one picture:

- Top image patches (Zeiler & Fergus 2013): run every image through the network, find where each unit responds
  most in each image, and cut out the part of the image that position can see (its receptive field). The patches
  of the images where the unit responded most are shown, strongest first. Positions whose field would overhang
  the image (onto the zero padding, which excites edge detectors) are left out while any others exist.
- Activation maximisation (Erhan et al. 2009; Simonyan et al. 2013): start from the training images' mean colour
  with a little noise and follow the gradient of the unit's mean activation (with a leaky ReLU) over the pixels
  (tinyconv's autograd), with small regularisers so that the picture stays natural: random jitter, a slight
  decay towards the mean colour and an occasional blur. The result is stretched to 0..255 for display.

Receptive field: a unit at position i of a layer sees the input pixels i*jump + offset ... i*jump + offset + size - 1
(each axis); `receptive_field` works out (size, jump, offset) from the layers' kernels, strides and paddings.
Errors (unknown layer, unit out of range, empty or unreadable image folder, an output that cannot be written) are
one line `error: ...` and exit status 1; a bad option value is a usage error, exit status 2.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

import tinyconv.functional as F
from tinyconv import Tensor, no_grad, weights
from tinyconv.cli import nonnegative_int, positive_float, positive_int, run_command
from tinyconv.files import check_writable, load_image, save_image
from tinyconv.progress import Progress
from tinyconv.models.vgg import VGG

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
# The defaults of the functions below and of the command line (one place for both).
DEFAULTS = dict(units=(0, 1, 2, 3), top=6, size=128, ascent_size=96, steps=60, step_size=1.5, jitter=4,
                decay=0.01, blur_every=4, blur_sigma=0.5, cell=64, seed=0)
GREY = 128  # the value shown outside the image when a receptive field overhangs it


# ----- receptive fields ---------------------------------------------------------------------------------------------
def layer_geometry(model, layer, size):
    """The sliding windows from the input to `layer`: [(kernel, stride, padding before), ...] for one axis.

    model: a `VGG`; size: the input's side in pixels (needed only to resolve 'same' padding).
    """
    ops = []
    for conv in model.convs_to(layer):
        if conv.name in model.pooled:
            ops.append((2, 2, 0))                                    # the pooling before each block
            size //= 2
        k, s = conv.kernel.shape[0], conv.stride
        (pad, _), _ = F.resolve_padding(conv.padding, (size, size), (k, k), (s, s))
        ops.append((k, s, pad))
        size = (size + 2 * pad - k) // s + 1
    return ops


def receptive_field(ops):
    """(size, jump, offset) of a stack of sliding windows [(kernel, stride, padding before), ...].

    Unit i of the last layer sees input pixels offset + i*jump ... offset + i*jump + size - 1. Going through a
    window (k, s, p): unit i covers units i*s - p ... i*s - p + k - 1 of the layer below, so
    jump' = jump*s, offset' = offset - p*jump, size' = size + (k - 1)*jump.
    """
    size, jump, offset = 1, 1, 0
    for k, s, p in ops:
        size, jump, offset = size + (k - 1) * jump, jump * s, offset - p * jump
    return size, jump, offset


def crop_patch(rgb, top, left, size):
    """The size x size box of `rgb` (H, W, 3) at (top, left); parts outside the image are grey."""
    patch = np.full((size, size, 3), GREY, np.uint8)
    h, w = rgb.shape[:2]
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + size, h), min(left + size, w)
    if t1 > t0 and l1 > l0:
        patch[t0 - top:t1 - top, l0 - left:l1 - left] = rgb[t0:t1, l0:l1]
    return patch


# ----- inputs -------------------------------------------------------------------------------------------------------
def image_files(folders):
    """The image files directly inside each folder, sorted; ValueError for a missing or image-less folder."""
    files = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise ValueError(f"{folder}: no such folder")
        found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise ValueError(f"{folder}: no images in this folder (looked for {', '.join(IMAGE_SUFFIXES)})")
        files.extend(found)
    return files


def square_image(path, size):
    """An image file as a (size, size, 3) uint8 array: shorter side resized to `size`, then the centre cut out."""
    rgb = load_image(path)
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    image = Image.fromarray(rgb).resize((max(size, round(w * scale)), max(size, round(h * scale))),
                                        Image.BILINEAR)
    top, left = (image.height - size) // 2, (image.width - size) // 2
    return np.asarray(image)[top:top + size, left:left + size]


def check_units(model, layer, units):
    """The units as a list of ints, each checked against the layer's number of channels."""
    name = model.layer_name(layer)
    width = model.convs_to(name)[-1].kernel.shape[3]
    for unit in units:
        if not 0 <= unit < width:
            raise ValueError(f"unit {unit} is out of range: {name} has {width} units (0..{width - 1})")
    if not units:
        raise ValueError("no units given")
    return [int(u) for u in units]


# ----- the two views ------------------------------------------------------------------------------------------------
def top_patches(model, layer, units, images, top=DEFAULTS["top"], batch_size=8, progress=True):
    """For each unit, the `top` strongest (activation, image index, patch) over `images`, strongest first.

    images: list of (S, S, 3) uint8 arrays of one size S. In each image only the unit's maximum counts (so the
    patches come from different images); its position is mapped back to the receptive field, cut from the image.
    """
    size = images[0].shape[0]
    field, jump, offset = receptive_field(layer_geometry(model, layer, size))
    inside = None   # positions whose field lies inside the image (not on the zero padding), if there are any
    peaks = []                                          # per image: (values (U,), rows (U,), cols (U,))
    meter = Progress(len(images), f"{layer}: top patches") if progress else None
    for start in range(0, len(images), batch_size):
        chunk = np.stack(images[start:start + batch_size])
        with no_grad():
            x = np.concatenate([model.preprocess(rgb) for rgb in chunk])
            a = model.features(x, [layer])[layer].data[..., units]        # (n, h, w, U)
        n, h, w, _ = a.shape
        if inside is None:
            starts = offset + jump * np.arange(h)
            ok = (starts >= 0) & (starts + field <= size)
            inside = (ok[:, None] & ok[None, :]).reshape(h * w) if ok.any() else np.ones(h * w, bool)
        flat = np.where(inside[None, :, None], a.reshape(n, h * w, len(units)), -np.inf)
        best = flat.argmax(axis=1)                                         # (n, U)
        for i in range(n):
            peaks.append((flat[i, best[i], np.arange(len(units))], best[i] // w, best[i] % w))
        if meter:
            meter.update(n)
    if meter:
        meter.close()
    result = {}
    for u, unit in enumerate(units):
        values = np.array([p[0][u] for p in peaks])
        order = np.argsort(-values, kind="stable")[:top]
        result[unit] = [(float(values[i]), int(i),
                         crop_patch(images[i], offset + int(peaks[i][1][u]) * jump,
                                    offset + int(peaks[i][2][u]) * jump, field)) for i in order]
    return result


def maximise_activation(model, layer, units, size=DEFAULTS["ascent_size"], steps=DEFAULTS["steps"],
                        step_size=DEFAULTS["step_size"], jitter=DEFAULTS["jitter"], decay=DEFAULTS["decay"],
                        blur_every=DEFAULTS["blur_every"], blur_sigma=DEFAULTS["blur_sigma"], seed=DEFAULTS["seed"],
                        progress=True):
    """Network inputs (U, size, size, 3), one per unit, that excite the unit's mean activation strongly.

    Gradient ascent on the pixels (the model's input space) with all units in one batch: each step takes the
    gradient of sum_u mean(max(z, 0.1 z)[u, :, :, unit_u]), z the layer's output before its ReLU: a leaky ReLU,
    so that a unit that is off everywhere still has a gradient (after a plain ReLU it has none), while the
    positions where it is on count most. It divides the gradient by its mean absolute value (so `step_size` is
    in pixel levels whatever the layer) and moves the image that far. Regularisers: the image is shifted by up to
    `jitter` pixels at random for each step (then shifted back), pulled towards the mean colour (0 in the
    model's input) by `decay`, blurred every `blur_every` steps and kept inside the valid pixel range.
    `pictures` turns the result into RGB images.
    """
    rng = np.random.default_rng(seed)
    mean = model.deprocess(np.zeros((1, size, size, 3), np.float32))        # the mean colour: 0 at the input
    x = np.concatenate([model.preprocess(mean + rng.uniform(-8, 8, mean.shape)) for _ in units])
    low, high = model.preprocess(np.zeros((1, 1, 3))), model.preprocess(np.full((1, 1, 3), 255.0))
    pick = (np.arange(len(units)), slice(None), slice(None), np.array(units))
    meter = Progress(steps, f"{layer}: activation maximisation", unit="steps") if progress else None
    for step in range(1, steps + 1):
        dy, dx = rng.integers(-jitter, jitter + 1, size=2)
        shifted = Tensor(np.roll(x, (dy, dx), axis=(1, 2)), requires_grad=True)
        z = pre_activation(model, shifted, layer)[pick]                 # (U, h, w)
        objective = F.sum(F.mean(F.maximum(z, 0.1 * z), axis=(1, 2)))
        objective.backward()
        g = np.roll(shifted.grad, (-dy, -dx), axis=(1, 2))
        g /= np.abs(g).mean(axis=(1, 2, 3), keepdims=True) + 1e-12
        x = x + step_size * g
        x *= 1 - decay
        if blur_every and step % blur_every == 0:
            x = gaussian_filter(x, sigma=(0, blur_sigma, blur_sigma, 0))
        x = np.clip(x, low, high).astype(x.dtype)
        if meter:
            meter.update(1)
    if meter:
        meter.close()
    return x


def pre_activation(model, x, layer):
    """The output of `layer`'s convolution before its ReLU, for input x: the layers below through
    `model.features`, then the pooling that starts a block (as in `VGG.features`) and the convolution itself."""
    convs = model.convs_to(layer)
    if len(convs) > 1:
        below = convs[-2].name
        x = model.features(x, [below])[below]
    if convs[-1].name in model.pooled:
        x = model.pool(x)
    return convs[-1](x)


def pictures(model, x):
    """Network inputs (U, H, W, 3) -> (U, H, W, 3) uint8 RGB images, each contrast-stretched for display."""
    return np.stack([stretch(model.deprocess(x[u:u + 1])) for u in range(len(x))])


def stretch(rgb):
    """Float RGB -> uint8 with the 1st..99th percentile stretched to 0..255 (for display)."""
    lo, hi = np.percentile(rgb, (1, 99))
    return np.clip((rgb - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)


def compose(layer, units, patches, maximised=None, cell=DEFAULTS["cell"]):
    """One picture: a row per unit with its top patches, then its activation-maximisation image (if given)."""
    top = max(len(p) for p in patches.values())
    label_w, gap, head = 64, 12, 22
    width = label_w + top * (cell + 2) + (gap + cell if maximised is not None else 0)
    canvas = Image.new("RGB", (width, head + len(units) * (cell + 2)), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), f"{layer}: top-{top} patches", fill="black")
    if maximised is not None:
        draw.text((label_w + top * (cell + 2) + gap, 4), "ascent", fill="black")
    for r, unit in enumerate(units):
        y = head + r * (cell + 2)
        draw.text((4, y + cell // 2 - 6), f"unit {unit}", fill="black")
        for c, (_, _, patch) in enumerate(patches[unit]):
            resample = Image.NEAREST if patch.shape[0] < cell else Image.BILINEAR
            canvas.paste(Image.fromarray(patch).resize((cell, cell), resample), (label_w + c * (cell + 2), y))
        if maximised is not None:
            canvas.paste(Image.fromarray(maximised[r]).resize((cell, cell), Image.BILINEAR),
                         (label_w + top * (cell + 2) + gap, y))
    return np.asarray(canvas)


# ----- command line -------------------------------------------------------------------------------------------------
def at_least(least):
    """argparse type: a whole number >= `least`."""
    def parse(text):
        value = nonnegative_int(text)
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {text!r}")
        return value
    return parse


def build_parser():
    d = DEFAULTS
    p = argparse.ArgumentParser(
        prog="python -m tinyconv.visualize",
        description="Show what units of a VGG16 layer respond to: the image patches that excite them most "
                    "(Zeiler & Fergus 2013) beside images made by gradient ascent on the pixels. Exit status 0 "
                    "done, 1 error, 2 usage.")
    p.add_argument("layer", help="block1_conv1 ... block5_conv3 (or the paper's conv1_1 ... conv5_3)")
    p.add_argument("--units", type=nonnegative_int, nargs="+", default=list(d["units"]),
                   help="channel numbers of the layer (default %(default)s)")
    p.add_argument("--images", nargs="+", required=True, metavar="DIR",
                   help="folder(s) of images to search for top patches (files directly inside)")
    p.add_argument("-o", "--output", required=True, help="the picture to write (.png or .jpg), atomically")
    p.add_argument("--top", type=positive_int, default=d["top"], help="patches per unit (default %(default)s)")
    p.add_argument("--size", type=at_least(8), default=d["size"],
                   help="side of the square the images are resized and cut to (default %(default)s px)")
    p.add_argument("--ascent-size", type=at_least(8), default=d["ascent_size"],
                   help="side of the activation-maximisation images (default %(default)s px)")
    p.add_argument("--steps", type=nonnegative_int, default=d["steps"],
                   help="gradient-ascent steps (default %(default)s; 0 shows the patches only)")
    p.add_argument("--step-size", type=positive_float, default=d["step_size"],
                   help="pixel levels per step (default %(default)s)")
    p.add_argument("--cell", type=at_least(8), default=d["cell"],
                   help="side of each picture in the grid (default %(default)s px)")
    p.add_argument("--seed", type=int, default=d["seed"], help="random seed of the ascent (default %(default)s)")
    p.add_argument("--weights", help="a converted VGG16 weights file (default: the one tinyconv fetches)")
    return p


def run(args):
    model = VGG("vgg16")
    layer = model.layer_name(args.layer)
    units = check_units(model, layer, args.units)
    output = Path(args.output)
    if output.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ValueError(f"{output}: the output must be a .png or .jpg file")
    check_writable(output)
    files = image_files(args.images)
    images = [square_image(f, args.size) for f in files]
    model.load_weights(args.weights or weights.ensure("vgg16"))
    print(f"{layer}: units {units}, {len(images)} images at {args.size} px", file=sys.stderr)
    patches = top_patches(model, layer, units, images, args.top)
    maximised = pictures(model, maximise_activation(model, layer, units, args.ascent_size, args.steps,
                                                    args.step_size, seed=args.seed)) if args.steps else None
    save_image(output, compose(layer, units, patches, maximised, args.cell))
    print(f"wrote {output}", file=sys.stderr)


def main(argv=None):
    return run_command(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
