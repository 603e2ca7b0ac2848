"""python -m tinyconv.faces: enrol / verify / identify / list / remove, and its failure modes."""
import subprocess
import sys

import pytest

from tinyconv.faces.__main__ import main
from tinyconv.faces.database import FaceDatabase


@pytest.fixture(scope="module")
def coursera(shared, weights_file):
    weights_file("facenet")
    return shared / "data" / "faces" / "coursera"


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_enroll_verify_identify_list_remove(coursera, tmp_path, capsys):
    db = tmp_path / "faces.h5"
    status, out, _ = run(capsys, "enroll", "younes", coursera / "younes.jpg", "--db", db, "--preprocess", "course")
    assert status == 0 and "enrolled younes: 1 encoding(s)" in out
    status, out, _ = run(capsys, "enroll", "kian", coursera / "kian.jpg", "--db", db)
    assert status == 0 and FaceDatabase(db).names() == ["kian", "younes"]

    status, out, _ = run(capsys, "verify", coursera / "camera_0.jpg", "younes", "--db", db, "--threshold", "0.7")
    assert status == 0 and "It's younes, welcome in!" in out and "distance: 0.60" in out
    status, out, _ = run(capsys, "verify", coursera / "camera_2.jpg", "kian", "--db", db, "--threshold", "0.7")
    assert status == 3 and "It's not kian, please go away" in out and "distance: 1.01" in out
    status, out, _ = run(capsys, "identify", coursera / "camera_0.jpg", "--db", db, "--threshold", "0.7")
    assert status == 0 and "identity: younes" in out

    status, out, _ = run(capsys, "list", "--db", db)
    assert status == 0 and "2 people" in out and "preprocessing course" in out and "kian\t1 encoding(s)" in out
    status, out, _ = run(capsys, "remove", "kian", "--db", db)
    assert status == 0 and FaceDatabase(db).names() == ["younes"]


def test_failures_leave_the_database_untouched(coursera, tmp_path, capsys):
    db = tmp_path / "faces.h5"
    status, _, err = run(capsys, "identify", coursera / "camera_0.jpg", "--db", db)
    assert status == 1 and err.startswith("error: ") and "empty" in err and err.count("\n") == 1
    run(capsys, "enroll", "younes", coursera / "younes.jpg", "--db", db)
    before = db.read_bytes()
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    cases = [("enroll", "kian", coursera / "kian.jpg", text), ("enroll", "kian", tmp_path / "missing.jpg"),
             ("verify", coursera / "camera_0.jpg", "nobody"), ("remove", "nobody"),
             ("verify", text, "younes"), ("enroll", "kian", coursera / "kian.jpg", "--preprocess", "whiten"),
             ("enroll", "kian", coursera / "kian.jpg", "--preprocess", "course")]
    for argv in cases:
        status, out, err = run(capsys, *argv, "--db", db)
        assert status == 1 and err.startswith("error: ") and err.count("\n") == 1, (argv, err)
    assert db.read_bytes() == before


def test_usage_errors_and_no_traceback(tmp_path):
    cmd = [sys.executable, "-m", "tinyconv.faces"]
    usage = subprocess.run(cmd + ["verify"], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr
    bad = subprocess.run(cmd + ["evaluate", "--lfw", str(tmp_path), "--db", str(tmp_path / "x.h5")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    helptext = subprocess.run(cmd + ["identify", "--help"], capture_output=True, text=True).stdout
    assert "calibrated on LFW" in helptext
