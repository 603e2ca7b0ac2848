"""The 1:K lookup of the faces package: the k nearest stored faces of query encodings, exact (one matrix product)
below `SWITCH` faces, HNSW from there on. `identify`, `who_is_it` and `search` all go through `FaceSearch`.

For unit encodings the L2 distance is sqrt(2 - 2 a.b), so the exact search ranks by one (queries x faces) matrix
product, done in blocks; the distances of the k chosen faces are then computed directly (|a - b|, not the
cancellation-prone sqrt(2 - 2 a.b)), so exact and HNSW report the same numbers. From `SWITCH` candidate faces on,
when hnswlib is installed (the optional extra `pip install -e ".[hnsw]"`), an HNSW graph (Malkov & Yashunin 2016)
is kept beside the database as `<db>.hnsw`, labelled by face id: new faces are added and deleted ones marked after
each `index` and before each use, and it is built again when it is missing, unreadable or stale (made for another
database file of the same name).

Measured by `python benchmarks/bench_search.py` and `benchmarks/bench_search_open.py` (README, "Scale of the 1:K
search"; face-like synthetic unit vectors stored in a FaceDatabase, through this class; 2 cores). A command's
lookup costs "open" (exact: read every encoding from SQLite; HNSW: load the graph file and check it against the
database) plus one query per face:

    faces   exact open + query     HNSW (M=32, ef=800) open + query   HNSW build   HNSW recall@10
    10k     0.028 s + 0.34 ms      0.036 s + 2.3 ms                   2 s          1.0000
    100k    0.20 s + 5.7 ms        0.23 s + 4.8 ms                    78 s         0.9999
    300k    1.21 s                 0.98 s
    1M      4.63 s + 57 ms         2.89 s + 16 ms                     1,971 s      0.9931

Exact is ahead up to 100k faces, HNSW from 300k on: SWITCH is between the two. Settings: M=16 reached
only recall@10 0.954 (ef 400) and 0.974 (ef 800) at 1M, so M=32; with M=32, ef 400 gives 0.981 at 1M and ef 800
0.9931, so EF=800 (ef_construction 200). The ids are unique on both sides, so the set operations below are told so
(`assume_unique`): NumPy's hashing unique of a million ids cost more than loading the graph.
"""
import importlib.util

import numpy as np

from tinyconv.faces.database import DIM
from tinyconv.files import atomic_write

SWITCH = 200_000  # candidate faces: from here on HNSW (between the measured 100k and 300k, see above)
M, EF_CONSTRUCTION, EF = 32, 200, 800  # HNSW settings: recall@10 >= 0.99 up to 1M faces (measured, see above)
STALE_SAMPLE = 32  # faces whose encodings are compared between the database and its HNSW file


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
        chunk = queries[start:start + block]
        sims = chunk @ base.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < len(base) else np.tile(np.arange(k), (len(sims), 1))
        exact = np.linalg.norm(chunk[:, None, :] - base[top], axis=-1)  # (block, k): |a - b| of the chosen faces
        order = np.argsort(exact, axis=1, kind="stable")
        best[start:start + block] = np.take_along_axis(top, order, axis=1)
        dist[start:start + block] = np.take_along_axis(exact, order, axis=1)
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


def use_hnsw(candidates):
    """Is HNSW the method for a lookup among `candidates` faces (the measured switch point, hnswlib installed)?"""
    return candidates >= SWITCH and hnsw_available()


class FaceSearch:
    """The faces of a FaceDatabase, ready for k-nearest queries: all of them (`search`), or only those with a
    person's name (`named=True`: identify, who_is_it). `method`: "auto" (exact below SWITCH candidate faces, HNSW
    from there on), "exact" or "hnsw". A snapshot: faces added later are found by the next FaceSearch."""

    def __init__(self, db, named=False, method="auto"):
        counts = db.counts()
        candidates = counts["faces"] - (counts["unnamed"] if named else 0)
        self.method = ("hnsw" if use_hnsw(candidates) else "exact") if method == "auto" else method
        where = "person IS NOT NULL" if named else "1"
        if self.method == "hnsw":
            self.index, live = update_hnsw(db)
            self.allowed = set(np.intersect1d(live, db.face_ids(where), assume_unique=True).tolist()) if named else None
            self.size = len(live) if self.allowed is None else len(self.allowed)
        else:
            self.index, self.allowed = None, None
            self.ids, self.encodings = db.faces(where)
            self.size = len(self.ids)

    def nearest(self, queries, k):
        """-> (face ids (q, k'), distances (q, k')), nearest first; k' = min(k, number of candidate faces)."""
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        k = min(k, self.size)
        if k == 0:
            return np.empty((len(queries), 0), np.int64), np.empty((len(queries), 0), np.float32)
        if self.index is None:
            rows, dist = exact_nearest(self.encodings, queries, k)
            return self.ids[rows], dist
        self.index.set_ef(max(EF, k))
        if self.allowed is None:
            labels, squared = self.index.knn_query(queries, k=k)
        else:  # a Python filter: hnswlib wants one thread for it
            labels, squared = self.index.knn_query(queries, k=k, num_threads=1, filter=self.allowed.__contains__)
        return labels.astype(np.int64), np.sqrt(np.maximum(squared, 0))


def hnsw_path(db):
    """The HNSW file kept beside the database: `<db>.hnsw`."""
    return db.path.with_name(db.path.name + ".hnsw")


def update_hnsw(db):
    """-> (index, live face ids): `<db>.hnsw` with the faces it lacks added and the deleted ones marked, or built
    again when it is missing, unreadable or stale; saved (atomically) when it changed.

    Face ids only grow (AUTOINCREMENT), so the faces it lacks are those above its largest label: only they are read.
    Stale: a finite face at or below that label that it lacks, or a sampled face whose encoding differs (the
    database file was replaced).
    """
    import hnswlib

    path = hnsw_path(db)
    index = None
    if path.is_file():
        index = hnswlib.Index(space="l2", dim=DIM)
        try:
            index.load_index(str(path))
        except RuntimeError:  # damaged, or another layout: it is only an index, build it again
            index = None
    db_ids = db.face_ids()
    present = np.array([] if index is None else index.get_ids_list(), dtype=np.int64)
    if index is not None and _stale(index, db, present, db_ids):
        index = None
    if index is None:
        ids, encodings = db.faces()
        index, changed, live = hnsw_index(encodings, ids), True, ids
    else:
        ids, encodings = db.faces("id > ?", (int(present.max()) if len(present) else 0,))
        if len(ids):
            index.resize_index(index.get_current_count() + len(ids))
            index.add_items(encodings, ids)
        marked = 0
        for label in np.setdiff1d(present, db_ids, assume_unique=True):  # deleted labels stay listed by hnswlib
            try:
                index.mark_deleted(int(label))
                marked += 1
            except RuntimeError:  # marked already
                pass
        changed = bool(len(ids) or marked)
        live = np.concatenate([np.intersect1d(present, db_ids, assume_unique=True), ids])  # ids: above all of present
    if changed:
        try:
            with atomic_write(path) as tmp:
                index.save_index(str(tmp))
        except OSError:  # a read-only folder: the index still serves this process
            pass
    index.set_ef(EF)
    return index, live


def _stale(index, db, present, db_ids):
    """Was this index made for another database file than `db` (see update_hnsw)?"""
    if not len(present):
        return bool(len(db_ids))
    lacking = np.setdiff1d(db_ids[db_ids <= present.max()], present, assume_unique=True)
    if len(lacking) > STALE_SAMPLE or len(_faces_with_ids(db, lacking)[0]):  # NaN faces are never in the index
        return True
    shared = np.intersect1d(present, db_ids, assume_unique=True)
    sample = shared[np.linspace(0, len(shared) - 1, min(len(shared), STALE_SAMPLE)).astype(int)] if len(shared) \
        else shared
    ids, encodings = _faces_with_ids(db, sample)
    try:
        stored = np.asarray(index.get_items(ids), np.float32).reshape(len(ids), DIM)
    except RuntimeError:  # a label deleted in the index but alive in the database
        return True
    return not np.array_equal(stored, encodings)


def _faces_with_ids(db, ids):
    """db.faces() of at most a few ids."""
    ids = [int(i) for i in ids]
    return db.faces(f"id IN ({','.join('?' * len(ids))})", ids) if ids else db.faces("0")
