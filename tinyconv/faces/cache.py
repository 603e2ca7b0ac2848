"""A cache of encodings on disk, so that evaluating LFW a second time does not run the network again.

One HDF5 file per (model, preprocessing): `$TINYCONV_HOME/cache/encodings-<model fingerprint>-<preprocess>.h5`
holding `paths` (the absolute image paths), `encodings` (N, 128) and `found` (N,) bool (False where the detector
found no face and the central box was used). It is rewritten atomically every `checkpoint` images, so an
interrupted run keeps most of its work. The encodings of a "-flip" preprocessing come with those of the same
preprocessing without the mirror image, so both caches are filled at once.
"""
from pathlib import Path

import h5py
import numpy as np

from tinyconv import weights
from tinyconv.faces.encoding import encode_views, model_fingerprint
from tinyconv.faces.preprocess import parse_preprocessing
from tinyconv.progress import Progress
from tinyconv.files import atomic_write


def cache_path(model, preprocess, folder=None):
    parse_preprocessing(preprocess)
    folder = Path(folder) if folder is not None else weights.home() / "cache"
    return folder / f"encodings-{model_fingerprint(model)}-{preprocess}.h5"


def cached_encodings(model, images, preprocess, folder=None, checkpoint=1024, batch_size=32):
    """(dict image path -> (128,) encoding, dict image path -> face found?) for every image, computing (and
    caching) only the missing ones. An image with no face falls back to the central box (`preprocess.one_face`)."""
    path = cache_path(model, preprocess, folder)
    known = _read(path)
    flip = parse_preprocessing(preprocess).flip
    plain_path = cache_path(model, preprocess.removesuffix("-flip"), folder)
    plain_known = _read(plain_path) if flip else {}
    keys = {str(p): str(Path(p).resolve()) for p in images}
    missing = sorted(set(keys.values()) - set(known))
    meter = Progress(len(missing), f"encoding ({len(known)} cached)")
    for start in range(0, len(missing), checkpoint):
        chunk = missing[start:start + checkpoint]
        encodings, plain, found = encode_views(model, chunk, preprocess, batch_size, meter, fallback=True)
        known.update(zip(chunk, zip(encodings, found)))
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, known)
        if flip:
            plain_known.update(zip(chunk, zip(plain, found)))
            _write(plain_path, plain_known)
    meter.close()
    return {p: known[key][0] for p, key in keys.items()}, {p: bool(known[key][1]) for p, key in keys.items()}


def _read(path):
    """path -> (encoding, found) of a cache file ({} if absent or damaged)."""
    if not path.is_file():
        return {}
    try:
        with h5py.File(path, "r") as f:
            paths = [p.decode() if isinstance(p, bytes) else p for p in f["paths"][()]]
            return dict(zip(paths, zip(f["encodings"][()], f["found"][()])))
    except (OSError, KeyError):  # a damaged (or older) cache is only a cache: start again
        return {}


def _write(path, known):
    with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("paths", data=np.array(list(known), dtype=h5py.string_dtype()))
        f.create_dataset("encodings", data=np.stack([e for e, _ in known.values()]).astype(np.float32))
        f.create_dataset("found", data=np.array([bool(found) for _, found in known.values()]))
