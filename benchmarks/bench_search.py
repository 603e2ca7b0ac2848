"""1:K search over face encodings: exact (one matrix product) against HNSW (hnswlib), at 10k, 100k and 1M faces.

    python benchmarks/bench_search.py                 # 10k, 100k, 1M
    python benchmarks/bench_search.py --sizes 10000   # one size

Synthetic, face-like data: 128-d unit vectors in identities of 10 faces each (a random centre on the sphere plus
noise, so that two faces of one identity are about 0.85 apart, as FaceNet's same-person pairs on LFW), and queries
that are new faces of stored identities. The faces are stored in a FaceDatabase, and each method goes through
`tinyconv.faces.search.FaceSearch`, the lookup of identify, who_is_it and search. For each size, each method runs
in its own process, and reports: build time (HNSW), memory (the encodings; growth of the resident set for HNSW),
the latency of one query (median of 200), the time to open the lookup (what a command pays before its first
query), and HNSW's recall@10 against the exact answer, at the default ef and at other ef values of the same graph
(ef is a query-time setting). The HNSW build shows its progress on stderr (1M faces take minutes).

Switch point: a command's lookup costs "open + one query" (identify and search query once per face of the
photo); each size prints both methods' and the time HNSW saves. tinyconv.faces.search.SWITCH comes from these
numbers (its docstring has them).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinyconv.faces.database import FaceDatabase  # noqa: E402
from tinyconv.faces.search import EF, EF_CONSTRUCTION, M, FaceSearch, exact_nearest, hnsw_index, hnsw_path  # noqa
from tinyconv.progress import Progress  # noqa: E402

EFS = (100, 200, 400, 800, 1600, 3200)  # query-time ef values whose recall@10 is reported beside the default's
PHOTO = 1000  # faces stored per (synthetic) photo
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
    """One measurement, in this process: a dict of numbers.

    The n faces are stored in a FaceDatabase (1000 per photo), as `index` stores them. "open" is what a command
    pays before its first query: `FaceSearch(db)` reading the encodings (exact), or loading the graph file and
    checking it against the database (HNSW). Files were just written, so both read from the page cache.
    """
    base, queries = data(n)
    with tempfile.TemporaryDirectory() as folder:
        db = FaceDatabase(Path(folder) / "faces.db")
        for start in range(0, n, PHOTO):
            db.add_photo(f"photo{start}.jpg", f"{start:064x}", "synthetic", "course",
                         [(e, None, None) for e in base[start:start + PHOTO]])
        ids = db.face_ids()
        result = {"build_s": 0.0}
        if method == "hnsw":
            before = rss()
            progress = Progress(n, f"HNSW build of {n}", unit="faces", lines=True)
            start = time.perf_counter()
            index = hnsw_index(base, ids, progress=progress)
            result["build_s"] = time.perf_counter() - start
            result["memory_mb"] = (rss() - before) / 1e6
            truth = ids[exact_nearest(base, queries, 10)[0]]

            def recall(ef):
                index.set_ef(ef)
                found, _ = index.knn_query(queries, k=10)
                return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found)]))
            result["recall_by_ef"] = {ef: recall(ef) for ef in sorted({EF, *EFS})}
            result["recall"] = result["recall_by_ef"][EF]
            result["query_ms_by_ef"] = {}
            for ef in sorted({EF, *EFS}):
                index.set_ef(ef)
                result["query_ms_by_ef"][ef] = latency(lambda q: index.knn_query(q, k=10), queries) * 1e3
            index.save_index(str(hnsw_path(db)))
            del index
        start = time.perf_counter()
        search = FaceSearch(db, method=method)
        result["open_s"] = time.perf_counter() - start
        assert search.method == method
        if method == "exact":
            result["memory_mb"] = search.encodings.nbytes / 1e6
        result["query_ms"] = latency(lambda q: search.nearest(q, 10), queries) * 1e3
    return result


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
    print(f"{'faces':>9} {'method':>6} {'build s':>9} {'memory MB':>10} {'query ms':>9} {'open s':>8} {'recall@10':>9}")
    for n in args.sizes:
        results = {}
        for method in ("exact", "hnsw"):
            out = subprocess.run([sys.executable, __file__, "--case", str(n), method], stdout=subprocess.PIPE,
                                 text=True, check=True).stdout
            r = results[method] = json.loads(out.splitlines()[-1])
            print(f"{n:>9} {method:>6} {r['build_s']:>9.2f} {r['memory_mb']:>10.0f} {r['query_ms']:>9.3f} "
                  f"{r['open_s']:>8.3f} {r.get('recall', 1.0):>9.4f}", flush=True)
        hnsw = results["hnsw"]
        print(f"{n:>9} HNSW by ef (recall@10, query ms): " + ", ".join(
            f"ef {ef} {rec:.4f} {hnsw['query_ms_by_ef'][ef]:.2f}" for ef, rec in hnsw["recall_by_ef"].items()))
        exact, hnsw = (results[m]["open_s"] + results[m]["query_ms"] / 1e3 for m in ("exact", "hnsw"))
        print(f"{n:>9} one lookup of a command: exact {exact * 1e3:.1f} ms, HNSW {hnsw * 1e3:.1f} ms (open + one "
              f"query), HNSW saves {(exact - hnsw) * 1e3:.0f} ms", flush=True)


if __name__ == "__main__":
    main()
