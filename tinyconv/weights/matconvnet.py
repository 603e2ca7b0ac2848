"""Read MatConvNet's VGG files (imagenet-vgg-verydeep-19.mat, the course's file; also -16) with scipy.io.loadmat.

The file holds `layers`, a cell array of structs with fields `name` ('conv1_1', 'relu1_1', 'pool1', ..., 'fc8'),
`type` ('conv', 'relu', 'pool', 'softmax') and, for 'conv', `weights` = {kernel (kh, kw, in, out), bias (out, 1)};
and the input normalisation as a struct with field `averageImage` (a (1, 1, 3) mean pixel, or in older files a
(224, 224, 3) mean image) under `meta.normalization` (newer files) or a top-level `normalization` (older files).
Layers `conv<B>_<C>` become `block<B>_conv<C>` (the Keras names); the fully connected layers (fc6-8, stored as
convolutions) are left out. The weights expect RGB pixels 0..255 minus the mean pixel, which we record.
"""
import re

import numpy as np
import scipy.io

CONV_NAME = re.compile(r"conv(\d+)_(\d+)$")


def read_matconvnet(path):
    """({"block1_conv1/kernel": (3, 3, 3, 64) float32, ...}, preprocessing attrs) of a MatConvNet VGG .mat file."""
    try:
        mat = scipy.io.loadmat(str(path), struct_as_record=False, squeeze_me=True)
    except Exception as e:  # scipy raises MatReadError, ValueError, IndexError... on a damaged file
        raise ValueError(f"{path}: not a readable MATLAB v5 file ({e})") from None
    if "layers" not in mat:
        raise ValueError(f"{path}: no 'layers' variable: not a MatConvNet network")
    state = {}
    for layer in np.atleast_1d(mat["layers"]):
        match = CONV_NAME.match(str(getattr(layer, "name", "")))
        if getattr(layer, "type", None) != "conv" or match is None:
            continue
        name = f"block{match.group(1)}_conv{match.group(2)}"
        kernel, bias = (np.asarray(w, dtype=np.float32) for w in layer.weights)
        bias = bias.reshape(-1)
        if kernel.ndim != 4 or kernel.shape[3] != bias.size:
            raise ValueError(f"{path}: layer {layer.name}: kernel {kernel.shape} (kh, kw, in, out) does not match "
                             f"bias {bias.shape}")
        state[f"{name}/kernel"], state[f"{name}/bias"] = kernel, bias
    if not state:
        raise ValueError(f"{path}: no conv<B>_<C> layers found")
    return state, _preprocessing(path, mat)


def _preprocessing(path, mat):
    normalization = mat["meta"].normalization if "meta" in mat else mat.get("normalization")
    if normalization is None or not hasattr(normalization, "averageImage"):
        raise ValueError(f"{path}: no normalization.averageImage (the mean pixel the weights expect)")
    average = np.asarray(normalization.averageImage, dtype=np.float64)
    mean = average.reshape(-1, 3).mean(axis=0) if average.size > 3 else average.reshape(3)
    rounded = ", ".join(f"{m:.3f}" for m in mean)
    return dict(preprocessing="matconvnet", channel_order="RGB", pixel_mean=tuple(mean.tolist()), pixel_scale=1.0,
                preprocessing_description=f"matconvnet: RGB pixels 0..255 minus the mean pixel ({rounded}) "
                                          f"from the file's averageImage; no scaling")
