"""FaceNet speed: encodings per second at batch 1 and 32, and one triplet training step; beside PyTorch.

Run from the project root:  python benchmarks/bench_faces.py [--repeats 5]
Prints medians after a warm-up; when torch is importable, the same graph in PyTorch (benchmarks/torch_facenet.py,
loading our weights file, 2 threads) and the ratio ours / torch throughput. Not a test: nothing is asserted.
"""
import os

# the thread settings tinyconv recommends; they must be in place before numpy / numba are imported
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")

import argparse                                          # noqa: E402
import sys                                               # noqa: E402
import time                                              # noqa: E402
from pathlib import Path                                 # noqa: E402

import numpy as np                                       # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tinyconv import Tensor, no_grad, optim, weights     # noqa: E402
from tinyconv.faces.train import encode_batch, select_triplets, set_training, triplets_loss  # noqa: E402
from tinyconv.models.facenet import facenet              # noqa: E402

try:
    import torch
    torch.set_num_threads(2)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from torch_facenet import TorchFaceNet
except ImportError:
    torch = None


def median_s(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-batch", type=int, default=18, help="images per training step (6 people x 3)")
    args = parser.parse_args()
    path = weights.ensure("facenet")
    model = facenet(path)
    rng = np.random.default_rng(0)
    theirs = TorchFaceNet(path).eval() if torch else None
    if theirs is not None:
        x = rng.standard_normal((2, 160, 160, 3)).astype(np.float32)
        with no_grad(), torch.no_grad():
            diff = np.abs(model(Tensor(x)).data - theirs(torch.from_numpy(x)).numpy()).max()
        print(f"torch vs tinyconv encodings: max abs difference {diff:.2e}")

    print(f"{'case':<34} {'tinyconv':>12} {'torch':>12} {'ours/torch':>10}")
    for batch in (1, 32):
        x = rng.standard_normal((batch, 160, 160, 3)).astype(np.float32)

        def ours():
            with no_grad():
                model(Tensor(x))

        ours_rate = batch / median_s(ours, args.repeats)
        line = f"{'encodings/s, batch ' + str(batch):<34} {ours_rate:12.1f}"
        if theirs is not None:
            xt = torch.from_numpy(x)

            def reference():
                with torch.no_grad():
                    theirs(xt)

            torch_rate = batch / median_s(reference, args.repeats)
            line += f" {torch_rate:12.1f} {ours_rate / torch_rate:10.2f}"
        print(line, flush=True)

    # one fine-tuning step: forward with graph, semi-hard selection, triplet loss, backward, Adam
    x = rng.standard_normal((args.train_batch, 160, 160, 3)).astype(np.float32)
    labels = np.repeat(np.arange(args.train_batch // 3), 3)
    optimizer = optim.Adam(set_training(model), lr=1e-5)

    def step():
        embeddings = encode_batch(model, x)
        triplets = select_triplets(embeddings.data, labels, 2.0, rng)  # alpha 2: never an empty batch
        optimizer.zero_grad()
        triplets_loss(embeddings, triplets, 2.0).backward()
        optimizer.step()

    ours_step = median_s(step, max(1, args.repeats // 2))
    line = f"{'training step, ' + str(args.train_batch) + ' images (s)':<34} {ours_step:12.2f}"
    if theirs is not None:
        trained = [k for k in theirs.p if k.endswith(("/kernel", "/bias"))]  # batch norm frozen, as ours
        for key in trained:
            theirs.p[key] = torch.nn.Parameter(theirs.p[key])
        params = [theirs.p[k] for k in trained]
        torch_optimizer = torch.optim.Adam(params, lr=1e-5)
        xt = torch.from_numpy(x)

        def torch_step():
            e = torch.nn.functional.normalize(theirs(xt), dim=-1)
            a, p, n = (torch.from_numpy(i) for i in select_triplets(e.detach().numpy(), labels, 2.0, rng))
            loss = torch.clamp(((e[a] - e[p]) ** 2).sum(-1) - ((e[a] - e[n]) ** 2).sum(-1) + 2.0, min=0).mean()
            torch_optimizer.zero_grad()
            loss.backward()
            torch_optimizer.step()

        torch_s = median_s(torch_step, max(1, args.repeats // 2))
        line += f" {torch_s:12.2f} {torch_s / ours_step:10.2f}"
    print(line)


if __name__ == "__main__":
    main()
