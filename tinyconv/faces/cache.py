"""A cache of encodings on disk, so that evaluating LFW a second time does not run the network again.

One HDF5 file per (model, preprocessing): `$TINYCONV_HOME/cache/encodings-<model fingerprint>-<preprocess>.h5`
holding `paths` (the absolute image paths) and `encodings` (N, 128). It is rewritten atomically every
`checkpoint` images, so an interrupted run keeps most of its work.
"""
from pathlib import Path

import h5py
import numpy as np

from tinyconv import weights
from tinyconv.faces.encoding import encode, model_fingerprint
from tinyconv.faces.preprocess import parse_preprocessing
from tinyconv.progress import Progress
from tinyconv.files import atomic_write


def cache_path(model, preprocess, folder=None):
    parse_preprocessing(preprocess)
    folder = Path(folder) if folder is not None else weights.home() / "cache"
    return folder / f"encodings-{model_fingerprint(model)}-{preprocess}.h5"


def cached_encodings(model, images, preprocess, folder=None, checkpoint=1024, batch_size=32):
    """dict image path -> (128,) encoding for every image, computing (and caching) only the missing ones."""
    path = cache_path(model, preprocess, folder)
    known = _read(path)
    keys = {str(p): str(Path(p).resolve()) for p in images}
    missing = sorted(set(keys.values()) - set(known))
    meter = Progress(len(missing), f"encoding ({len(known)} cached)")
    for start in range(0, len(missing), checkpoint):
        chunk = missing[start:start + checkpoint]
        known.update(zip(chunk, encode(model, chunk, preprocess, batch_size=batch_size, progress=meter)))
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, known)
    meter.close()
    return {p: known[key] for p, key in keys.items()}


def _read(path):
    if not path.is_file():
        return {}
    try:
        with h5py.File(path, "r") as f:
            paths = [p.decode() if isinstance(p, bytes) else p for p in f["paths"][()]]
            return dict(zip(paths, f["encodings"][()]))
    except (OSError, KeyError):  # a damaged cache is only a cache: start again
        return {}


def _write(path, known):
    with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("paths", data=np.array(list(known), dtype=h5py.string_dtype()))
        f.create_dataset("encodings", data=np.stack(list(known.values())).astype(np.float32))
