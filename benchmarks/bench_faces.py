"""FaceNet speed: encodings per second at batch 1 and 32, and one triplet training step; beside PyTorch, each side
in its own process (benchmarks/sides.py).

Run from the project root:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_faces.py [--repeats 5] [--rounds 3]

The PyTorch side is the same graph (benchmarks/torch_facenet.py) loading our weights file, 2 threads; both sides
also encode the same two random images and the largest difference is printed. Prints the best median over the
rounds and the ratio ours / torch throughput. Not a test: nothing is asserted.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import sides                                             # noqa: E402


def inputs(args):
    rng = np.random.default_rng(0)
    check = rng.standard_normal((2, 160, 160, 3)).astype(np.float32)
    batches = {b: rng.standard_normal((b, 160, 160, 3)).astype(np.float32) for b in (1, 32)}
    train = rng.standard_normal((args.train_batch, 160, 160, 3)).astype(np.float32)
    labels = np.repeat(np.arange(args.train_batch // 3), 3)
    return check, batches, train, labels


def run_ours(args):
    from tinyconv import Tensor, no_grad, optim, weights
    from tinyconv.faces.train import encode_batch, select_triplets, set_training, mean_triplet_loss
    from tinyconv.models.facenet import facenet
    model = facenet(weights.ensure("facenet"))
    check, batches, x, labels = inputs(args)
    with no_grad():
        out = {"_encodings": model(Tensor(check)).data.tolist(), "_about": sides.describe()}
    for batch, xb in batches.items():
        def encode():
            with no_grad():
                model(Tensor(xb))
        out[f"batch {batch}"] = sides.timed(encode, args.repeats, warmup=1)
    rng = np.random.default_rng(1)
    optimizer = optim.Adam(set_training(model), lr=1e-5)

    def step():  # forward with graph, semi-hard selection, triplet loss, backward, Adam
        embeddings = encode_batch(model, x)
        triplets = select_triplets(embeddings.data, labels, 2.0, rng)  # alpha 2: never an empty batch
        optimizer.zero_grad()
        mean_triplet_loss(embeddings, triplets, 2.0).backward()
        optimizer.step()

    out["train"] = sides.timed(step, max(1, args.repeats // 2), warmup=1)
    return out


def run_torch(args):
    import torch
    from tinyconv import weights
    from tinyconv.faces.train import select_triplets
    from torch_facenet import TorchFaceNet
    torch.set_num_threads(2)
    model = TorchFaceNet(weights.ensure("facenet")).eval()
    check, batches, x, labels = inputs(args)
    with torch.no_grad():
        out = {"_encodings": model(torch.from_numpy(check)).numpy().tolist(), "_about": f"torch {torch.__version__}"}
    for batch, xb in batches.items():
        xt = torch.from_numpy(xb)

        def encode():
            with torch.no_grad():
                model(xt)
        out[f"batch {batch}"] = sides.timed(encode, args.repeats, warmup=1)
    trained = [k for k in model.p if k.endswith(("/kernel", "/bias"))]  # batch norm frozen, as ours
    for key in trained:
        model.p[key] = torch.nn.Parameter(model.p[key])
    optimizer = torch.optim.Adam([model.p[k] for k in trained], lr=1e-5)
    xt, rng = torch.from_numpy(x), np.random.default_rng(1)

    def step():
        e = torch.nn.functional.normalize(model(xt), dim=-1)
        a, p, n = (torch.from_numpy(i) for i in select_triplets(e.detach().numpy(), labels, 2.0, rng))
        loss = torch.clamp(((e[a] - e[p]) ** 2).sum(-1) - ((e[a] - e[n]) ** 2).sum(-1) + 2.0, min=0).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    out["train"] = sides.timed(step, max(1, args.repeats // 2), warmup=1)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=sides.ROUNDS, help="alternating runs of each side")
    parser.add_argument("--train-batch", type=int, default=18, help="images per training step (6 people x 3)")
    args = sides.parse(parser, run_ours, run_torch)
    if args is None:
        return
    best = sides.compare(__file__, ["--repeats", str(args.repeats), "--train-batch", str(args.train_batch)],
                         args.rounds)
    ours, theirs = best["ours"], best.get("torch")
    print(f"tinyconv: {ours['_about']}")
    if theirs:
        diff = np.abs(np.array(ours["_encodings"]) - np.array(theirs["_encodings"])).max()
        print(f"{theirs['_about']}; encodings of the same 2 images: max abs difference {diff:.2e}")
    print(f"{'case (best median over rounds)':<34} {'tinyconv':>12} {'torch':>12} {'ours/torch':>10}")
    for batch in (1, 32):
        rate = batch / ours[f"batch {batch}"][0]
        line = f"{'encodings/s, batch ' + str(batch):<34} {rate:12.1f}"
        if theirs:
            torch_rate = batch / theirs[f"batch {batch}"][0]
            line += f" {torch_rate:12.1f} {rate / torch_rate:9.2f}x"
        print(line)
    line = f"{'training step, ' + str(args.train_batch) + ' images (s)':<34} {ours['train'][0]:12.2f}"
    if theirs:
        line += f" {theirs['train'][0]:12.2f} {theirs['train'][0] / ours['train'][0]:9.2f}x"
    print(line)


if __name__ == "__main__":
    main()
