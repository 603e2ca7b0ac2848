"""python -m tinyconv.faces: enrol / verify / identify / list / remove with detection, group photos, and bad input.

Called in-process through `main([...])` (a subprocess would load FaceNet again); one subprocess checks the
command line as a user runs it.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tinyconv.faces.__main__ import main
from tinyconv.faces.database import FaceDatabase
from tinyconv.faces.thresholds import DEFAULT_PREPROCESS, default_threshold
from tinyconv.files import load_image, save_image


@pytest.fixture(scope="module")
def coursera(shared, weights_file):
    weights_file("facenet")
    weights_file("mtcnn")
    return shared / "data" / "faces" / "coursera"


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def parse(line):
    """PHOTO,x0,y0,x1,y1,NAME,DISTANCE -> (photo, box, name, distance)."""
    photo, x0, y0, x1, y1, name, distance = line.rsplit(",", 6)
    return photo, np.array([x0, y0, x1, y1], dtype=int), name, float(distance)


def test_course_images_under_the_default_settings(coursera, tmp_path, capsys):
    db = tmp_path / "faces.h5"
    for name in ["younes", "kian"]:
        status, out, _ = run(capsys, "enroll", name, coursera / f"{name}.jpg", "--db", db)
        assert status == 0 and f"enrolled {name}: 1 encoding(s)" in out
    assert FaceDatabase(db).names() == ["kian", "younes"] and FaceDatabase(db).preprocess == DEFAULT_PREPROCESS

    status, out, err = run(capsys, "verify", coursera / "camera_0.jpg", "younes", "--db", db)
    photo, box, name, distance = parse(out.strip())
    assert status == 0 and name == "younes" and distance < default_threshold(DEFAULT_PREPROCESS)
    assert photo == str(coursera / "camera_0.jpg") and 0 <= box[0] < box[2] <= 96 and "welcome in" in err
    for camera in range(1, 5):  # the course's impostors stay out
        status, out, err = run(capsys, "verify", coursera / f"camera_{camera}.jpg", "kian", "--db", db)
        assert status == 3 and parse(out.strip())[2] == "unknown" and "please go away" in err, camera
    status, out, _ = run(capsys, "identify", coursera / "camera_0.jpg", "--db", db)
    assert status == 0 and [parse(line)[2] for line in out.splitlines()] == ["younes"]
    status, out, _ = run(capsys, "identify", coursera / "camera_2.jpg", "--db", db)  # benoit: no one known
    assert status == 3 and [parse(line)[2] for line in out.splitlines()] == ["unknown"]

    status, out, _ = run(capsys, "list", "--db", db)
    assert status == 0 and out.splitlines() == ["kian,1", "younes,1"]
    status, out, _ = run(capsys, "remove", "kian", "--db", db)
    assert status == 0 and FaceDatabase(db).names() == ["younes"]


LFW_PEOPLE = {"Colin_Powell": (40, 71), "Serena_Williams": (1, 3), "Tony_Blair": (18, 32)}  # enrolled, in the photo
STRANGER = "Gerhard_Schroeder_0005"
PLACES = [(30, 40, 130), (250, 150, 110), (460, 20, 150), (200, 10, 90)]  # (left, top, side) of each pasted face


def lfw_image(shared, stem):
    return shared / "data" / "faces" / "lfw" / "lfw-deepfunneled" / stem.rsplit("_", 1)[0] / f"{stem}.jpg"


@pytest.fixture(scope="module")
def group(coursera, shared, tmp_path_factory):
    """A 640x320 photo with four LFW faces pasted at PLACES (the central 140 px of each image, resized): three
    enrolled people, from other images of them, and one stranger."""
    folder = tmp_path_factory.mktemp("group")
    canvas = np.full((320, 640, 3), 90, np.uint8)
    stems = [f"{name}_{photo:04d}" for name, (_, photo) in LFW_PEOPLE.items()] + [STRANGER]
    for stem, (left, top, side) in zip(stems, PLACES):
        face = Image.fromarray(load_image(lfw_image(shared, stem))[55:195, 55:195]).resize((side, side))
        canvas[top:top + side, left:left + side] = np.asarray(face)
    save_image(folder / "group.png", canvas)
    db = folder / "faces.h5"
    for name, (enrolled, _) in LFW_PEOPLE.items():
        assert main(["enroll", name, str(lfw_image(shared, f"{name}_{enrolled:04d}")), "--db", str(db)]) == 0
    return folder / "group.png", db


def test_identify_names_every_face_of_a_group_photo(group, tmp_path, capsys):
    photo, db = group
    status, out, err = run(capsys, "identify", photo, "--db", db, "--annotate", tmp_path / "named.jpg")
    assert status == 0 and err.strip() == f"wrote {tmp_path / 'named.jpg'}"
    lines = [parse(line) for line in out.splitlines()]
    assert len(lines) == 4 and all(p == str(photo) for p, _, _, _ in lines)
    expected = list(LFW_PEOPLE) + ["unknown"]
    for (left, top, side), name in zip(PLACES, expected):
        centre = np.array([left + side / 2, top + side / 2])
        (box, found, distance), = [(b, n, d) for _, b, n, d in lines
                                   if b[0] <= centre[0] <= b[2] and b[1] <= centre[1] <= b[3]]
        assert found == name, (name, found, distance)
        assert box[0] >= left - 0.2 * side and box[2] <= left + 1.2 * side and box[2] - box[0] > 0.4 * side
    with Image.open(tmp_path / "named.jpg") as im:
        assert im.format == "JPEG" and im.size == (640, 320)

    status, out, _ = run(capsys, "verify", photo, "Tony_Blair", "--db", db)
    _, box, name, _ = parse(out.strip())
    left, top, side = PLACES[2]
    assert status == 0 and name == "Tony_Blair" and left - 10 <= box[0] < box[2] <= left + side + 10


def test_enroll_refuses_a_group_photo_unless_largest(group, tmp_path, capsys):
    photo, _ = group
    db = tmp_path / "faces.h5"
    status, _, err = run(capsys, "enroll", "crowd", photo, "--db", db)
    assert status == 1 and "4 faces found" in err and "--largest" in err and err.count("\n") == 1
    assert not db.exists()
    status, _, _ = run(capsys, "enroll", "tall", photo, "--db", db, "--largest")
    assert status == 0 and FaceDatabase(db).names() == ["tall"]


def test_bad_input_is_one_line_and_nothing_is_enrolled(coursera, tmp_path, capsys, monkeypatch):
    db = tmp_path / "faces.h5"
    younes = load_image(coursera / "younes.jpg")
    grey16 = (np.asarray(Image.fromarray(younes).convert("L"), dtype=np.uint16) * 257)
    Image.fromarray(grey16).save(tmp_path / "younes16.png")  # 16 bits: enrolled as a face, not as white
    status, out, _ = run(capsys, "enroll", "younes", tmp_path / "younes16.png", "--db", db)
    assert status == 0
    before = db.read_bytes()

    save_image(tmp_path / "uniform.png", np.full((300, 300, 3), 200, np.uint8))
    save_image(tmp_path / "one.png", np.zeros((1, 1, 3), np.uint8))
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    cases = [(["enroll", "kian", tmp_path / "uniform.png"], "uniform.png: no face found"),
             (["enroll", "kian", coursera / "kian.jpg", tmp_path / "one.png"], "one.png: no face found"),
             (["enroll", "kian", tmp_path], "is a directory"),
             (["enroll", "kian", text], "notes.jpg: not a readable image"),
             (["enroll", "kian", tmp_path / "missing.jpg"], "missing.jpg: no such image file"),
             (["enroll", "bad\nname", coursera / "kian.jpg"], "invalid name"),
             (["enroll", "kian", coursera / "kian.jpg", "--preprocess", "course"], "not 'course'"),
             (["enroll", "kian", coursera / "kian.jpg", "--preprocess", "whiten"], "unknown preprocessing"),
             (["verify", coursera / "camera_0.jpg", "nobody"], "no one named 'nobody'"),
             (["identify", tmp_path / "uniform.png"], "uniform.png: no face found"),
             (["remove", "nobody"], "no one named 'nobody'")]
    for argv, message in cases:
        status, out, err = run(capsys, *argv, "--db", db)
        assert status == 1 and err.startswith("error: ") and message in err and err.count("\n") == 1, (argv, err)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)  # a 96x96 photo is now "too large"
    status, _, err = run(capsys, "enroll", "kian", coursera / "kian.jpg", "--db", db)
    assert status == 1 and "decompression-bomb limit of 4000 pixels" in err and err.count("\n") == 1
    assert db.read_bytes() == before


@pytest.mark.parametrize("argv", [
    ["verify", "a.jpg", "kian", "--threshold", "nan"], ["identify", "a.jpg", "--threshold", "-1"],
    ["identify", "a.jpg", "--threshold", "inf"], ["evaluate", "--lfw", "x", "--pairs-per-fold", "0"],
    ["train", "--lfw", "x", "-o", "out.h5", "--steps", "-1"], ["train", "--lfw", "x", "-o", "out.h5", "--lr", "nan"],
    ["train", "--lfw", "x", "-o", "out.h5", "--seed", "-2"], ["list", "--threshold", "0.5"],
    ["evaluate", "--lfw", "x", "--db", "faces.h5"], ["train", "--lfw", "x", "--out", "o.h5"]])
def test_bad_numbers_and_flags_where_they_do_not_apply_are_usage_errors(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.splitlines()[-1].count("error: ") == 1
    assert list(tmp_path.iterdir()) == []  # nothing written (train --steps -1 used to copy the weights)


def test_command_line_as_a_user_runs_it(tmp_path):
    cmd = [sys.executable, "-m", "tinyconv.faces"]
    usage = subprocess.run(cmd + ["verify"], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr
    bad = subprocess.run(cmd + ["evaluate", "--lfw", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    debug = subprocess.run(cmd + ["evaluate", "--lfw", str(tmp_path)], capture_output=True, text=True,
                           env={**os.environ, "TINYCONV_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr and debug.stderr.endswith("lfw-deepfunneled/)\n")
    helptext = " ".join(subprocess.run(cmd + ["train", "--help"], capture_output=True, text=True).stdout.split())
    assert "--steps STEPS training steps (batches) (default: 20)" in helptext and "--seed" in helptext
    assert "--db" not in helptext and "--threshold" not in helptext
