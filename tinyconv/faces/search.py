"""The k nearest stored faces of query encodings: exact (one matrix product) while it is fast, HNSW beyond.

For unit encodings the L2 distance is sqrt(2 - 2 a.b), so the exact search is one (queries x faces) matrix
product, done in blocks. From `SWITCH` faces on, when hnswlib is installed (the optional extra
`pip install -e ".[hnsw]"`), an HNSW graph (Malkov & Yashunin 2016) is kept beside the database as `<db>.hnsw`,
labelled by face id, and brought up to date (new faces added, deleted ones marked) after each `index` and before
each use.

The switch point, measured by benchmarks/bench_search.py (a `search` command pays, exact, loading every encoding
from the database plus one matrix product; HNSW, loading its graph plus one query): 10k faces 120 vs 89 ms, 30k
207 vs 185 ms, 100k 1150 vs 663 ms, 1M 15.8 s exact. Below 100k the difference is under 1% of a search command
(loading the network and finding the faces take seconds) and not worth building a graph (75 s for 30k faces
here); at 100k HNSW saves half a second (15%).
"""
import importlib.util

import numpy as np

from tinyconv.faces.database import DIM
from tinyconv.files import atomic_write

SWITCH = 100_000  # faces: from here on HNSW (measured, see above)
M, EF_CONSTRUCTION, EF = 16, 200, 400  # HNSW settings: recall@10 0.994 on 100k face-like vectors (bench_search.py)


def exact_nearest(base, queries, k, block_floats=2**25):
    """k nearest rows of base (n, d) for each query (q, d), both of unit length -> (indices, distances) (q, k).

    Queries go in blocks whose similarity matrix holds at most `block_floats` floats (128 MB).
    """
    k = min(k, len(base))
    queries = np.atleast_2d(np.asarray(queries, np.float32))
    block = max(1, block_floats // max(len(base), 1))
    best = np.empty((len(queries), k), np.int64)
    dist = np.empty((len(queries), k), np.float32)
    for start in range(0, len(queries), block):
        sims = queries[start:start + block] @ base.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < len(base) else np.tile(np.arange(k), (len(sims), 1))
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1)
        best[start:start + block] = np.take_along_axis(top, order, axis=1)
        dist[start:start + block] = np.sqrt(np.maximum(2 - 2 * np.take_along_axis(top_sims, order, axis=1), 0))
    return best, dist


def hnsw_index(encodings, labels, m=M, ef_construction=EF_CONSTRUCTION, ef=EF, progress=None):
    """A new hnswlib index (L2) of `encodings` (n, 128) labelled `labels` (n,); `progress`: a Progress of n."""
    import hnswlib

    index = hnswlib.Index(space="l2", dim=DIM)
    index.init_index(max_elements=max(len(encodings), 1), M=m, ef_construction=ef_construction)
    step = len(encodings) if progress is None else 20_000
    for start in range(0, len(encodings), max(step, 1)):
        index.add_items(encodings[start:start + step], labels[start:start + step])
        if progress is not None:
            progress.update(len(encodings[start:start + step]))
    index.set_ef(ef)
    return index


def hnsw_available():
    """Is the optional hnswlib installed?"""
    return importlib.util.find_spec("hnswlib") is not None


class FaceSearch:
    """The faces of a FaceDatabase, ready for k-nearest queries. `method`: "auto", "exact" or "hnsw"."""

    def __init__(self, db, method="auto"):
        if method == "auto":
            method = "hnsw" if db.counts()["faces"] >= SWITCH and hnsw_available() else "exact"
        self.method = method
        if method == "hnsw":
            self.index = update_hnsw(db)
        else:
            self.index = None
            self.ids, self.encodings = db.faces()

    def nearest(self, queries, k):
        """-> (face ids (q, k'), distances (q, k')), nearest first; k' = min(k, number of faces)."""
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        k = min(k, len(self.ids) if self.index is None else self.index.get_current_count())
        if k == 0:
            return np.empty((len(queries), 0), np.int64), np.empty((len(queries), 0), np.float32)
        if self.index is None:
            rows, dist = exact_nearest(self.encodings, queries, k)
            return self.ids[rows], dist
        self.index.set_ef(max(EF, k))
        labels, squared = self.index.knn_query(queries, k=k)
        return labels.astype(np.int64), np.sqrt(np.maximum(squared, 0))


def update_hnsw(db):
    """Load `<db>.hnsw` (or build it), add the faces it lacks, mark the deleted ones, save it; return it.

    Face ids only grow, so the faces it lacks are those above its largest label: only they are read.
    """
    import hnswlib

    path = db.path.with_name(db.path.name + ".hnsw")
    index = None
    if path.is_file():
        index = hnswlib.Index(space="l2", dim=DIM)
        try:
            index.load_index(str(path))
        except RuntimeError:  # damaged, or another layout: it is only an index, build it again
            index = None
    if index is None:
        ids, encodings = db.faces()
        index, changed = hnsw_index(encodings, ids), True
    else:
        present = np.array(index.get_ids_list(), dtype=np.int64)
        ids, encodings = db.faces("id > ?", (int(present.max()) if len(present) else 0,))
        if len(ids):
            index.resize_index(index.get_current_count() + len(ids))
            index.add_items(encodings, ids)
        marked = 0
        for label in np.setdiff1d(present, db.face_ids()):
            try:
                index.mark_deleted(int(label))
                marked += 1
            except RuntimeError:  # marked already
                pass
        changed = bool(len(ids) or marked)
    if changed:
        with atomic_write(path) as tmp:
            index.save_index(str(tmp))
    index.set_ef(EF)
    return index
