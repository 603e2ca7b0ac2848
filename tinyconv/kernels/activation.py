"""Elementwise activations that NumPy would compute in several passes with temporaries: one parallel Numba pass."""
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def prelu_forward(x, slope, bias):
    """y = z where z > 0, slope * z elsewhere, z = x + bias (a convolution's bias, added in the same pass);
    x (..., C) C-contiguous, slope and bias (C,) of x's dtype."""
    channels = slope.shape[0]
    flat = x.reshape(-1, channels)
    out = np.empty_like(flat)
    for i in prange(flat.shape[0]):
        for c in range(channels):
            v = flat[i, c] + bias[c]
            out[i, c] = v if v > 0 else v * slope[c]
    return out.reshape(x.shape)
