"""python -m tinyconv.stylize CONTENT STYLE [STYLE ...] -o OUT: neural style transfer from the command line.

Everything that can fail (unreadable images, a missing output folder, unknown layers, an image too large for
memory) is checked before the long work starts, and reported as one line `error: ...` with exit status 1 (2 for
usage). Progress goes to stderr, one line per iteration; Ctrl-C stops and saves the best image so far.
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tinyconv import weights
from tinyconv.cli import run_command
from tinyconv.files import load_image, save_image
from tinyconv.models.vgg import VGG
from tinyconv.progress import Progress
from tinyconv.style_transfer import StyleTransfer, memory_estimate, run_adam, run_lbfgs

DEFAULTS = dict(size=512, iterations=100, demo_iterations=60, optimizer="lbfgs", learning_rate=2.55,
                content_weight=1.0, style_weight=1e-3, tv_weight=2.0, content_layer="block4_conv2",
                style_layers="block1_conv1,block2_conv1,block3_conv1,block4_conv1,block5_conv1", style_scale=1.0,
                init="content", pooling="max", seed=0, save_every=0, model="vgg16")

CONVENTION = """\
loss convention (the course's normalisations, activations a of shape (1, nH, nW, nC), pixels in 0..255):
  J = content_weight * J_content + style_weight * J_style + tv_weight * J_tv
  J_content = sum((a_C - a_G)^2) / (4 nH nW nC)                 at --content-layer
  J_style   = sum_l lambda_l sum((G_S - G_G)^2) / (4 nC^2 (nH nW)^2),  G = A A^T,  lambda_l = 1/(number of layers)
  J_tv      = mean squared difference of neighbouring pixels
Other implementations normalise differently: their weights do not carry over. The course used alpha=10, beta=40
(a ratio of 4) on its own VGG19 at 400x300; with these VGG16 weights (caffe inputs, 0..255) the style costs are
about 1e9 at the start, so the defaults here (alpha=1, beta=1e-3, tv=2) were tuned by eye on the images of
docs/images.
Layers are named as in the weights file (block4_conv2) or as in the paper (conv4_2).

examples:
  python -m tinyconv.stylize --demo                     a small complete example, no images needed
  python -m tinyconv.stylize photo.jpg starry_night.jpg -o out.png
  python -m tinyconv.stylize photo.jpg a.jpg b.jpg --style-blend 0.7,0.3 --original-colors -o out.jpg
"""


def build_parser():
    d = DEFAULTS
    p = argparse.ArgumentParser(
        prog="python -m tinyconv.stylize", epilog=CONVENTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Paint the CONTENT photo in the style of the STYLE image(s) (Gatys et al. 2015) with VGG16.")
    p.add_argument("content", nargs="?", help="the content image (photo)")
    p.add_argument("styles", nargs="*", metavar="style", help="one or more style images (paintings)")
    p.add_argument("-o", "--output", help="where to write the result (.png or .jpg); written atomically")
    p.add_argument("--size", type=int, default=d["size"],
                   help="longest side of the result in pixels (default %(default)s)")
    p.add_argument("--iterations", type=int,
                   help=f"optimiser iterations (default {d['iterations']}; with --demo {d['demo_iterations']})")
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default=d["optimizer"],
                   help="L-BFGS as in the paper (default), or Adam as in the course")
    p.add_argument("--learning-rate", type=float, default=d["learning_rate"],
                   help="Adam's step on the 0..255 image (default %(default)s = the course's 0.01 on 0..1)")
    p.add_argument("--content-weight", type=float, default=d["content_weight"], help="alpha (default %(default)s)")
    p.add_argument("--style-weight", type=float, default=d["style_weight"], help="beta (default %(default)s)")
    p.add_argument("--tv-weight", type=float, default=d["tv_weight"],
                   help="total-variation smoothing (default %(default)s; 0 turns it off)")
    p.add_argument("--content-layer", default=d["content_layer"], help="(default %(default)s)")
    p.add_argument("--style-layers", default=d["style_layers"],
                   help="comma-separated, equal weights (default %(default)s)")
    p.add_argument("--style-blend", help="comma-separated weights of the style images (default: equal)")
    p.add_argument("--style-scale", type=float, default=d["style_scale"],
                   help="style images' longest side = size * style-scale (default %(default)s)")
    p.add_argument("--init", default=d["init"],
                   help="start from 'content' (default), 'noise' (uniform random pixels) or an image FILE")
    p.add_argument("--original-colors", action="store_true",
                   help="keep the content's colours: transfer only the luminance")
    p.add_argument("--pooling", choices=("max", "avg"), default=d["pooling"], help="(default %(default)s)")
    p.add_argument("--seed", type=int, default=d["seed"], help="random seed for --init noise (default %(default)s)")
    p.add_argument("--save-every", type=int, default=d["save_every"], metavar="N",
                   help="also write OUT_<iteration> every N iterations (default: never)")
    p.add_argument("--model", choices=("vgg16", "vgg19"), default=d["model"],
                   help="vgg16 (fetched once) or vgg19 (convert your copy first: python -m tinyconv.weights "
                        "convert --from FILE --arch vgg19)")
    p.add_argument("--weights", help="a converted weights file to use instead of the default one for --model")
    p.add_argument("--demo", action="store_true",
                   help="run a small complete example on images made in code (writes -o, default stylize_demo.png,"
                        " and the two inputs beside it)")
    return p


# ----- images ---------------------------------------------------------------------------------------------------------
def fit_longest(height, width, size):
    """(height, width) scaled so that the longest side is `size` pixels, keeping the aspect ratio."""
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(rgb, height, width):
    """An (H, W, 3) uint8 image resized to height x width (Lanczos)."""
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.LANCZOS))


def transfer_luminance(content_rgb, styled_rgb):
    """The styled image's luminance with the content's colours (YIQ: Y from `styled`, I and Q from `content`)."""
    to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    y = styled_rgb.astype(np.float64) @ to_yiq[0]
    iq = content_rgb.astype(np.float64) @ to_yiq[1:].T
    return np.concatenate([y[..., None], iq], axis=-1) @ np.linalg.inv(to_yiq).T


def demo_images(height=96, width=128):
    """A content picture (sky, sun, hills, a house) and a style picture (yellow swirls on blue), made in code."""
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    content = np.empty((height, width, 3))
    content[:] = np.stack([120 + 100 * y, 170 + 60 * y, 250 - 20 * y], axis=-1)               # sky
    content[(x - 0.78) ** 2 + (y - 0.2) ** 2 * (height / width) ** -2 < 0.008] = (255, 220, 90)  # sun
    hills = y > 0.62 + 0.08 * np.sin(6 * x)
    content[hills] = np.stack([60 + 40 * y, 150 - 30 * y, 60 + 0 * y], axis=-1)[hills]
    content[(x > 0.22) & (x < 0.45) & (y > 0.5) & (y < 0.8)] = (200, 80, 60)                 # house
    content[(y > 0.3) & (y <= 0.5) & (np.abs(x - 0.335) < (y - 0.3) * 0.8)] = (110, 50, 40)   # roof
    content[(x > 0.3) & (x < 0.36) & (y > 0.62) & (y < 0.8)] = (70, 40, 30)                   # door
    angle = np.arctan2(y - 0.5, x - 0.5) + 5 * np.hypot(x - 0.5, y - 0.5)                  # a swirl
    t = (0.5 + 0.5 * np.sin(6 * angle + 2 * np.sin(7 * y)))[..., None]
    style = t * np.array([240, 200, 60]) + (1 - t) * np.array([30, 50, 140])                # yellow on blue
    style += 30 * np.sin(45 * (x - y) + 8 * angle)[..., None]                               # brush strokes
    return [np.clip(a, 0, 255).astype(np.uint8) for a in (content, style)]


def numbered(path, iteration):
    """OUT.png -> OUT_0100.png: where --save-every writes the image of an iteration."""
    return path.with_name(f"{path.stem}_{iteration:04d}{path.suffix}")


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


def check_output(path):
    """ValueError unless `path` can be written as an image: its folder exists and its suffix names a format."""
    if not path.parent.is_dir():
        raise ValueError(f"{path}: the output folder {path.parent} does not exist")
    if path.suffix.lower() not in Image.registered_extensions():
        raise ValueError(f"{path}: unknown image format {path.suffix!r} (use .png or .jpg)")


def parse_weights(text, what, count=None):
    """'0.7,0.3' -> [0.7, 0.3] (non-negative, `count` of them if given); ValueError naming the option."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"{what}: expected comma-separated numbers, got {text!r}") from None
    if (count is not None and len(values) != count) or min(values) < 0 or sum(values) <= 0:
        raise ValueError(f"{what}: expected {count or 'some'} non-negative numbers with a positive sum, got {text!r}")
    return values


def prepare(args):
    """Check everything and load the images; returns what `run` needs. Raises ValueError with one clear line."""
    for name in ("iterations", "save_every"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')}: must not be negative")
    if args.style_scale <= 0:
        raise ValueError(f"--style-scale {args.style_scale}: must be positive")
    output = Path(args.output)
    check_output(output)
    if args.demo:
        content_rgb, style_rgb = demo_images()
        styles_rgb = [style_rgb]
    else:
        content_rgb = load_image(args.content)
        styles_rgb = [load_image(s) for s in args.styles]
    blend = parse_weights(args.style_blend, "--style-blend", len(styles_rgb)) if args.style_blend else None

    model = VGG(args.model, args.pooling)
    content_layer = model.layer_name(args.content_layer)
    style_layers = [model.layer_name(name.strip()) for name in args.style_layers.split(",") if name.strip()]
    if not style_layers:
        raise ValueError("--style-layers: give at least one layer")
    height, width = content_rgb.shape[:2] if args.demo else fit_longest(*content_rgb.shape[:2], args.size)
    style_size = max(16, round(max(height, width) * args.style_scale))
    style_shapes = [fit_longest(*s.shape[:2], style_size) for s in styles_rgb]
    for what, (h, w) in zip(["content image"] + [f"style image {s}" for s in args.styles or ["(demo)"]],
                            [(height, width)] + style_shapes):
        if min(h, w) < 16:
            raise ValueError(f"the {what} would be {w}x{h} pixels; VGG needs at least 16 on each side "
                             "(use a larger --size or --style-scale)")
    need = max(memory_estimate(model, h, w, [content_layer] + style_layers)
               for h, w in [(height, width)] + style_shapes)
    have = available_memory()
    if have is not None and need > have:
        raise ValueError(f"--size {args.size}: a {width}x{height} image needs about {need / 2**30:.1f} GiB, "
                         f"{have / 2**30:.1f} GiB is available; use a smaller --size or --style-scale")
    content_rgb = resize(content_rgb, height, width)
    styles_rgb = [resize(s, h, w) for s, (h, w) in zip(styles_rgb, style_shapes)]

    rng = np.random.default_rng(args.seed)
    if args.init == "content":
        init_rgb = content_rgb
    elif args.init == "noise":
        init_rgb = rng.uniform(0, 255, content_rgb.shape)
    else:
        init_rgb = resize(load_image(args.init), height, width)

    weights_file = args.weights
    if weights_file is None and args.model == "vgg19":
        weights_file = weights.home() / "weights" / "vgg19.h5"
        if not weights_file.is_file():
            raise ValueError(f"{weights_file}: no VGG19 weights; convert your copy first: python -m "
                             "tinyconv.weights convert --from FILE --arch vgg19")
    model.load_weights(weights.ensure("vgg16") if weights_file is None else weights_file)
    return dict(model=model, output=output, content_rgb=content_rgb, styles_rgb=styles_rgb, init_rgb=init_rgb,
                blend=blend, content_layer=content_layer,
                style_layers=[(name, 1 / len(style_layers)) for name in style_layers])


def run(args, p):
    """Optimise and write the result; returns the exit status (0, or 130 after Ctrl-C with the image saved)."""
    model, output = p["model"], p["output"]
    problem = StyleTransfer(model, model.preprocess(p["content_rgb"]), [model.preprocess(s) for s in p["styles_rgb"]],
                            p["content_layer"], p["style_layers"], args.content_weight, args.style_weight,
                            args.tv_weight, p["blend"])

    def picture(x):
        rgb = model.deprocess(x)
        return transfer_luminance(p["content_rgb"], rgb) if args.original_colors else rgb

    progress = Progress(args.iterations, "stylize", unit="iterations", lines=True)

    def callback(i, parts):
        progress.update(done=i, note=f"loss {sum(parts.values()):.4g} (content {parts['content']:.3g}, "
                                     f"style {parts['style']:.3g}, tv {parts['tv']:.3g})")
        if args.save_every and i % args.save_every == 0 and i < args.iterations:
            save_image(numbered(output, i), picture(problem.best))

    height, width = p["content_rgb"].shape[:2]
    print(f"stylize: {width}x{height}, {args.iterations} iterations of {args.optimizer}, {args.model} "
          f"({args.pooling} pooling)", file=sys.stderr)
    x0 = model.preprocess(p["init_rgb"])
    status = 0
    try:
        if args.optimizer == "lbfgs":
            run_lbfgs(problem, x0, args.iterations, callback)
        else:
            run_adam(problem, x0, args.iterations, args.learning_rate, callback)
    except KeyboardInterrupt:
        print("stylize: interrupted", file=sys.stderr)
        status = 130
    if problem.best is None:
        problem.loss_and_grad(x0)
    save_image(output, picture(problem.best))
    print(f"stylize: wrote {output} (cost {problem.best_cost:.4g}, {problem.evaluations} evaluations, "
          f"{progress.elapsed:.0f} s)", file=sys.stderr)
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
        args.output = args.output or "stylize_demo.png"
        args.iterations = DEFAULTS["demo_iterations"] if args.iterations is None else args.iterations
    elif args.content is None or not args.styles:
        parser.error("give a CONTENT image and at least one STYLE image (or --demo)")
    elif args.output is None:
        parser.error("give the output file with -o OUT")
    args.iterations = DEFAULTS["iterations"] if args.iterations is None else args.iterations
    return run_command(prepare_and_run, args)


def prepare_and_run(args):
    prepared = prepare(args)
    if args.demo:
        out = Path(args.output)
        save_image(out.with_name(f"{out.stem}_content.png"), prepared["content_rgb"])
        save_image(out.with_name(f"{out.stem}_style.png"), prepared["styles_rgb"][0])
    return run(args, prepared)


if __name__ == "__main__":
    sys.exit(main())
