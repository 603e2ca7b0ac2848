"""Speed of tinyconv.kernels against PyTorch's CPU conv2d / pooling on the shapes of VGG16 and FaceNet.

Run from the project root:  python benchmarks/bench_kernels.py
Prints, per case: shape, our ms (median and best of REPEATS after warm-up), GFLOP/s (of the median), and when
torch is importable torch's ms (2 threads, NCHW) and the ratio torch ms / our ms (> 1 means we are faster), of
the medians and of the bests (the bests are the better guide on a machine other processes are using).
Not a test: timings assert nothing.
"""
import os

# the thread settings tinyconv recommends; they must be in place before numpy / numba are imported
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "2")

import sys                                               # noqa: E402
import time                                              # noqa: E402
from pathlib import Path                                 # noqa: E402

import numpy as np                                       # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tinyconv import kernels                             # noqa: E402

try:
    import torch
    import torch.nn.functional as TF
    torch.set_num_threads(2)
except ImportError:
    torch = None

REPEATS = 9


def median_ms(fn, repeats=REPEATS):
    """(median, best) wall time of fn() in ms, after two warm-up calls."""
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times)), 1e3 * min(times)


def report(name, ours, flops, theirs):
    """One table line; ours/theirs are (median, best) ms; the ratios are torch / ours of medians and of bests."""
    gflops = f"{flops / ours[0] / 1e6:7.1f}" if flops else "      -"
    line = f"{name:<44} {ours[0]:9.2f} {ours[1]:8.2f} {gflops}"
    if theirs is not None:
        line += f" {theirs[0]:9.2f} {theirs[1]:8.2f} {theirs[0] / ours[0]:6.2f}x {theirs[1] / ours[1]:6.2f}x"
    print(line, flush=True)


def nchw(a):
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


def bench_conv(label, N, H, W, C, O, kh, kw, stride=(1, 1)):
    """Forward and forward+backward of one convolution, 'same' padding (odd kernels, stride 1) or 'valid'."""
    rng = np.random.default_rng(0)
    padding = ((kh // 2, kh // 2), (kw // 2, kw // 2)) if stride == (1, 1) else ((0, 0), (0, 0))
    x = rng.standard_normal((N, H, W, C), dtype=np.float32)
    w = rng.standard_normal((kh, kw, C, O), dtype=np.float32) * 0.05
    y = kernels.conv2d_forward(x, w, stride, padding)
    gy = rng.standard_normal(y.shape, dtype=np.float32)
    flops = 2.0 * y.size * kh * kw * C

    def ours_fb():
        kernels.conv2d_forward(x, w, stride, padding)
        kernels.conv2d_grad_input(gy, w, x.shape, stride, padding)
        kernels.conv2d_grad_weight(x, gy, w.shape, stride, padding)

    shape = f"{label} {N}x{H}x{W}x{C}->{O} {kh}x{kw}/{stride[0]}"
    t_fwd = t_fb = None
    if torch is not None:
        xt, wt = nchw(x), torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
        pad = (padding[0][0], padding[1][0])
        gyt = nchw(gy)
        xg, wg = xt.clone().requires_grad_(), wt.clone().requires_grad_()

        def torch_fb():
            xg.grad = wg.grad = None
            TF.conv2d(xg, wg, stride=stride, padding=pad).backward(gyt)

        with torch.no_grad():
            t_fwd = median_ms(lambda: TF.conv2d(xt, wt, stride=stride, padding=pad))
        t_fb = median_ms(torch_fb)
    report(shape + " fwd", median_ms(lambda: kernels.conv2d_forward(x, w, stride, padding)), flops, t_fwd)
    report(shape + " fwd+bwd", median_ms(ours_fb), 3 * flops, t_fb)


def bench_pool(kind, N, H, W, C, size, stride):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, H, W, C), dtype=np.float32)
    padding = ((0, 0), (0, 0))
    if kind == "max":
        y, arg = kernels.max_pool2d_forward(x, size, stride, padding)
        fwd = lambda: kernels.max_pool2d_forward(x, size, stride, padding)          # noqa: E731
        gy = rng.standard_normal(y.shape, dtype=np.float32)
        bwd = lambda: kernels.max_pool2d_backward(gy, arg, x.shape)                 # noqa: E731
    else:
        y = kernels.avg_pool2d_forward(x, size, stride, padding)
        fwd = lambda: kernels.avg_pool2d_forward(x, size, stride, padding)          # noqa: E731
        gy = rng.standard_normal(y.shape, dtype=np.float32)
        bwd = lambda: kernels.avg_pool2d_backward(gy, x.shape, size, stride, padding)  # noqa: E731
    t_fwd = t_bwd = None
    if torch is not None:
        xt, gyt = nchw(x), nchw(gy)
        if kind == "max":
            yt, it = torch.ops.aten.max_pool2d_with_indices(xt, size, stride)
            t_fwd = median_ms(lambda: torch.ops.aten.max_pool2d_with_indices(xt, size, stride))
            t_bwd = median_ms(lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                gyt, xt, size, stride, (0, 0), (1, 1), False, it))
        else:
            t_fwd = median_ms(lambda: TF.avg_pool2d(xt, size, stride))
            t_bwd = median_ms(lambda: torch.ops.aten.avg_pool2d_backward(
                gyt, xt, size, stride, (0, 0), False, True, None))
    shape = f"{kind}pool {N}x{H}x{W}x{C} {size[0]}x{size[1]}/{stride[0]}"
    report(shape + " fwd", median_ms(fwd), 0, t_fwd)
    report(shape + " bwd", median_ms(bwd), 0, t_bwd)


def main():
    print(f"numpy {np.__version__}, torch {torch.__version__ if torch else 'not installed'}; float32; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} "
          f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')} "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other processes skew timings)")
    print(f"{'case':<44} {'ours ms':>9} {'best':>8} {'GFLOP/s':>7} {'torch ms':>9} {'best':>8} "
          f"{'torch/ours':>10} {'(best)':>6}")
    bench_conv("vgg conv1_2", 1, 224, 224, 64, 64, 3, 3)
    bench_conv("vgg conv3_1", 1, 56, 56, 128, 256, 3, 3)
    bench_conv("vgg conv4_2", 1, 28, 28, 512, 512, 3, 3)
    bench_conv("facenet 1x1", 32, 17, 17, 896, 128, 1, 1)
    bench_conv("facenet 1x7", 32, 17, 17, 128, 128, 1, 7)
    bench_conv("facenet 7x1", 32, 17, 17, 128, 128, 7, 1)
    bench_pool("max", 1, 224, 224, 64, (2, 2), (2, 2))
    bench_pool("avg", 1, 224, 224, 64, (2, 2), (2, 2))
    bench_pool("max", 1, 112, 112, 128, (2, 2), (2, 2))
    bench_pool("avg", 1, 112, 112, 128, (2, 2), (2, 2))
    bench_pool("max", 32, 35, 35, 256, (3, 3), (2, 2))


if __name__ == "__main__":
    main()
