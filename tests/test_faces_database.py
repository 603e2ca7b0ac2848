"""The SQLite face database: concurrent writers, damaged and foreign files, NaN encodings, migration from HDF5."""
import multiprocessing
import sqlite3

import h5py
import numpy as np
import pytest

from tinyconv.faces import FaceDatabase, who_is_it
from tinyconv.faces.__main__ import main
from tinyconv.faces.database import migrate
from tinyconv.faces.encoding import encode, model_fingerprint
from tinyconv.tensor import Tensor


class PixelModel:
    """(N, 160, 160, 3) -> 128 pixel values of each image, plus 1: distinct images, distinct codes; no weights."""

    def __call__(self, x):
        return Tensor(x.data.reshape(len(x.data), -1)[:, ::601][:, :128] + 1.0)

    def state_dict(self):
        return {"Pixel/bias": np.array([1.0])}


def images(n, seed):
    return list(np.random.default_rng(seed).integers(0, 256, (n, 24, 24, 3), dtype=np.uint8))


def enrol_many(path, worker, count):
    model = PixelModel()
    db = FaceDatabase(path)
    for i in range(count):
        db.enroll(f"person-{worker}-{i}", images(1, 1000 * worker + i), model, "course")


def test_eight_processes_enrol_at_once_and_nothing_is_lost(tmp_path):
    path = tmp_path / "faces.db"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=enrol_many, args=(path, w, 25)) for w in range(8)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
    assert [p.exitcode for p in workers] == [0] * 8
    db = FaceDatabase(path)
    assert len(db) == 200 and len(db.names()) == 200
    assert db.counts()["faces"] == 200
    np.testing.assert_allclose(db["person-3-7"][0], encode(PixelModel(), images(1, 3007), "course")[0])
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def enrol_threes(path, count):
    model, db = PixelModel(), FaceDatabase(path)
    for i in range(count):
        db.enroll(f"p{i}", images(3, i), model, "course")   # three faces in one transaction


def test_readers_never_see_half_an_enrolment(tmp_path):
    path = tmp_path / "faces.db"
    writer = multiprocessing.get_context("fork").Process(target=enrol_threes, args=(path, 40))
    writer.start()
    reads = 0
    while writer.is_alive():
        people = FaceDatabase(path).people()
        assert all(len(encodings) == 3 for encodings in people.values())
        reads += 1
    writer.join()
    assert reads > 1
    assert writer.exitcode == 0 and len(FaceDatabase(path)) == 40


def test_remove_during_enrol_is_not_undone(tmp_path):
    path, model = tmp_path / "faces.db", PixelModel()
    first, second = FaceDatabase(path), FaceDatabase(path)   # two handles, as two processes would have
    first.enroll("kian", images(1, 0), model, "course")
    second.enroll("ann", images(1, 1), model)
    first.remove("kian")
    second.enroll("bob", images(1, 2), model)            # a writer that opened before the removal
    assert FaceDatabase(path).names() == ["ann", "bob"]


def test_nan_is_never_written_and_never_matched(tmp_path):
    path, model = tmp_path / "faces.db", PixelModel()
    db = FaceDatabase(path)
    db.enroll("ann", images(1, 0), model, "course")
    db.enroll("andrew", images(1, 1), model)

    class NanModel(PixelModel):
        def __call__(self, x):
            return Tensor(np.full((len(x.data), 128), np.nan, np.float32))

        def state_dict(self):
            return PixelModel().state_dict()  # the same fingerprint: only the output is damaged

    with pytest.raises(ValueError, match="NaN or infinite encoding"):
        db.enroll("bob", images(1, 2), NanModel())
    assert db.names() == ["andrew", "ann"]
    with sqlite3.connect(path) as con:   # a damaged file: andrew's stored encoding becomes NaN
        con.execute("UPDATE faces SET encoding = ? WHERE person = (SELECT id FROM people WHERE name = 'andrew')",
                    (np.full(128, np.nan, np.float32).tobytes(),))
    distance, name = who_is_it(images(1, 5)[0], db, model)
    assert name == "ann" and np.isfinite(distance)
    assert len(db["andrew"]) == 0


def test_foreign_files_are_clear_errors(tmp_path, capsys):
    folder = tmp_path / "adir"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder, not a face database file"):
        FaceDatabase(folder)
    text = tmp_path / "notes.db"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a face database \\(not an SQLite file\\)"):
        FaceDatabase(text)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (x)")
    with pytest.raises(ValueError, match="an SQLite file, but not a tinyconv face database"):
        FaceDatabase(other)
    for argv in (["list", "--db", folder], ["identify", "x.jpg", "--db", folder], ["cluster", "--db", text]):
        status = main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert status == 1 and err.startswith("error: ") and err.count("\n") == 1, (argv, err)
    main(["list", "--db", str(folder)])
    assert "adir: is a folder" in capsys.readouterr().err


def test_unwritable_database_names_the_database_not_a_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "faces.db"
    FaceDatabase(path).enroll("ann", images(1, 0), PixelModel(), "course")
    real_connect = sqlite3.connect

    def read_only(target, **kwargs):  # a read-only folder (root ignores chmod, so SQLite opens it read-only)
        return real_connect(f"file:{target}?mode=ro", uri=True, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    with pytest.raises(PermissionError) as error:
        FaceDatabase(path).enroll("bob", images(1, 1), PixelModel())
    assert str(error.value).startswith(f"{path}: cannot write the face database")
    monkeypatch.undo()
    assert FaceDatabase(path).names() == ["ann"]


def test_old_hdf5_database_points_to_migrate_and_migrates(tmp_path, capsys):
    old, new = tmp_path / "faces.h5", tmp_path / "faces.db"
    rng = np.random.default_rng(0)
    ann = rng.normal(size=(2, 128)).astype(np.float32)
    with h5py.File(old, "w") as f:
        f.attrs.update(format="tinyconv-face-database", version=1, model="abc123", preprocess="course")
        f.create_dataset("people/ann", data=ann)
        f.create_dataset("people/bob", data=rng.normal(size=(1, 128)).astype(np.float32))
    with pytest.raises(ValueError, match=f"migrate {old} {new}"):
        FaceDatabase(old)
    assert main(["list", "--db", str(old)]) == 1 and "python -m tinyconv.faces migrate" in capsys.readouterr().err
    assert main(["migrate", str(old), str(new)]) == 0
    assert "migrated 2 people (3 encodings)" in capsys.readouterr().out
    db = FaceDatabase(new)
    assert db.names() == ["ann", "bob"] and db.model == "abc123" and db.preprocess == "course"
    np.testing.assert_array_equal(db["ann"], ann)
    assert main(["migrate", str(old), str(new)]) == 1 and "already exists" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not a readable HDF5"):
        migrate(tmp_path / "missing.h5", tmp_path / "x.db")
    assert not (tmp_path / "x.db").exists()


def test_list_cannot_be_broken_by_a_name(tmp_path, capsys):
    path = tmp_path / "faces.db"
    assert main(["list", "--db", str(path)]) == 0
    for name in ["ann\nbob", "x\r", "zoe\u2028"]:
        with pytest.raises(ValueError, match="invalid name"):
            FaceDatabase(path).enroll(name, images(1, 0), PixelModel(), "course")
    assert model_fingerprint(PixelModel()) and not path.exists()
