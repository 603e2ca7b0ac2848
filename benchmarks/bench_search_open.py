"""What a command pays before its first 1:K query (`FaceSearch(db)`), exact vs HNSW, by the number of stored faces.

    python benchmarks/bench_search_open.py 10000 30000 100000 300000 1000000

Exact reads every encoding from SQLite; HNSW loads the graph file beside the database and checks it against the
database. The graph here is built with ef_construction 16 (fast): the file has the layout and size of the real one
(M as in search.py), only its search quality differs, and the open does not depend on that. Query latency and
recall with the real graph: bench_search.py. Median of 3 opens each, files in the page cache.
"""
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinyconv.faces.database import DIM, FaceDatabase  # noqa: E402
from tinyconv.faces.search import M, FaceSearch, hnsw_path  # noqa: E402


def open_seconds(n, repeats=3):
    """{method: median seconds of FaceSearch(db, method)} for n random unit vectors stored 1000 per photo."""
    import hnswlib
    base = np.random.default_rng(0).standard_normal((n, DIM)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as folder:
        db = FaceDatabase(Path(folder) / "faces.db")
        for start in range(0, n, 1000):
            db.add_photo(f"photo{start}.jpg", f"{start:064x}", "synthetic", "course",
                         [(e, None, None) for e in base[start:start + 1000]])
        index = hnswlib.Index(space="l2", dim=DIM)
        index.init_index(max_elements=n, M=M, ef_construction=16)
        index.add_items(base, db.face_ids())
        index.save_index(str(hnsw_path(db)))
        del index
        times = {"exact": [], "hnsw": []}
        for _ in range(repeats):
            for method in times:
                start = time.perf_counter()
                FaceSearch(db, method=method)
                times[method].append(time.perf_counter() - start)
    return {method: float(np.median(t)) for method, t in times.items()}


def main():
    sizes = [int(n) for n in sys.argv[1:]] or [10000, 100000]
    print(f"{'faces':>9} {'exact open s':>13} {'HNSW open s':>12}")
    for n in sizes:
        t = open_seconds(n)
        print(f"{n:>9} {t['exact']:>13.3f} {t['hnsw']:>12.3f}", flush=True)


if __name__ == "__main__":
    main()
