"""tinyconv's weights file: one HDF5 file per model, read and written with h5py only.

Layout (format version 1):
    /<layer>/<param>   float32 datasets, <layer> as named in the model's code, <param> one of PARAMS;
                       kernel layout HWIO (kh, kw, in, out) for convolutions, (in, out) for dense layers.
    root attributes    format="tinyconv-weights", format_version, architecture, input_size, the preprocessing
                       (preprocessing, preprocessing_description, channel_order, pixel_mean, pixel_scale), the
                       source (source_package, source_version, source_file, source_sha256), licence, attribution,
                       and per-architecture extras (FaceNet: residual_scales, a JSON object).
A model is anything with `state_dict()` -> {"<layer>/<param>": ndarray} and `load_state_dict(state)`.
"""
import json
from pathlib import Path

import h5py
import numpy as np

from tinyconv.files import atomic_write

FORMAT = "tinyconv-weights"
FORMAT_VERSION = 1
PARAMS = ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance", "alpha")
REQUIRED_ATTRS = ("architecture", "input_size", "preprocessing", "preprocessing_description", "channel_order",
                  "pixel_mean", "pixel_scale", "source_package", "source_version", "source_file", "source_sha256",
                  "licence", "attribution")
JSON_ATTRS = ("residual_scales",)


def save(path, model_or_state, attrs):
    """Write the weights of a model (or a {"layer/param": array} dict) and the root `attrs` to `path`, atomically."""
    path = Path(path)
    state = model_or_state.state_dict() if hasattr(model_or_state, "state_dict") else model_or_state
    missing = [k for k in REQUIRED_ATTRS if k not in attrs]
    if missing:
        raise ValueError(f"{path}: attribute {missing[0]} is required")
    for key in state:
        layer, _, param = key.rpartition("/")
        if not layer or param not in PARAMS:
            raise ValueError(f"{path}: {key!r} is not '<layer>/<param>' with param one of {', '.join(PARAMS)}")
    with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        for name, value in attrs.items():
            f.attrs[name] = json.dumps(value) if name in JSON_ATTRS else value
        for key, value in state.items():
            f.create_dataset(key, data=np.asarray(value, dtype=np.float32))


def read_attrs(path):
    """The root attributes of a tinyconv weights file as plain Python values (str, int, float, tuple, dict)."""
    with _open(path) as f:
        return _attrs(f)


def read_state(path):
    """({"layer/param": float32 array}, attrs) of a tinyconv weights file."""
    with _open(path) as f:
        state = {}
        for layer, group in f.items():
            if not isinstance(group, h5py.Group):
                raise ValueError(f"{path}: {layer} is not a layer group")
            for param, data in group.items():
                if param not in PARAMS or not isinstance(data, h5py.Dataset) or data.dtype != np.float32:
                    raise ValueError(f"{path}: layer {layer}: {param} is not a float32 dataset named one of "
                                     f"{', '.join(PARAMS)}")
                state[f"{layer}/{param}"] = data[()]
        return state, _attrs(f)


def read_shapes(path):
    """({"layer/param": shape tuple}, attrs) of a tinyconv weights file, without reading the arrays."""
    with _open(path) as f:
        shapes = {}
        f.visititems(lambda key, obj: shapes.update({key: obj.shape}) if isinstance(obj, h5py.Dataset) else None)
        return shapes, _attrs(f)


def load(path, model, strict=True, architecture=None):
    """Copy the weights in `path` into `model` after checking them; returns the file's attributes.

    Checks the format version, the architecture (`architecture`, else `model.architecture` when the model has one)
    and every layer's name and shape against `model.state_dict()`; a mismatch is a ValueError naming the layer, the
    expected and the found shape. With strict=False, layers of the file that the model lacks are ignored (a model
    that uses only the first layers of a network), but every layer of the model must be in the file.
    """
    path = Path(path)
    state, attrs = read_state(path)
    architecture = architecture or getattr(model, "architecture", None)
    if architecture is not None and attrs["architecture"] != architecture:
        raise ValueError(f"{path}: holds {attrs['architecture']} weights, the model is {architecture}")
    expected = model.state_dict()
    for key, value in expected.items():
        if key not in state:
            raise ValueError(f"{path}: layer {key} (expected shape {np.shape(value)}) is not in the file")
        if state[key].shape != np.shape(value):
            raise ValueError(f"{path}: layer {key}: expected shape {np.shape(value)}, found {state[key].shape}")
    extra = [k for k in state if k not in expected]
    if strict and extra:
        raise ValueError(f"{path}: layer {extra[0]} (shape {state[extra[0]].shape}) is not in the model"
                         + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    model.load_state_dict({k: state[k] for k in expected})
    return attrs


class _open:
    """h5py.File(path, 'r') that turns a missing, non-HDF5 or non-tinyconv file into one clear error."""

    def __init__(self, path):
        self.path = Path(path)

    def __enter__(self):
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such weights file")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as e:
            raise ValueError(f"{self.path}: not a readable HDF5 file ({e})") from None
        fmt, version = self.file.attrs.get("format"), self.file.attrs.get("format_version")
        if fmt != FORMAT:
            self.file.close()
            raise ValueError(f"{self.path}: not a tinyconv weights file (convert it first: "
                             f"python -m tinyconv.weights convert --from FILE --arch NAME)")
        if version != FORMAT_VERSION:
            self.file.close()
            raise ValueError(f"{self.path}: weights format version {version}, this tinyconv reads version "
                             f"{FORMAT_VERSION} (fetch or convert the weights again)")
        missing = [k for k in REQUIRED_ATTRS if k not in self.file.attrs]
        if missing:
            self.file.close()
            raise ValueError(f"{self.path}: attribute {missing[0]} is missing")
        return self.file

    def __exit__(self, *exc):
        self.file.close()


def _attrs(f):
    out = {}
    for name, value in f.attrs.items():
        if name in JSON_ATTRS:
            value = json.loads(value)
        elif isinstance(value, np.ndarray):
            value = tuple(value.tolist())
        elif isinstance(value, np.generic):
            value = value.item()
        out[name] = value
    return out
