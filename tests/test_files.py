"""Reading images and writing outputs atomically: failures are one clear error and never cost the user a file."""
import os

import numpy as np
import pytest
from PIL import Image

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


def png16(path, values):
    """Write an (H, W) or (H, W, 3) uint16 array as a 16-bit PNG, chunk by chunk (Pillow cannot write 16-bit RGB)."""
    import struct
    import zlib
    h, w = values.shape[:2]
    colour = 2 if values.ndim == 3 else 0
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in values)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("shape", [(6, 5), (6, 5, 3)])
def test_16_bit_png_is_scaled_to_8_bits(tmp_path, shape):
    values = np.random.default_rng(1).integers(0, 65536, shape, dtype=np.uint16)
    png16(tmp_path / "deep.png", values)
    rgb = load_image(tmp_path / "deep.png")
    expected = values / 257 if values.ndim == 3 else np.repeat(values[:, :, None] / 257, 3, axis=2)
    assert rgb.dtype == np.uint8 and rgb.shape == (6, 5, 3)
    np.testing.assert_allclose(rgb, expected, atol=1)  # scaled, not clipped to white


def test_directory_and_decompression_bomb_are_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="is a directory"):
        load_image(tmp_path)
    save_image(tmp_path / "big.png", np.zeros((40, 50, 3), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1500)  # 2000 pixels: over the limit, under twice the limit
    with pytest.raises(ValueError, match="big.png: 2000 pixels, over Pillow's decompression-bomb limit of 1500"):
        load_image(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # Pillow's own error beyond twice the limit
    with pytest.raises(ValueError, match="big.png: 2000 pixels, over Pillow's decompression-bomb limit of 500"):
        load_image(tmp_path / "big.png")
