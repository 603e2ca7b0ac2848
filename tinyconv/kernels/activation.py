"""Elementwise activations that NumPy would compute in several passes with temporaries: one parallel Numba pass."""
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def prelu_forward(x, slope):
    """y = x where x > 0, slope * x elsewhere; x (..., C) C-contiguous, slope (C,) of x's dtype."""
    channels = slope.shape[0]
    flat = x.reshape(-1, channels)
    out = np.empty_like(flat)
    for i in prange(flat.shape[0]):
        for c in range(channels):
            v = flat[i, c]
            out[i, c] = v if v > 0 else v * slope[c]
    return out.reshape(x.shape)


@njit(parallel=True, cache=True)
def scale_shift_relu(y, scale, shift):
    """y = max(y * scale + shift, 0) in place, per channel (the last axis): a convolution's bias (and a folded
    inference batch norm) and its ReLU in one pass. y (..., C) C-contiguous; scale, shift (C,) of y's dtype."""
    channels = scale.shape[0]
    flat = y.reshape(-1, channels)
    for i in prange(flat.shape[0]):
        row = flat[i]
        for c in range(channels):
            v = row[c] * scale[c] + shift[c]
            row[c] = 0 if v < 0 else v
    return y


@njit(parallel=True, cache=True)
def add_relu(x, y, scale, out):
    """out = max(x + scale * y, 0): a residual connection and its ReLU in one pass. x, y, out C-contiguous, one
    shape and dtype; scale a number of that dtype."""
    xf, yf, of = x.reshape(-1), y.reshape(-1), out.reshape(-1)
    for i in prange(of.size):
        v = xf[i] + scale * yf[i]
        of[i] = 0 if v < 0 else v
    return out
