"""Reading images and writing outputs atomically: failures are one clear error and never cost the user a file."""
import os

import numpy as np
import pytest

from tinyconv.files import atomic_write, load_image, save_image


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "db.h5"
    target.write_text("previous")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "previous"
    assert os.listdir(tmp_path) == ["db.h5"]  # no temporary file left behind


def test_atomic_write_replaces_with_ordinary_permissions(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_write(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_into_a_missing_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_write(tmp_path / "missing" / "out.png"):
            pass


def test_image_round_trip_and_conversions(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    save_image(tmp_path / "a.png", rgb)
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), rgb)
    save_image(tmp_path / "b.png", rgb.astype(np.float32) + 0.4)  # floats are rounded and clipped to 0..255
    np.testing.assert_array_equal(load_image(tmp_path / "b.png"), rgb)


def test_bad_images_give_one_clear_error(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(ValueError, match="notes.jpg: not a readable image"):
        load_image(tmp_path / "notes.jpg")
    with pytest.raises(ValueError, match="missing.jpg: no such image file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ValueError, match=r"must have shape \(H, W, 3\)"):
        save_image(tmp_path / "c.png", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="unknown image format"):
        save_image(tmp_path / "c.xyz", np.zeros((4, 4, 3)))
