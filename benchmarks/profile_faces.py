"""Where a FaceNet forward spends its time: milliseconds per kind of convolution, tinyconv beside PyTorch, each side in
its own process (benchmarks/sides.py). The profile that issue 12 asks to look at before making anything faster.

Run from the project root:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/profile_faces.py [--batch 32] [--repeats 5]

A timer around every convolution call of a no_grad forward; the layers of one kind (input size, kernel, channels,
stride) are summed, and each number is the median over the repeats. tinyconv's convolutions include the folded
batch norm and ReLU (one pass, `F.conv2d_relu`); PyTorch's graph (benchmarks/torch_facenet.py) runs its batch
norms, ReLUs, additions and concatenations as ops of their own, which the "everything else" line collects on
both sides. Not a test: nothing is asserted.
"""
import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import sides                                             # noqa: E402


def profile(forward, patch, repeats):
    """{kind: [median ms, count per forward]} plus "forward" (median ms of the whole forward); `patch(record)`
    wraps the library's convolution so that each call reports (kind, seconds)."""
    runs = []
    calls = defaultdict(float)
    counts = defaultdict(int)

    def record(kind, seconds):
        calls[kind] += seconds
        counts[kind] += 1
    patch(record)
    forward()
    for _ in range(repeats):
        calls.clear()
        counts.clear()
        start = time.perf_counter()
        forward()
        runs.append((time.perf_counter() - start, dict(calls), dict(counts)))
    result = {kind: [1e3 * statistics.median(run[1].get(kind, 0) for run in runs), count]
              for kind, count in runs[-1][2].items()}
    result["forward"] = [1e3 * statistics.median(run[0] for run in runs), 1]
    return result


def kind(hw, kernel, cin, cout, stride):
    """'17x17 3x3 32->32 /1': the key both sides share."""
    return f"{hw[0]}x{hw[1]} {kernel[0]}x{kernel[1]} {cin}->{cout} /{stride}"


def run_ours(args):
    from tinyconv import Tensor, functional as F, no_grad, weights
    from tinyconv.models.facenet import facenet
    model = facenet(weights.ensure("facenet"))
    x = Tensor(np.random.default_rng(0).standard_normal((args.batch, 160, 160, 3)).astype(np.float32))

    def patch(record):
        def timed(op):
            def call(x, w, b=None, stride=1, *rest, **kw):
                start = time.perf_counter()
                y = op(x, w, b, stride, *rest, **kw)
                s = stride if isinstance(stride, int) else stride[0]
                record(kind(x.shape[1:3], w.shape[:2], w.shape[2], w.shape[3], s), time.perf_counter() - start)
                return y
            return call
        F.conv2d_relu, F.conv2d = timed(F.conv2d_relu), timed(F.conv2d)

    def forward():
        with no_grad():
            model(x)
    return {"_profile": profile(forward, patch, args.repeats), "_about": sides.describe()}


def run_torch(args):
    import torch
    import torch.nn.functional as TF
    from tinyconv import weights
    from torch_facenet import TorchFaceNet
    torch.set_num_threads(2)
    model = TorchFaceNet(weights.ensure("facenet")).eval()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((args.batch, 160, 160, 3)).astype(np.float32))

    def patch(record):
        conv2d = TF.conv2d

        def call(x, w, b=None, stride=1, *rest):
            start = time.perf_counter()
            y = conv2d(x, w, b, stride, *rest)
            record(kind(x.shape[2:4], w.shape[2:4], w.shape[1], w.shape[0], stride), time.perf_counter() - start)
            return y
        TF.conv2d = call

    def forward():
        with torch.no_grad():
            model(x)
    return {"_profile": profile(forward, patch, args.repeats), "_about": f"torch {torch.__version__}"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = sides.parse(parser, run_ours, run_torch)
    if args is None:
        return
    best = sides.compare(__file__, ["--batch", str(args.batch), "--repeats", str(args.repeats)], rounds=1)
    ours, theirs = best["ours"]["_profile"], best.get("torch", {}).get("_profile", {})
    print(f"batch {args.batch}, median of {args.repeats} forwards; ms per forward, layers of one kind summed")
    print(f"{'layers':34s} {'count':>5s} {'tinyconv':>9s} {'PyTorch':>9s}  ratio (PyTorch's time / ours)")
    rows = sorted((k for k in ours if k != "forward"), key=lambda k: -ours[k][0])
    table = [(k, count, mine, theirs.get(k, [None])[0]) for k, (mine, count) in ((k, ours[k]) for k in rows)]
    if theirs:
        table.append(("everything else", "", ours["forward"][0] - sum(ours[k][0] for k in rows),
                      theirs["forward"][0] - sum(v[0] for k, v in theirs.items() if k != "forward")))
    table.append(("forward", "", ours["forward"][0], theirs.get("forward", [None])[0]))
    for k, count, mine, other in table:
        compared = f" {other:9.1f}  {other / mine:5.2f}x" if other is not None else ""
        print(f"{k:34s} {count:>5} {mine:9.1f}{compared}")

if __name__ == "__main__":
    main()
