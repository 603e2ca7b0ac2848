"""Speed of tinyconv's convolution and pooling kernels against PyTorch's CPU conv2d / pooling, on the shapes of
VGG16 and FaceNet; each side in its own process (benchmarks/sides.py).

Run from the project root:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_kernels.py [--rounds 3] [--algorithm auto]

Prints, per case: our ms (the best median over the rounds, and the best time), GFLOP/s (of that median), torch's
ms (2 threads, NCHW) and torch ms / our ms of the medians and of the bests (> 1 means tinyconv is faster).
The convolutions run the algorithm conv2d picks (tinyconv.functional.conv_algorithm; --algorithm im2col, winograd2
or winograd4 forces one where it applies, as CONV_ALGORITHM does); forward+backward is forward, input gradient
and kernel gradient.
Not a test: timings assert nothing.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import sides                                             # noqa: E402

REPEATS = 9
CONVS = [("vgg conv1_2", 1, 224, 224, 64, 64, 3, 3), ("vgg conv3_1", 1, 56, 56, 128, 256, 3, 3),
         ("vgg conv4_2", 1, 28, 28, 512, 512, 3, 3), ("facenet 1x1", 32, 17, 17, 896, 128, 1, 1),
         ("facenet 1x7", 32, 17, 17, 128, 128, 1, 7), ("facenet 7x1", 32, 17, 17, 128, 128, 7, 1)]
POOLS = [("max", 1, 224, 224, 64, 2, 2), ("avg", 1, 224, 224, 64, 2, 2), ("max", 1, 112, 112, 128, 2, 2),
         ("avg", 1, 112, 112, 128, 2, 2), ("max", 32, 35, 35, 256, 3, 2), ("max", 32, 112, 112, 64, 2, 2)]


def selected(cases, args):
    """The cases whose label (first item) contains one of the --only strings (all without --only)."""
    return [case for case in cases if not args.only or any(s in f"{case[0]}pool" for s in args.only)]


def conv_inputs(N, H, W, C, O, kh, kw):
    """x, w, gy (float32, NHWC / HWIO) and the 'same' padding of an odd kernel at stride 1."""
    rng = np.random.default_rng(0)
    padding = ((kh // 2, kh // 2), (kw // 2, kw // 2))
    x = rng.standard_normal((N, H, W, C), dtype=np.float32)
    w = rng.standard_normal((kh, kw, C, O), dtype=np.float32) * 0.05
    gy = rng.standard_normal((N, H, W, O), dtype=np.float32)
    return x, w, gy, padding


def pool_inputs(N, H, W, C, size, stride):
    rng = np.random.default_rng(0)
    Ho, Wo = (H - size) // stride + 1, (W - size) // stride + 1
    return rng.standard_normal((N, H, W, C), dtype=np.float32), rng.standard_normal((N, Ho, Wo, C), dtype=np.float32)


def conv_name(label, N, H, W, C, O, kh, kw):
    return f"{label} {N}x{H}x{W}x{C}->{O} {kh}x{kw}"


def pool_name(kind, N, H, W, C, size, stride):
    return f"{kind}pool {N}x{H}x{W}x{C} {size}x{size}/{stride}"


def run_ours(args):
    import tinyconv.functional as F
    from tinyconv import kernels
    from tinyconv.kernels import conv as conv_kernels
    F.CONV_ALGORITHM = args.algorithm
    out = {"_about": sides.describe()}
    for label, *shape in selected(CONVS, args):
        x, w, gy, padding = conv_inputs(*shape)
        algo = F.conv_algorithm(x.shape, w.shape, (1, 1), padding)
        forward, grad_input = F.CONV_PATHS[algo]

        def fb():
            forward(x, w, (1, 1), padding)
            grad_input(gy, w, x.shape, (1, 1), padding)
            conv_kernels.conv2d_grad_weight(x, gy, w.shape, (1, 1), padding)

        name = conv_name(label, *shape)
        out[f"_algo {name}"] = algo
        out[name + " fwd"] = sides.timed(lambda: forward(x, w, (1, 1), padding), REPEATS)
        out[name + " fwd+bwd"] = sides.timed(fb, REPEATS)
    for kind, N, H, W, C, size, stride in selected(POOLS, args):
        x, gy = pool_inputs(N, H, W, C, size, stride)
        geometry = (size, size), (stride, stride), ((0, 0), (0, 0))
        name = pool_name(kind, N, H, W, C, size, stride)
        if kind == "max":
            _, arg = kernels.max_pool2d_forward(x, *geometry)
            out[name + " fwd"] = sides.timed(lambda: kernels.max_pool2d_forward(x, *geometry), REPEATS)
            out[name + " bwd"] = sides.timed(lambda: kernels.max_pool2d_backward(gy, arg, x.shape, *geometry),
                                             REPEATS)   # as functional.max_pool2d's VJP calls it
        else:
            out[name + " fwd"] = sides.timed(lambda: kernels.avg_pool2d_forward(x, *geometry), REPEATS)
            out[name + " bwd"] = sides.timed(lambda: kernels.avg_pool2d_backward(gy, x.shape, *geometry), REPEATS)
    return out


def run_torch(args):
    import torch
    import torch.nn.functional as TF
    torch.set_num_threads(2)
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731
    out = {"_about": f"torch {torch.__version__}, {torch.get_num_threads()} threads"}
    for label, *shape in selected(CONVS, args):
        x, w, gy, padding = conv_inputs(*shape)
        xt, wt, gyt = nchw(x), torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))), nchw(gy)
        pad = (padding[0][0], padding[1][0])
        xg, wg = xt.clone().requires_grad_(), wt.clone().requires_grad_()

        def fwd():
            with torch.no_grad():
                TF.conv2d(xt, wt, padding=pad)

        def fb():
            xg.grad = wg.grad = None
            TF.conv2d(xg, wg, padding=pad).backward(gyt)

        name = conv_name(label, *shape)
        out[name + " fwd"] = sides.timed(fwd, REPEATS)
        out[name + " fwd+bwd"] = sides.timed(fb, REPEATS)
    for kind, N, H, W, C, size, stride in selected(POOLS, args):
        x, gy = pool_inputs(N, H, W, C, size, stride)
        xt, gyt = nchw(x), nchw(gy)
        name = pool_name(kind, N, H, W, C, size, stride)
        if kind == "max":
            _, it = torch.ops.aten.max_pool2d_with_indices(xt, size, stride)
            out[name + " fwd"] = sides.timed(lambda: torch.ops.aten.max_pool2d_with_indices(xt, size, stride),
                                             REPEATS)
            out[name + " bwd"] = sides.timed(lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                gyt, xt, size, stride, (0, 0), (1, 1), False, it), REPEATS)
        else:
            out[name + " fwd"] = sides.timed(lambda: TF.avg_pool2d(xt, size, stride), REPEATS)
            out[name + " bwd"] = sides.timed(lambda: torch.ops.aten.avg_pool2d_backward(
                gyt, xt, size, stride, (0, 0), False, True, None), REPEATS)
    return out


def flops(name):
    """Multiply-adds x 2 of a convolution case name's direct definition (0 for pooling)."""
    if "pool" in name:
        return 0.0
    dims = name.split()[2]
    N, H, W, rest = dims.split("x", 3)
    C, O = (int(v) for v in rest.split("->"))
    kh, kw = (int(v) for v in name.split()[3].split("x"))
    return 2.0 * int(N) * int(H) * int(W) * C * O * kh * kw * (3 if name.endswith("fwd+bwd") else 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=sides.ROUNDS, help="alternating runs of each side")
    parser.add_argument("--algorithm", default="auto",
                        choices=["auto", "im2col", "winograd2", "winograd4", "winograd4_rows"])
    parser.add_argument("--only", nargs="+", help="cases whose label contains one of these, e.g. conv3_1 1x7 maxpool")
    args = sides.parse(parser, run_ours, run_torch)
    if args is None:
        return
    argv = ["--algorithm", args.algorithm] + (["--only", *args.only] if args.only else [])
    best = sides.compare(__file__, argv, args.rounds)
    ours, theirs = best["ours"], best.get("torch", {})
    print(f"tinyconv: {ours['_about']}; {theirs.get('_about', 'torch not installed')}; float32; "
          f"best median / best of {REPEATS} timings over {args.rounds} alternating rounds")
    print(f"{'case':<46} {'algorithm':>9} {'ours ms':>8} {'best':>7} {'GFLOP/s':>7} {'torch ms':>8} {'best':>7} "
          f"{'torch/ours':>10} {'(best)':>7}")
    for case, value in ours.items():
        if case.startswith("_"):
            continue
        median, low = value
        algo = ours.get("_algo " + case.rsplit(" ", 1)[0], "-")
        rate = f"{flops(case) / median / 1e9:7.1f}" if flops(case) else "      -"
        line = f"{case:<46} {algo:>9} {1e3 * median:8.2f} {1e3 * low:7.2f} {rate}"
        if case in theirs:
            t_med, t_low = theirs[case]
            line += f" {1e3 * t_med:8.2f} {1e3 * t_low:7.2f} {t_med / median:9.2f}x {t_low / low:6.2f}x"
        print(line)


if __name__ == "__main__":
    main()
