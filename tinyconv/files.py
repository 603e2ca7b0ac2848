"""Reading and writing the user's files safely.

Every file tinyconv writes (weights, the face database, generated images) goes through `atomic_write`: the data
is written to a temporary file in the same folder and renamed over the target only when complete, so an
interrupted run never leaves a half-written file and never destroys the previous one.
Images are read through `load_image`, which turns every failure into one clear `ValueError` naming the file.
"""
import contextlib
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


@contextlib.contextmanager
def atomic_write(path, suffix=None):
    """Yield a temporary path beside `path`; on success rename it to `path`, on any error delete it.

    The folder must exist (a missing folder is a `FileNotFoundError` naming it, raised before any work).
    `suffix` defaults to the target's own suffix so libraries that pick a format from the name still work.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: the folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix if suffix is None else suffix,
                               dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private (0600); give it the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_writable(path):
    """Raise ValueError unless a file can be written at `path` now: not a folder, and its folder exists and accepts
    a new file (tried with an empty temporary file, removed at once). For checks before long work."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; name the file to write")
    if not folder.is_dir():
        raise ValueError(f"{path}: the folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as e:
        raise ValueError(f"{path}: cannot write into {folder} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(tmp)


def load_image(path):
    """Read an image file as an (H, W, 3) uint8 RGB array (grey and RGBA are converted; alpha is dropped).

    16-bit images are scaled to 8 bits (value / 257), not clipped. Raises ValueError("<path>: ...") for a
    missing, unreadable or non-image file, a directory, and an image over Pillow's decompression-bomb limit
    (`PIL.Image.MAX_IMAGE_PIXELS`, about 89 million pixels; raise it to read larger images).
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not an image file")
    if not path.is_file():
        raise ValueError(f"{path}: no such image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):  # 16-bit grey (Pillow reads it as int)
                    grey = np.rint(np.clip(np.asarray(im, dtype=np.float64), 0, 65535) / 257).astype(np.uint8)
                    return np.repeat(grey[:, :, None], 3, axis=2)
                return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        size = re.search(r"\((\d+) pixels\)", str(e))
        raise ValueError(f"{path}: {size.group(1) + ' pixels' if size else 'too large'}, over Pillow's "
                         f"decompression-bomb limit of {Image.MAX_IMAGE_PIXELS} pixels "
                         "(PIL.Image.MAX_IMAGE_PIXELS)") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{path}: not a readable image ({e.__class__.__name__}: {e})") from None


def save_image(path, rgb):
    """Write an (H, W, 3) array (uint8, or float in 0..255) to `path` atomically; the format follows the suffix."""
    path = Path(path)
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"{path}: an image must have shape (H, W, 3), got {rgb.shape}")
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    with atomic_write(path) as tmp:
        fmt = Image.registered_extensions().get(path.suffix.lower())
        if fmt is None:
            raise ValueError(f"{path}: unknown image format {path.suffix!r} (use .png or .jpg)")
        Image.fromarray(rgb).save(tmp, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
