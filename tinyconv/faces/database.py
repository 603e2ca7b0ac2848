"""`FaceDatabase`: people, the faces seen in photos, and the photos indexed, in one SQLite file.

Stored through Python's own `sqlite3` in WAL mode: readers never block writers and never see half a change, and
every change (an enrolment, a removal, one indexed photo, a clustering, a naming) is one transaction that starts
with `BEGIN IMMEDIATE`, so writers from several processes queue up (busy timeout) and lose nothing.

Schema version 1 (`PRAGMA user_version`):

    meta(key, value)       format = "tinyconv-face-database", model = fingerprint of the weights that made the
                           encodings, preprocess = the preprocessing they were made with (both empty while no face)
    people(id, name)       a named person
    photos(id, path, sha256, indexed, status, faces, error)
                           one row per photo `index` has looked at: status "ok" (with its number of faces) or
                           "error" (with the reason); a photo whose SHA-256 has status "ok" is never analysed again
    faces(id, encoding, photo, sha256, x0, y0, x1, y1, landmarks, added, person, enrolled, cluster)
                           encoding: 128 float32 (512 bytes, finite); photo/sha256: the file it came from (NULL for
                           an enrolled array); box in pixels (NULL when the face is the whole image); landmarks: 10
                           float32 (5 points x, y) or NULL; added: Unix time; person: NULL for a face without a
                           name yet; enrolled: 1 for `enroll`, 0 for `index`; cluster: the group `cluster` found

The model and preprocessing are recorded because distances between encodings of different models or
preprocessings mean nothing: the database refuses to mix them. A NaN or inf encoding is never written, and one
found in a damaged file is never returned (so never matched).
"""
import contextlib
import sqlite3
import time
import unicodedata
from pathlib import Path

import numpy as np

from tinyconv.faces.encoding import encode, model_fingerprint
from tinyconv.faces.preprocess import parse_preprocessing
from tinyconv.faces.thresholds import DEFAULT_PREPROCESS

FORMAT = "tinyconv-face-database"
SCHEMA_VERSION = 1
DIM = 128
BUSY_TIMEOUT = 60.0  # seconds a writer waits for another writer's transaction to end
NAME_MAX = 100

SQLITE_MAGIC = b"SQLite format 3\x00"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL, indexed REAL NOT NULL,
                     status TEXT NOT NULL CHECK (status IN ('ok', 'error')), faces INTEGER NOT NULL DEFAULT 0,
                     error TEXT);
CREATE INDEX photos_sha256 ON photos (sha256);
CREATE TABLE faces (id INTEGER PRIMARY KEY AUTOINCREMENT,  -- ids never reused: the HNSW index keys on them
                    encoding BLOB NOT NULL CHECK (length(encoding) = 512),
                    photo TEXT, sha256 TEXT, x0 REAL, y0 REAL, x1 REAL, y1 REAL,
                    landmarks BLOB CHECK (landmarks IS NULL OR length(landmarks) = 40),
                    added REAL NOT NULL,
                    person INTEGER REFERENCES people (id),
                    enrolled INTEGER NOT NULL DEFAULT 0,
                    cluster INTEGER);
CREATE INDEX faces_person ON faces (person);
CREATE INDEX faces_cluster ON faces (cluster);
CREATE INDEX faces_sha256 ON faces (sha256);
"""


class FaceDatabase:
    """`FaceDatabase(path)` opens the file if it exists (else starts empty; the file is created by the first change).

    db.enroll("kian", ["kian.jpg"], model); db.names(); db["kian"] -> (k, 128); db.remove("kian").
    A file that is not a tinyconv SQLite face database is a ValueError (an old HDF5 one names `migrate`).
    """

    def __init__(self, path):
        self.path = Path(path)
        _check_file(self.path)
        if self.path.exists():
            with self._reading() as db:
                _check_schema(self.path, db)

    # ----- reading ----------------------------------------------------------------------------------------------
    @property
    def model(self):
        """Fingerprint of the model that made the encodings (None while there is no face)."""
        return self._meta().get("model") or None

    @property
    def preprocess(self):
        """The preprocessing that made the encodings, e.g. "standardize-crop150" (None while there is no face)."""
        return self._meta().get("preprocess") or None

    def names(self):
        with self._reading() as db:
            return [name for name, in db.execute("SELECT name FROM people ORDER BY name")]

    def __len__(self):
        with self._reading() as db:
            return db.execute("SELECT count(*) FROM people").fetchone()[0]

    def __contains__(self, name):
        with self._reading() as db:
            return db.execute("SELECT 1 FROM people WHERE name = ?", (name,)).fetchone() is not None

    def __getitem__(self, name):
        """The (k, 128) float32 encodings of `name` (enrolled, and indexed faces named after them)."""
        with self._reading() as db:
            row = db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise ValueError(f"{self.path}: no one named {name!r} in the database")
            rows = db.execute("SELECT encoding FROM faces WHERE person = ? ORDER BY id", (row[0],)).fetchall()
        return _finite(_decode([blob for blob, in rows]))

    def people(self):
        """name -> (k, 128) encodings of every person, read in one transaction (a consistent snapshot)."""
        with self._reading() as db:
            rows = db.execute("SELECT people.name, faces.encoding FROM faces JOIN people ON faces.person = people.id "
                              "ORDER BY faces.id").fetchall()
        grouped = {}
        for name, blob in rows:
            grouped.setdefault(name, []).append(blob)
        people = {name: _finite(_decode(blobs)) for name, blobs in grouped.items()}
        return {name: encodings for name, encodings in sorted(people.items()) if len(encodings)}

    def faces(self, where="1", args=()):
        """(ids (n,) int64, encodings (n, 128) float32) of the faces matching the SQL condition `where`.

        Faces whose stored encoding is not finite (a damaged file) are left out.
        """
        with self._reading() as db:
            rows = db.execute(f"SELECT id, encoding FROM faces WHERE {where} ORDER BY id", args).fetchall()
        ids = np.array([i for i, _ in rows], dtype=np.int64)
        encodings = _decode([blob for _, blob in rows])
        keep = np.isfinite(encodings).all(axis=1)
        return ids[keep], encodings[keep]

    def face_ids(self, where="1", args=()):
        """The ids (n,) int64 of the faces matching the SQL condition `where` (finite or not), ascending."""
        with self._reading() as db:
            return np.array([i for i, in db.execute(f"SELECT id FROM faces WHERE {where} ORDER BY id", args)],
                            dtype=np.int64)

    def face_records(self, ids):
        """face id -> dict(photo, box, person name or None, cluster) for the given ids."""
        ids = [int(i) for i in ids]
        records = {}
        with self._reading() as db:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                rows = db.execute(
                    "SELECT faces.id, photo, x0, y0, x1, y1, people.name, cluster FROM faces "
                    f"LEFT JOIN people ON faces.person = people.id WHERE faces.id IN ({','.join('?' * len(chunk))})",
                    chunk).fetchall()
                for i, photo, x0, y0, x1, y1, name, cluster in rows:
                    box = None if x0 is None else (x0, y0, x1, y1)
                    records[i] = {"photo": photo, "box": box, "person": name, "cluster": cluster}
        return records

    def indexed_sha256s(self):
        """The SHA-256 digests of the photos already indexed without error."""
        with self._reading() as db:
            return {sha for sha, in db.execute("SELECT sha256 FROM photos WHERE status = 'ok'")}

    def counts(self):
        """dict: people, faces, unnamed faces, photos indexed, photos in error."""
        queries = {"people": "SELECT count(*) FROM people", "faces": "SELECT count(*) FROM faces",
                   "unnamed": "SELECT count(*) FROM faces WHERE person IS NULL",
                   "photos": "SELECT count(*) FROM photos WHERE status = 'ok'",
                   "errors": "SELECT count(DISTINCT sha256) FROM photos WHERE status = 'error'"}
        with self._reading() as db:
            return {key: db.execute(sql).fetchone()[0] for key, sql in queries.items()}

    def clusters(self):
        """cluster id -> number of unnamed faces in it, largest first."""
        with self._reading() as db:
            rows = db.execute("SELECT cluster, count(*) FROM faces WHERE person IS NULL AND cluster IS NOT NULL "
                              "GROUP BY cluster ORDER BY count(*) DESC, cluster").fetchall()
        return dict(rows)

    # ----- changes (each one transaction) -----------------------------------------------------------------------
    def enroll(self, name, images, model, preprocess=None, pick="one"):
        """Add the encodings of `images` (paths or uint8 arrays; one for one-shot, or several) to `name`.

        preprocess: the database's own when it has one (another one is refused); else this one, or
        `tinyconv.faces.thresholds.DEFAULT_PREPROCESS` (detection). Every image is encoded before anything
        changes: an image with no face, or with several faces when pick is "one" (pick="largest" takes the
        largest), is a ValueError naming it, and nothing is enrolled.
        """
        _check_name(name)
        images = list(images)
        if not images:
            raise ValueError(f"enroll {name!r}: no images given")
        preprocess = preprocess or self.preprocess or DEFAULT_PREPROCESS
        parse_preprocessing(preprocess)
        fingerprint = model_fingerprint(model)
        self._check(fingerprint, preprocess)   # fail early; checked again inside the transaction
        encodings = encode(model, images, preprocess, pick=pick)
        _check_finite(encodings, f"enroll {name!r}")
        now = time.time()
        with self._writing() as db:
            self._claim(db, fingerprint, preprocess)
            person = _person_id(db, name)
            db.executemany("INSERT INTO faces (encoding, photo, added, person, enrolled) VALUES (?, ?, ?, ?, 1)",
                           [(_blob(e), str(image) if not isinstance(image, np.ndarray) else None, now, person)
                            for e, image in zip(encodings, images)])
        return encodings

    def remove(self, name):
        """Forget `name`: their enrolled faces are deleted, their faces found by `index` become unnamed again."""
        with self._writing() as db:
            row = db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise ValueError(f"{self.path}: no one named {name!r} in the database")
            db.execute("DELETE FROM faces WHERE person = ? AND enrolled = 1", row)
            db.execute("UPDATE faces SET person = NULL, cluster = NULL WHERE person = ?", row)
            db.execute("DELETE FROM people WHERE id = ?", row)
            if db.execute("SELECT count(*) FROM faces").fetchone()[0] == 0:  # empty: any model may fill it again
                db.execute("UPDATE meta SET value = '' WHERE key IN ('model', 'preprocess')")

    def add_photo(self, path, sha256, fingerprint, preprocess, faces):
        """Record one analysed photo and its faces, in one transaction.

        faces: list of (encoding (128,), box (x0, y0, x1, y1) or None, landmarks (5, 2) or None). A photo whose
        SHA-256 is already indexed is left as it is (two copies of one file, or two writers on one photo).
        Returns the number of faces written.
        """
        faces = list(faces)
        for encoding, _, _ in faces:
            _check_finite(np.asarray(encoding)[None], f"{path}")
        now = time.time()
        with self._writing() as db:
            if db.execute("SELECT 1 FROM photos WHERE sha256 = ? AND status = 'ok'", (sha256,)).fetchone():
                return 0
            self._claim(db, fingerprint, preprocess)
            db.execute("DELETE FROM photos WHERE sha256 = ?", (sha256,))  # an earlier failure of this photo
            db.execute("INSERT INTO photos (path, sha256, indexed, status, faces) VALUES (?, ?, ?, 'ok', ?)",
                       (str(path), sha256, now, len(faces)))
            db.executemany(
                "INSERT INTO faces (encoding, photo, sha256, x0, y0, x1, y1, landmarks, added) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(_blob(e), str(path), sha256, *(box if box is not None else (None,) * 4),
                  None if marks is None else np.asarray(marks, np.float32).reshape(10).tobytes(), now)
                 for e, box, marks in faces])
        return len(faces)

    def add_failure(self, path, sha256, error):
        """Record that the photo could not be analysed (it is tried again by the next index)."""
        with self._writing() as db:
            db.execute("DELETE FROM photos WHERE sha256 = ? AND status = 'error'", (sha256,))
            db.execute("INSERT INTO photos (path, sha256, indexed, status, error) VALUES (?, ?, ?, 'error', ?)",
                       (str(path), sha256, time.time(), str(error)))

    def set_clusters(self, ids, labels):
        """Give face ids[i] the cluster labels[i]; every other unnamed face loses its cluster. One transaction."""
        with self._writing() as db:
            db.execute("UPDATE faces SET cluster = NULL WHERE person IS NULL")
            db.executemany("UPDATE faces SET cluster = ? WHERE id = ? AND person IS NULL",
                           [(int(c), int(i)) for i, c in zip(ids, labels)])

    def name_cluster(self, cluster, name):
        """The unnamed faces of `cluster` become `name` (a new person, or more faces of an existing one)."""
        _check_name(name)
        with self._writing() as db:
            faces = db.execute("SELECT count(*) FROM faces WHERE cluster = ? AND person IS NULL",
                               (int(cluster),)).fetchone()[0]
            if not faces:
                known = [c for c, in db.execute("SELECT DISTINCT cluster FROM faces WHERE person IS NULL AND "
                                                "cluster IS NOT NULL ORDER BY cluster")]
                hint = (f"clusters are {known[0]}..{known[-1]}" if known else "run `cluster` first")
                raise ValueError(f"{self.path}: no cluster {cluster} ({hint})")
            person = _person_id(db, name)
            db.execute("UPDATE faces SET person = ?, cluster = NULL WHERE cluster = ? AND person IS NULL",
                       (person, int(cluster)))
        return faces

    # ----- consistency ------------------------------------------------------------------------------------------
    def check_model(self, model):
        """Raise ValueError unless the encodings were made by `model` (or the database is empty)."""
        known = self.model
        if known is not None and model_fingerprint(model) != known:
            raise ValueError(f"{self.path}: its encodings were made by another model (fingerprint {known}); "
                             "encode with that model or use another database")

    def check_preprocessing(self, preprocess):
        """Raise ValueError unless `preprocess` is the one the encodings were made with."""
        known = self.preprocess
        if known is not None and preprocess != known:
            raise ValueError(f"{self.path}: its encodings were made with preprocessing {known!r}, "
                             f"not {preprocess!r}")

    def _check(self, fingerprint, preprocess):
        meta = self._meta()
        _check_meta(self.path, meta.get("model"), meta.get("preprocess"), fingerprint, preprocess)

    def _claim(self, db, fingerprint, preprocess):
        """Inside a write transaction: refuse another model/preprocessing, or record ours on an empty database."""
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        _check_meta(self.path, meta.get("model"), meta.get("preprocess"), fingerprint, preprocess)
        db.executemany("UPDATE meta SET value = ? WHERE key = ?", [(fingerprint, "model"), (preprocess, "preprocess")])

    def _meta(self):
        if not self.path.exists():
            return {}
        with self._reading() as db:
            return dict(db.execute("SELECT key, value FROM meta").fetchall())

    # ----- connections ------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _reading(self):
        """A connection whose reads see one committed state of the file (an empty in-memory one if it is absent)."""
        with self._errors("read"):
            _check_file(self.path)
            db = _connect(self.path) if self.path.exists() else None
            if db is not None:
                db.execute("BEGIN")
                if db.execute("PRAGMA user_version").fetchone()[0] == 0:  # created, but no schema yet
                    _check_schema(self.path, db)
                    db.close()
                    db = None
            if db is None:
                db = sqlite3.connect(":memory:", isolation_level=None)
                db.execute("BEGIN")
                _create_schema(db)
            try:
                yield db
            finally:
                db.close()

    @contextlib.contextmanager
    def _writing(self):
        """One write transaction (BEGIN IMMEDIATE: it waits for other writers, then nobody else writes until the
        commit); an error inside rolls everything back. Creates the file with its schema on the first change."""
        with self._errors("write"):
            _check_file(self.path)
            folder = self.path.parent
            if not folder.is_dir():
                raise FileNotFoundError(f"{self.path}: the folder {folder} does not exist")
            db = _connect(self.path)
            try:
                _check_schema(self.path, db)  # before anything is changed in a file that may not be ours
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    db.execute("PRAGMA journal_mode = WAL")
                db.execute("BEGIN IMMEDIATE")
                if db.execute("PRAGMA user_version").fetchone()[0] == 0:
                    if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                        raise ValueError(f"{self.path}: an SQLite file, but not a tinyconv face database")
                    _create_schema(db)
                _check_schema(self.path, db)
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            finally:
                db.close()

    @contextlib.contextmanager
    def _errors(self, action):
        """SQLite's own errors as one line naming the database file."""
        try:
            yield
        except sqlite3.DatabaseError as e:
            text = str(e)
            if "readonly" in text or "unable to open" in text:
                raise PermissionError(f"{self.path}: cannot {action} the face database ({text}): is the folder "
                                      f"{self.path.parent} writable?") from None
            raise ValueError(f"{self.path}: cannot {action} the face database ({text})") from None


def _connect(path):
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)  # transactions are explicit
    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
    db.execute("PRAGMA synchronous = NORMAL")  # WAL: a killed process loses no commit; power loss maybe the last
    return db


def _create_schema(db):
    """Inside a transaction: the tables, the meta rows, and the schema version."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    db.executemany("INSERT INTO meta VALUES (?, ?)", [("format", FORMAT), ("model", ""), ("preprocess", "")])
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _check_file(path):
    """Refuse what cannot be a face database before SQLite sees it (its messages name no file)."""
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not a face database file")
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(HDF5_MAGIC):
        raise ValueError(f"{path}: an old HDF5 face database; convert it once with "
                         f"`python -m tinyconv.faces migrate {path} {path.with_suffix('.db')}`")
    if head != SQLITE_MAGIC:
        raise ValueError(f"{path}: not a face database (not an SQLite file)")


def _check_schema(path, db):
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == 0 and not db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        return  # an empty SQLite file: the first change writes the schema
    tables = {name for name, in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    fmt = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() if "meta" in tables else None
    if fmt is None or fmt[0] != FORMAT:
        raise ValueError(f"{path}: an SQLite file, but not a tinyconv face database")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{path}: face database schema version {version}; this tinyconv reads version "
                         f"{SCHEMA_VERSION}")


def _check_meta(path, model, known_preprocess, fingerprint, preprocess):
    if model and fingerprint != model:
        raise ValueError(f"{path}: its encodings were made by another model (fingerprint {model}); "
                         "encodings of different models cannot be mixed")
    if known_preprocess and preprocess != known_preprocess:
        raise ValueError(f"{path}: its encodings were made with preprocessing {known_preprocess!r}, "
                         f"not {preprocess!r}")


def _person_id(db, name):
    db.execute("INSERT OR IGNORE INTO people (name) VALUES (?)", (name,))
    return db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()[0]


def _check_name(name):
    """A name is printed on one line of comma-separated output: no control characters, commas, or edge spaces."""
    bad = [c for c in str(name) if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    if (not isinstance(name, str) or not name or name.strip() != name or bad or "," in name or "/" in name
            or len(name) > NAME_MAX):
        raise ValueError(f"invalid name {name!r}: use 1 to {NAME_MAX} printable characters, without commas, "
                         "'/', control characters or surrounding spaces")


def _check_finite(encodings, what):
    if not np.isfinite(encodings).all():
        raise ValueError(f"{what}: the network gave a NaN or infinite encoding (damaged weights or image?); "
                         "nothing was written")


def _blob(encoding):
    return np.asarray(encoding, dtype=np.float32).reshape(DIM).tobytes()


def _decode(blobs):
    if not blobs:
        return np.empty((0, DIM), np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), DIM).copy()


def _finite(encodings):
    return encodings[np.isfinite(encodings).all(axis=1)]


def migrate(old, new):
    """Copy an HDF5 face database of tinyconv 0.1 (`people/<name>` (k, 128) datasets) into a new SQLite one.

    Returns (people, encodings) copied. `new` must not exist yet; on any error it is not left behind.
    """
    import h5py

    old, new = Path(old), Path(new)
    if new.exists():
        raise FileExistsError(f"{new}: already exists; give a new file name")
    try:
        with h5py.File(old, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise ValueError(f"{old}: not a tinyconv HDF5 face database")
            model, preprocess = _text(f.attrs.get("model")), _text(f.attrs.get("preprocess"))
            people = {name: np.asarray(data[()], np.float32) for name, data in f.get("people", {}).items()}
    except OSError as e:
        raise ValueError(f"{old}: not a readable HDF5 face database ({e})") from None
    for name, encodings in people.items():
        _check_name(name)
        if encodings.ndim != 2 or encodings.shape[1] != DIM:
            raise ValueError(f"{old}: people/{name} has shape {encodings.shape}, expected (k, {DIM})")
    db = FaceDatabase(new)
    now = time.time()
    try:
        with db._writing() as con:
            if people:
                db._claim(con, model, preprocess)
            for name, encodings in people.items():
                person = _person_id(con, name)
                con.executemany("INSERT INTO faces (encoding, added, person, enrolled) VALUES (?, ?, ?, 1)",
                                [(_blob(e), now, person) for e in _finite(encodings)])
    except BaseException:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{new}{suffix}").unlink(missing_ok=True)
        raise
    return len(people), sum(len(_finite(e)) for e in people.values())


def _text(value):
    return value.decode() if isinstance(value, bytes) else ("" if value is None else str(value))
