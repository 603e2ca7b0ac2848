"""Indexing photo folders (bad files, resuming, kill -9, worker processes, Dask), search, cluster and name."""
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinyconv.faces import FaceDatabase
from tinyconv.faces import __main__ as faces_cli
from tinyconv.faces.__main__ import main
from tinyconv.faces.cluster import bcubed_scores, chinese_whispers, pairwise_scores
from tinyconv.faces.index import Region, index_photos
from tinyconv.faces.recognition import identify, who_is_it
from tinyconv.faces import search
from tinyconv.faces.search import FaceSearch, exact_nearest, hnsw_available, hnsw_path
from tinyconv.models.facenet import facenet
from tinyconv.tensor import Tensor


class PixelModel:
    """(N, 160, 160, 3) -> 128 pixel values of each image: distinct images, distinct codes; no weights."""

    def __call__(self, x):
        return Tensor(x.data.reshape(len(x.data), -1)[:, ::601][:, :128] + 1.0)

    def state_dict(self):
        return {"Pixel/bias": np.array([1.0])}


def pixel_model():
    return PixelModel()


def halves(image):
    """A fake detector: the left and right halves of the photo are two faces, with made-up landmarks."""
    h, w = image.shape[:2]
    found = []
    for x0 in (0, w // 2):
        box = (float(x0), 0.0, float(x0 + w // 2), float(h))
        marks = np.array([[x0 + 1, 1], [x0 + 2, 1], [x0 + 1.5, 2], [x0 + 1, 3], [x0 + 2, 3]], np.float32)
        found.append((Region(box, 0.99, marks), image[:, x0:x0 + w // 2]))
    return found


def make_photos(folder, n, seed=0, size=32):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"p{i:03d}.png")


def test_index_reports_bad_files_stores_faces_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 30_000)  # huge.png below is then a decompression bomb
    photos = tmp_path / "photos"
    make_photos(photos, 3)
    make_photos(photos / "sub", 2, seed=1)
    (photos / "notes.jpg").write_text("not an image")
    (photos / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    Image.new("RGB", (300, 200)).save(photos / "huge.png")
    (photos / ".hidden.png").write_bytes((photos / "p000.png").read_bytes())
    db, lines = FaceDatabase(tmp_path / "faces.db"), []
    counts = index_photos(db, [photos], pixel_model, "course", detector=halves, report=lines.append, quiet=True)
    assert counts["photos"] == 5 and counts["faces"] == 10 and counts["problems"] == 3
    assert len(lines) == 3 and all("\n" not in line for line in lines)
    assert any("notes.jpg: not a readable image" in line for line in lines)
    assert any("gone.jpg: unreadable" in line for line in lines)
    assert any("huge.png: 60000 pixels, over Pillow's decompression-bomb limit" in line for line in lines)
    assert db.counts() == {"people": 0, "faces": 10, "unnamed": 10, "photos": 5, "errors": 2}
    with sqlite3.connect(db.path) as con:
        x0, x1, marks = con.execute("SELECT x0, x1, landmarks FROM faces WHERE photo LIKE '%sub/p001.png' "
                                    "ORDER BY x0").fetchone()
    assert (x0, x1) == (0.0, 16.0) and np.frombuffer(marks, np.float32).reshape(5, 2)[1, 0] == 2
    again = index_photos(db, [photos], pixel_model, "course", detector=halves, report=lines.append, quiet=True)
    assert again["already"] == 5 and again["photos"] == 0 and db.counts()["faces"] == 10
    with pytest.raises(ValueError, match="preprocessing 'course', not 'standardize'"):
        index_photos(db, [photos], pixel_model, "standardize", quiet=True)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        index_photos(db, [tmp_path / "missing"], pixel_model, "course", quiet=True)


def test_two_worker_processes_give_the_same_database(tmp_path):
    make_photos(tmp_path / "photos", 6)
    one, two = FaceDatabase(tmp_path / "one.db"), FaceDatabase(tmp_path / "two.db")
    index_photos(one, [tmp_path / "photos"], pixel_model, "course", 1, detector=halves, quiet=True)
    counts = index_photos(two, [tmp_path / "photos"], pixel_model, "course", 2, detector=halves, quiet=True)
    assert counts["photos"] == 6 and counts["faces"] == 12
    a, b = one.faces(), two.faces()
    order_a = np.lexsort(a[1].T)
    order_b = np.lexsort(b[1].T)
    np.testing.assert_array_equal(a[1][order_a], b[1][order_b])


SLOW_INDEX = """
import sys, time
sys.path.insert(0, {tests!r})
from test_faces_index import halves, pixel_model
from tinyconv.faces import FaceDatabase
from tinyconv.faces.index import index_photos

def slow(image):
    time.sleep(0.3)
    return halves(image)

index_photos(FaceDatabase({db!r}), [{photos!r}], pixel_model, "course", detector=slow, quiet=True, batch=1)
"""


def test_kill_9_in_the_middle_then_a_second_index_finishes(tmp_path):
    make_photos(tmp_path / "photos", 20)
    db_path = tmp_path / "faces.db"
    script = SLOW_INDEX.format(tests=str(Path(__file__).parent), db=str(db_path), photos=str(tmp_path / "photos"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen([sys.executable, "-c", script], env=env)
    db = FaceDatabase(db_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not db_path.exists() or db.counts()["photos"] < 4):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = db.counts()["photos"]
    assert 4 <= done < 20
    with sqlite3.connect(db_path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT count(*) FROM faces").fetchone()[0] == 2 * done  # no photo half-written
    counts = index_photos(db, [tmp_path / "photos"], pixel_model, "course", detector=halves, quiet=True)
    assert counts["already"] == done and counts["photos"] == 20 - done
    with sqlite3.connect(db_path) as con:
        assert con.execute("SELECT count(DISTINCT sha256), count(*) FROM photos").fetchone() == (20, 20)
        assert con.execute("SELECT count(*) FROM faces").fetchone()[0] == 40


def test_index_on_a_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed", reason="Dask is an optional extra: pip install -e '.[dask]'")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test file
    make_photos(tmp_path / "photos", 6)
    db = FaceDatabase(tmp_path / "faces.db")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        counts = index_photos(db, [tmp_path / "photos"], pixel_model, "course", 2,
                              client.get_executor(pure=False), detector=halves, quiet=True)
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert counts["photos"] == 6 and counts["faces"] == 12
    local = FaceDatabase(tmp_path / "local.db")
    index_photos(local, [tmp_path / "photos"], pixel_model, "course", detector=halves, quiet=True)
    np.testing.assert_array_equal(np.sort(db.faces()[1], axis=0), np.sort(local.faces()[1], axis=0))


# ----- search and clustering, on synthetic encodings --------------------------------------------------------------
def test_exact_nearest_matches_brute_force():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(500, 128)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    rows, dist = exact_nearest(base, base[:7], 5, block_floats=3 * len(base))
    brute = np.linalg.norm(base[:7, None] - base[None], axis=-1)
    np.testing.assert_array_equal(rows, np.argsort(brute, axis=1)[:, :5])
    np.testing.assert_allclose(dist, np.sort(brute, axis=1)[:, :5], atol=1e-5)


needs_hnsw = pytest.mark.skipif(not hnsw_available(), reason="hnswlib is an optional extra: pip install -e '.[hnsw]'")


@needs_hnsw
def test_hnsw_index_beside_the_database_follows_additions_and_removals(tmp_path):
    make_photos(tmp_path / "photos", 30)
    db = FaceDatabase(tmp_path / "faces.db")
    index_photos(db, [tmp_path / "photos"], pixel_model, "course", detector=halves, quiet=True)
    ids, encodings = db.faces()
    exact = FaceSearch(db, method="exact").nearest(encodings[:5], 3)
    hnsw = FaceSearch(db, method="hnsw")
    assert (tmp_path / "faces.db.hnsw").is_file()
    np.testing.assert_array_equal(hnsw.nearest(encodings[:5], 3)[0], exact[0])
    make_photos(tmp_path / "more", 3, seed=9)
    index_photos(db, [tmp_path / "more"], pixel_model, "course", detector=halves, quiet=True)
    new_ids, new_encodings = db.faces(f"id > {ids.max()}")
    assert FaceSearch(db, method="hnsw").nearest(new_encodings, 1)[0][:, 0].tolist() == new_ids.tolist()


def assert_same_answer(db, queries, k, named=False):
    """HNSW and exact give the same faces at the same distances (small data: HNSW is exact there)."""
    exact = FaceSearch(db, named, method="exact").nearest(queries, k)
    hnsw = FaceSearch(db, named, method="hnsw").nearest(queries, k)
    np.testing.assert_array_equal(hnsw[0], exact[0])
    np.testing.assert_allclose(hnsw[1], exact[1], atol=1e-6)
    return exact


@needs_hnsw
def test_identify_and_who_is_it_go_through_the_hnsw_index_above_the_switch_point(tmp_path, monkeypatch):
    make_photos(tmp_path / "photos", 10)
    make_photos(tmp_path / "people", 8, seed=5)
    make_photos(tmp_path / "queries", 6, seed=7)
    db = FaceDatabase(tmp_path / "faces.db")
    index_photos(db, [tmp_path / "photos"], pixel_model, "course", detector=halves, quiet=True)  # 20 unnamed
    people = sorted((tmp_path / "people").iterdir())
    for i, name in enumerate(["ann", "bob", "cy", "dee"]):
        db.enroll(name, people[2 * i:2 * i + 2], PixelModel(), "course")
    queries = sorted((tmp_path / "queries").iterdir()) + people[::3]
    exact = [identify(q, db, PixelModel(), threshold=0.5) for q in queries]
    assert FaceSearch(db, named=True).method == "exact" and not hnsw_path(db).exists()

    monkeypatch.setattr(search, "SWITCH", 5)  # 8 named faces: HNSW now
    assert FaceSearch(db, named=True).method == "hnsw" and hnsw_path(db).is_file()
    for query, (want,) in zip(queries, exact):
        (match,) = identify(query, db, PixelModel(), threshold=0.5)
        assert match.nearest == want.nearest and match.distance == pytest.approx(want.distance, abs=1e-6)
        assert match.known == want.known
    assert [m.nearest for m, in exact][6:] == ["ann", "bob", "dee"] and all(m.distance < 1e-6 for m, in exact[6:])
    assert who_is_it(people[3], db, PixelModel()) == (pytest.approx(0, abs=1e-6), "bob")
    encodings = db.faces()[1]
    assert_same_answer(db, encodings, 5, named=True)   # unnamed faces are never the answer of a named lookup
    assert set(FaceSearch(db, named=True).nearest(encodings, 8)[0].ravel()) == set(db.face_ids("person IS NOT NULL"))


@needs_hnsw
def test_the_hnsw_index_follows_adds_and_removes_and_a_stale_one_is_built_again(tmp_path):
    make_photos(tmp_path / "photos", 10)
    db = FaceDatabase(tmp_path / "faces.db")
    index_photos(db, [tmp_path / "photos"], pixel_model, "course", detector=halves, quiet=True)
    queries = db.faces()[1][::3]
    assert_same_answer(db, queries, 4)
    make_photos(tmp_path / "people", 3, seed=5)
    db.enroll("ann", sorted((tmp_path / "people").iterdir()), PixelModel(), "course")   # adds ...
    assert_same_answer(db, db["ann"], 4)
    ann_ids = db.face_ids("enrolled = 1")
    db.remove("ann")                                                                   # ... and removes
    ids, _ = assert_same_answer(db, queries, 30)
    assert not set(ann_ids) & set(ids.ravel()) and ids.shape == (len(queries), 20)

    for suffix in ("", "-wal", "-shm"):  # another database file of the same name: its ids 1.. are other faces
        Path(f"{db.path}{suffix}").unlink(missing_ok=True)
    make_photos(tmp_path / "other", 8, seed=11)
    db = FaceDatabase(tmp_path / "faces.db")
    index_photos(db, [tmp_path / "other"], pixel_model, "course", detector=halves, quiet=True)
    assert hnsw_path(db).is_file()
    ids, dist = assert_same_answer(db, db.faces()[1], 1)
    assert ids[:, 0].tolist() == db.face_ids().tolist() and np.all(dist < 1e-6)

    hnsw_path(db).write_bytes(b"damaged")                                              # unreadable: built again
    assert_same_answer(db, queries, 3)
    assert hnsw_path(db).stat().st_size > 1000


def test_chinese_whispers_and_the_cluster_measures():
    pairs = np.array([[0, 1, 3, 4], [1, 2, 4, 5]])   # two chains: 0-1-2 and 3-4-5; 6 alone
    labels = chinese_whispers(7, pairs)
    assert len(set(labels[:3])) == 1 and len(set(labels[3:6])) == 1 and len(set(labels)) == 3
    truth = np.array(["a", "a", "a", "b", "b", "b", "c"])
    assert pairwise_scores(labels, truth) == (1.0, 1.0) and bcubed_scores(labels, truth) == (1.0, 1.0, 1.0)
    merged = np.zeros(7, int)
    precision, recall = pairwise_scores(merged, truth)
    assert precision == pytest.approx(6 / 21) and recall == 1.0
    p, r, f = bcubed_scores(merged, truth)
    assert p == pytest.approx((3 * 3 / 7 + 3 * 3 / 7 + 1 / 7) / 7) and r == 1.0


# ----- with the real network, on LFW people -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def lfw_people(shared, weights_file, tmp_path_factory):
    """Three images each of three LFW people in one folder, a fourth of each held back for the queries."""
    weights_file("facenet")
    lfw = shared / "data" / "faces" / "lfw" / "lfw-deepfunneled"
    folder = tmp_path_factory.mktemp("lfw") / "photos"
    folder.mkdir()
    queries = {}
    for person in ["Colin_Powell", "Gerhard_Schroeder", "Serena_Williams"]:
        files = sorted((lfw / person).glob("*.jpg"))[:4]
        for f in files[:3]:
            (folder / f.name).symlink_to(f)
        queries[person] = files[3]
    return folder, queries


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_index_search_cluster_name_identify_on_lfw_people(lfw_people, tmp_path, capsys, monkeypatch):
    folder, queries = lfw_people
    network = facenet()
    monkeypatch.setattr(faces_cli, "facenet", lambda weights=None: network)  # load the network once, not per command
    db = tmp_path / "faces.db"
    status, out, err = run(capsys, "index", folder, "--db", db, "--preprocess", "standardize-crop150")
    assert status == 0 and "indexed 9 photos (9 faces)" in out
    status, out, _ = run(capsys, "search", queries["Colin_Powell"], "--db", db)
    lines = [line.split(",", 6) for line in out.splitlines()]
    assert status == 0 and len(lines) == 3 and all(Path(line[6]).name.startswith("Colin_Powell") for line in lines)
    distances = [float(line[1]) for line in lines]
    assert distances == sorted(distances) and distances[-1] < 1.106

    status, out, err = run(capsys, "cluster", "--db", db)
    clusters = [line.split(",", 2) for line in out.splitlines()]
    assert status == 0 and [int(c[1]) for c in clusters] == [3, 3, 3], err
    powell = next(c[0] for c in clusters if "Colin_Powell" in c[2])
    status, out, _ = run(capsys, "name", powell, "Colin Powell", "--db", db)
    assert status == 0 and "3 faces" in out
    assert FaceDatabase(db).names() == ["Colin Powell"] and FaceDatabase(db).counts()["unnamed"] == 6
    assert FaceSearch(FaceDatabase(db)).method == "exact"
    (match,) = identify(queries["Colin_Powell"], FaceDatabase(db), network)   # identify knows him now
    assert match.known and match.nearest == "Colin Powell"

    for argv in [("name", powell, "Someone", "--db", db), ("name", "x7", "Someone", "--db", db),
                 ("name", "99", "Someone", "--db", db), ("name", "1", "bad\nname", "--db", db),
                 ("search", folder / "nope.jpg", "--db", db)]:
        status, _, err = run(capsys, *argv)
        assert status == 1 and err.startswith("error: ") and err.count("\n") == 1, (argv, err)
    with pytest.raises(SystemExit) as usage:
        main(["cluster", "--threshold", "nan", "--db", str(db)])
    assert usage.value.code == 2
    status, out, _ = run(capsys, "search", queries["Serena_Williams"], "--db", db, "--threshold", "0.2")
    assert status == 3 and out == ""
