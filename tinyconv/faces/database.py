"""`FaceDatabase`: the people a system knows, as name -> one or more encodings, in one HDF5 file.

The file records which model (a fingerprint of its weights) and which preprocessing made the encodings: distances
between encodings of different models or preprocessings mean nothing, so the database refuses to mix them.
Every change rewrites the whole (small) file through `atomic_write`: a crash in the middle of an update leaves the
previous file intact.

Layout: root attributes `format` = "tinyconv-face-database", `version` = 1, `model`, `preprocess`; one dataset
`people/<name>` of shape (k, 128) float32 per person (k = number of enrolled images).
"""
from pathlib import Path

import h5py
import numpy as np

from tinyconv.faces.encoding import encode, model_fingerprint
from tinyconv.faces.preprocess import parse_preprocessing
from tinyconv.faces.thresholds import DEFAULT_PREPROCESS
from tinyconv.files import atomic_write

FORMAT = "tinyconv-face-database"
VERSION = 1


class FaceDatabase:
    """`FaceDatabase(path)` opens the file if it exists (else starts empty; nothing is written until a change).

    db.enroll("kian", ["kian.jpg"], model); db.names(); db["kian"] -> (k, 128); db.remove("kian").
    """

    def __init__(self, path):
        self.path = Path(path)
        self.model = None        # fingerprint of the model that made the encodings (None while empty and new)
        self.preprocess = None   # preprocessing that made them, e.g. "standardize-crop150"
        self._people = {}
        if self.path.exists():
            self._read()

    def names(self):
        return sorted(self._people)

    def __len__(self):
        return len(self._people)

    def __contains__(self, name):
        return name in self._people

    def __getitem__(self, name):
        if name not in self._people:
            raise ValueError(f"{self.path}: no one named {name!r} in the database")
        return self._people[name].copy()

    def enroll(self, name, images, model, preprocess=None, pick="one"):
        """Add the encodings of `images` (paths or uint8 arrays; one for one-shot, or several) to `name`; save.

        preprocess: the database's own when it has one (another one is refused); else this one, or
        `tinyconv.faces.thresholds.DEFAULT_PREPROCESS` (detection). Every image is read before anything changes:
        an image with no face, or with several faces when pick is "one" (pick="largest" takes the largest),
        is a ValueError naming it, and nothing is enrolled.
        """
        _check_name(name)
        images = list(images)
        if not images:
            raise ValueError(f"enroll {name!r}: no images given")
        preprocess = preprocess or self.preprocess or DEFAULT_PREPROCESS
        parse_preprocessing(preprocess)
        fingerprint = model_fingerprint(model)
        if self.model is not None:
            self._check(fingerprint, preprocess)
        encodings = encode(model, images, preprocess, pick=pick)
        self.model, self.preprocess = fingerprint, preprocess
        old = self._people.get(name, np.empty((0, 128), np.float32))
        self._people[name] = np.concatenate([old, encodings])
        self._write()
        return encodings

    def remove(self, name):
        """Forget `name` (all their encodings); save."""
        if name not in self._people:
            raise ValueError(f"{self.path}: no one named {name!r} in the database")
        del self._people[name]
        self._write()

    def check_model(self, model):
        """Raise ValueError unless the encodings were made by `model` (or the database is empty)."""
        if self.model is not None and model_fingerprint(model) != self.model:
            raise ValueError(f"{self.path}: its encodings were made by another model (fingerprint {self.model}); "
                             "encode with that model or use another database")

    def check_preprocessing(self, preprocess):
        """Raise ValueError unless `preprocess` is the one the encodings were made with."""
        if self.preprocess is not None and preprocess != self.preprocess:
            raise ValueError(f"{self.path}: its encodings were made with preprocessing {self.preprocess!r}, "
                             f"not {preprocess!r}")

    def _check(self, fingerprint, preprocess):
        if fingerprint != self.model:
            raise ValueError(f"{self.path}: its encodings were made by another model (fingerprint {self.model}); "
                             "encodings of different models cannot be mixed")
        self.check_preprocessing(preprocess)

    def _read(self):
        try:
            with h5py.File(self.path, "r") as f:
                if f.attrs.get("format") != FORMAT:
                    raise ValueError(f"{self.path}: not a tinyconv face database")
                if int(f.attrs.get("version", -1)) != VERSION:
                    raise ValueError(f"{self.path}: face database version {f.attrs.get('version')}, "
                                     f"this tinyconv reads version {VERSION}")
                self.model = _text(f.attrs.get("model")) or None
                self.preprocess = _text(f.attrs.get("preprocess")) or None
                for name, data in f.get("people", {}).items():
                    if data.ndim != 2 or data.shape[1] != 128:
                        raise ValueError(f"{self.path}: people/{name} has shape {data.shape}, expected (k, 128)")
                    self._people[name] = data[()].astype(np.float32)
        except OSError as e:
            raise ValueError(f"{self.path}: not a readable HDF5 face database ({e})") from None

    def _write(self):
        if not self._people:  # an empty database may be filled by any model again
            self.model = self.preprocess = None
        with atomic_write(self.path) as tmp:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = FORMAT
                f.attrs["version"] = VERSION
                f.attrs["model"] = self.model or ""
                f.attrs["preprocess"] = self.preprocess or ""
                people = f.create_group("people")
                for name, encodings in sorted(self._people.items()):
                    people.create_dataset(name, data=encodings)


def _check_name(name):
    if not name or "/" in name or name.strip() != name or name in (".", "..") or not name.isprintable():
        raise ValueError(f"invalid name {name!r}: use a non-empty name without '/', control characters "
                         "(such as a newline) or surrounding spaces")


def _text(value):
    return value.decode() if isinstance(value, bytes) else ("" if value is None else str(value))
