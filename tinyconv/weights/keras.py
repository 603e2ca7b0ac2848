"""Read Keras HDF5 weight files: full models (`model.save`, e.g. facenet_keras.h5) and weight-only files
(`save_weights`, e.g. the Keras applications' vgg16/vgg19 `_notop.h5`).

Arrays live in `<root>/<layer>/<weight name>` where <root> is `model_weights` (full model) or the file root, and
each layer group lists its arrays in the attribute `weight_names`: `<layer>/kernel:0` (Keras 2) or
`<layer>_W_1:0`, `<layer>_b_1:0` (Keras 1). Keras already uses our layouts (HWIO kernels, (in, out) dense).
The graph of a full model is JSON in the root attribute `model_config`: we read it to check every weighted layer
against its configuration and to record the residual scales of FaceNet's `*_ScaleSum` Lambda layers (the Lambda
code itself, marshalled bytecode, is never executed).
"""
import json
import re

import h5py
import numpy as np

from tinyconv.weights.format import PARAMS

KERAS1_NAMES = {"W": "kernel", "b": "bias"}
WEIGHTED = ("Conv2D", "BatchNormalization", "Dense")


def read_keras(path):
    """(state, info) of a Keras HDF5 file: state {"layer/param": float32 array} in file order; info has
    'model_name' and, for full models, 'input_size' and 'residual_scales' ({"Block35_1_ScaleSum": 0.17, ...})."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        if f.attrs.get("format") == "tinyconv-weights":
            raise ValueError(f"{path}: already a tinyconv weights file, nothing to convert")
        if "layer_names" not in root.attrs:
            raise ValueError(f"{path}: not a Keras weights file (no layer_names attribute)")
        state = {}
        for layer in _strings(root.attrs["layer_names"]):
            group = root[layer]
            for weight in _strings(group.attrs.get("weight_names", [])):
                state[f"{layer}/{_param_name(path, layer, weight)}"] = np.asarray(group[weight], dtype=np.float32)
        info = {"model_name": None}
        if "model_config" in f.attrs:
            info.update(_read_graph(path, json.loads(_string(f.attrs["model_config"])), state))
    return state, info


def _param_name(path, layer, weight):
    """'Conv/kernel:0' -> 'kernel'; 'block1_conv1_W_1:0' -> 'kernel'; 'block1_conv1_b_1:0' -> 'bias'."""
    base = weight.split("/")[-1].split(":")[0]
    if base.startswith(layer + "_"):
        base = re.sub(r"_\d+$", "", base[len(layer) + 1:])
    base = KERAS1_NAMES.get(base, base)
    if base not in PARAMS:
        raise ValueError(f"{path}: layer {layer}: unknown weight {weight!r}")
    return base


def _read_graph(path, config, state):
    """Check each weighted layer of the JSON graph against its arrays; return input size and residual scales."""
    layers = config["config"]["layers"]
    weighted = {k.rpartition("/")[0] for k in state}
    info = {"model_name": config["config"].get("name"), "residual_scales": {}}
    for layer in layers:
        name, kind, cfg = layer["name"], layer["class_name"], layer["config"]
        if kind == "InputLayer":
            info["input_size"] = cfg["batch_input_shape"][1]
        elif kind == "Lambda" and name.endswith("_ScaleSum"):
            info["residual_scales"][name] = float(cfg["arguments"]["scale"])
        elif kind in WEIGHTED:
            if name not in weighted:
                raise ValueError(f"{path}: layer {name} ({kind}) has no weights in the file")
            _check_layer(path, name, kind, cfg, {k.rpartition("/")[2]: v.shape for k, v in state.items()
                                                 if k.rpartition("/")[0] == name})
            weighted.discard(name)
        elif name in weighted:
            raise ValueError(f"{path}: layer {name} ({kind}) should not have weights")
    if weighted:
        raise ValueError(f"{path}: weights for {sorted(weighted)[0]}, a layer missing from model_config")
    return info


def _check_layer(path, name, kind, cfg, shapes):
    if kind == "Conv2D":
        expected = {"kernel": (*cfg["kernel_size"], shapes.get("kernel", (0,) * 4)[2], cfg["filters"])}
        if cfg["use_bias"]:
            expected["bias"] = (cfg["filters"],)
    elif kind == "Dense":
        expected = {"kernel": (shapes.get("kernel", (0, 0))[0], cfg["units"])}
        if cfg["use_bias"]:
            expected["bias"] = (cfg["units"],)
    else:
        n = shapes.get("moving_mean", (0,))
        expected = {"moving_mean": n, "moving_variance": n}
        expected.update({"gamma": n} if cfg["scale"] else {})
        expected.update({"beta": n} if cfg["center"] else {})
    if set(shapes) != set(expected):
        raise ValueError(f"{path}: layer {name}: expected weights {sorted(expected)}, found {sorted(shapes)}")
    for param, shape in expected.items():
        if tuple(shapes[param]) != tuple(shape):
            raise ValueError(f"{path}: layer {name}/{param}: expected shape {tuple(shape)} from model_config, "
                             f"found {tuple(shapes[param])}")


def _strings(values):
    return [_string(v) for v in values]


def _string(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)
