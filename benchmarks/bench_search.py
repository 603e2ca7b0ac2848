"""1:K search over face encodings: exact (one matrix product) against HNSW (hnswlib), at 10k, 100k and 1M faces.

    python benchmarks/bench_search.py                 # 10k, 100k, 1M
    python benchmarks/bench_search.py --sizes 10000   # one size

Synthetic, face-like data: 128-d unit vectors in identities of 10 faces each (a random centre on the sphere plus
noise, so that two faces of one identity are about 0.85 apart, as FaceNet's same-person pairs on LFW), and queries
that are new faces of stored identities. For each size, each method runs in its own process, and reports:
build time, memory (growth of the resident set), the latency of one query (median of 200), the time to load the
HNSW graph from its file (what a `search` command pays), and HNSW's recall@10 against the exact answer, at the
default ef and at other ef values of the same graph (ef is a query-time setting). The HNSW build shows its
progress on stderr (the 1M build takes tens of minutes on 2 cores).

Switch point: a `search` command on n faces pays, exact, loading n encodings from the database plus one matrix
product; HNSW, loading its graph file plus one query. Each size prints both and the time HNSW saves;
tinyconv.faces.search.SWITCH is the size where that saving stops being noise beside the seconds a search
command spends on the network (its docstring has the numbers).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinyconv.faces.search import EF, EF_CONSTRUCTION, M, exact_nearest, hnsw_index  # noqa: E402
from tinyconv.progress import Progress  # noqa: E402

EFS = (50, 100, 200, 400, 800)  # query-time ef values whose recall@10 is reported beside the default's
DIM, PER_IDENTITY, NOISE = 128, 10, 0.065  # NOISE per coordinate: same-identity distance ~ sqrt(2 * 128) * 0.065


def data(n, queries=1000, seed=0):
    """n face-like unit vectors (float32) and `queries` new faces of their identities."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(n // PER_IDENTITY, 1), DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def faces(count):
        x = centres[rng.integers(0, len(centres), count)] + NOISE * rng.normal(size=(count, DIM)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    base = np.concatenate([faces(min(n - start, 100_000)) for start in range(0, n, 100_000)])
    return base, faces(queries)


def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


def latency(search, queries, repeats=200):
    times = []
    for q in queries[:repeats]:
        start = time.perf_counter()
        search(q[None])
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run_case(n, method):
    """One measurement, in this process: a dict of numbers."""
    base, queries = data(n)
    before = rss()
    if method == "exact":
        start = time.perf_counter()
        matrix = np.ascontiguousarray(base)
        build = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as folder:  # what loading n encodings costs (as one blob of floats)
            import sqlite3
            db = sqlite3.connect(os.path.join(folder, "f.db"))
            db.execute("CREATE TABLE faces (id INTEGER PRIMARY KEY, encoding BLOB)")
            db.executemany("INSERT INTO faces (encoding) VALUES (?)", ((row.tobytes(),) for row in base))
            db.commit()
            start = time.perf_counter()
            blobs = [b for b, in db.execute("SELECT encoding FROM faces")]
            np.frombuffer(b"".join(blobs), np.float32).reshape(n, DIM)
            load = time.perf_counter() - start
            db.close()
        query = latency(lambda q: exact_nearest(matrix, q, 10), queries)
        return {"build_s": build, "memory_mb": base.nbytes / 1e6, "query_ms": query * 1e3, "load_s": load}
    progress = Progress(n, f"HNSW build of {n}", unit="faces", lines=True)
    start = time.perf_counter()
    index = hnsw_index(base, np.arange(n), progress=progress)
    build = time.perf_counter() - start
    memory = rss() - before
    query = latency(lambda q: index.knn_query(q, k=10), queries)
    truth, _ = exact_nearest(base, queries, 10)

    def recall(ef):
        index.set_ef(ef)
        found, _ = index.knn_query(queries, k=10)
        return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found)]))
    recalls = {ef: recall(ef) for ef in sorted({EF, *EFS})}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "f.hnsw")
        index.save_index(path)
        import hnswlib
        start = time.perf_counter()
        again = hnswlib.Index(space="l2", dim=DIM)
        again.load_index(path)
        load = time.perf_counter() - start
    return {"build_s": build, "memory_mb": memory / 1e6, "query_ms": query * 1e3, "load_s": load,
            "recall": recalls[EF], "recall_by_ef": recalls}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--case", nargs=2, metavar=("N", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(int(args.case[0]), args.case[1])))
        return
    from sides import describe
    print(describe())
    print(f"HNSW settings: M={M}, ef_construction={EF_CONSTRUCTION}, ef={EF}; {PER_IDENTITY} faces per identity")
    print(f"{'faces':>9} {'method':>6} {'build s':>9} {'memory MB':>10} {'query ms':>9} {'load s':>8} {'recall@10':>9}")
    for n in args.sizes:
        results = {}
        for method in ("exact", "hnsw"):
            out = subprocess.run([sys.executable, __file__, "--case", str(n), method], stdout=subprocess.PIPE,
                                 text=True, check=True).stdout
            r = results[method] = json.loads(out.splitlines()[-1])
            print(f"{n:>9} {method:>6} {r['build_s']:>9.2f} {r['memory_mb']:>10.0f} {r['query_ms']:>9.3f} "
                  f"{r['load_s']:>8.3f} {r.get('recall', 1.0):>9.4f}", flush=True)
        print(f"{n:>9} HNSW recall@10 by ef: " + ", ".join(f"ef {ef} {rec:.4f}" for ef, rec in
                                                           results["hnsw"]["recall_by_ef"].items()))
        exact = results["exact"]["load_s"] + results["exact"]["query_ms"] / 1e3
        hnsw = results["hnsw"]["load_s"] + results["hnsw"]["query_ms"] / 1e3
        print(f"{n:>9} one search command: exact {exact * 1e3:.1f} ms, HNSW {hnsw * 1e3:.1f} ms (load + query), "
              f"HNSW saves {(exact - hnsw) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
