"""Seconds per style-transfer iteration: J and dJ/d(image) through VGG16 to block5_conv1, tinyconv vs PyTorch.

One iteration = the forward pass to block5_conv1 (content at block4_conv2, Grams at the five style layers, TV) and
the backward pass to the image, i.e. one `StyleTransfer.loss_and_grad`. When PyTorch is importable, the same
computation runs in PyTorch on the same weights, in the same process, and the ratio is printed.

    python benchmarks/bench_stylize.py                       # 256 and 512 px, median of 3
    python benchmarks/bench_stylize.py --sizes 512 --repeats 5
    python benchmarks/bench_stylize.py --full CONTENT STYLE  # also time a complete default run of the CLI
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinyconv.models.vgg import vgg16  # noqa: E402
from tinyconv.style import CONTENT_LAYER, STYLE_LAYERS, StyleTransfer  # noqa: E402


def median_seconds(fn, repeats):
    fn()  # warm-up: Numba compilation, buffers
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ours(model, images, repeats):
    content, style, x = (model.preprocess(im) for im in images)
    problem = StyleTransfer(model, content, [style], CONTENT_LAYER, STYLE_LAYERS, 1.0, 1e-3, 1.0)
    return median_seconds(lambda: problem.loss_and_grad(x), repeats)


def torch_time(model, images, repeats):
    """The same costs in PyTorch (NCHW), on the same weights."""
    import torch
    torch.set_num_threads(2)
    state = {k: torch.from_numpy(v) for k, v in model.state_dict().items()}
    wanted = {CONTENT_LAYER} | {name for name, _ in STYLE_LAYERS}

    def features(x):
        out = {}
        for name in [conv.name for conv in model.convs_to("block5_conv1")]:
            if name in model.pooled:
                x = torch.nn.functional.max_pool2d(x, 2)
            x = torch.relu(torch.nn.functional.conv2d(x, state[f"{name}/kernel"].permute(3, 2, 0, 1),
                                                      state[f"{name}/bias"], padding=1))
            if name in wanted:
                out[name] = x
        return out

    def gram(a):
        _, c, h, w = a.shape
        A = a.reshape(c, h * w)
        return A @ A.T / (h * w)

    content, style, x0 = (torch.from_numpy(model.preprocess(im)).permute(0, 3, 1, 2).contiguous() for im in images)
    with torch.no_grad():
        a_C = features(content)[CONTENT_LAYER]
        G_S = {name: gram(a) for name, a in features(style).items()}

    def step():
        x = x0.clone().requires_grad_(True)
        a = features(x)
        _, c, h, w = a_C.shape
        J_content = ((a_C - a[CONTENT_LAYER]) ** 2).sum() / (4 * c * h * w)
        J_style = sum(wt * ((G_S[n] - gram(a[n])) ** 2).sum() / (4 * a[n].shape[1] ** 2) for n, wt in STYLE_LAYERS)
        J_tv = (((x[:, :, 1:] - x[:, :, :-1]) ** 2).sum() + ((x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2).sum()) / x.numel()
        (J_content + 1e-3 * J_style + J_tv).backward()
    return median_seconds(step, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="square image sides in pixels")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", nargs=2, metavar=("CONTENT", "STYLE"),
                        help="also time `python -m tinyconv.stylize CONTENT STYLE -o tmp.png` with its defaults")
    args = parser.parse_args()
    model = vgg16()
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    rng = np.random.default_rng(0)
    print(f"{'size':>9}  {'tinyconv s/it':>13}  {'torch s/it':>10}  {'ours / torch':>12}")
    for size in args.sizes:
        images = [rng.uniform(0, 255, (size, size, 3)) for _ in range(3)]
        t_ours = ours(model, images, args.repeats)
        t_torch = torch_time(model, images, args.repeats) if have_torch else float("nan")
        print(f"{size:>4}x{size:<4}  {t_ours:13.2f}  {t_torch:10.2f}  {t_ours / t_torch:12.2f}", flush=True)
    if args.full:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "tinyconv.stylize", *args.full, "-o", f"{tmp}/out.png"],
                           check=True, cwd=Path(__file__).resolve().parents[1])
            print(f"full default run (512 px, 100 L-BFGS iterations): {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
