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


PARALLEL_MIN = 1 << 18  # values: a smaller pass below runs on the calling thread (waking Numba's threads costs
                        # 12-15 us a call; at batch 1 FaceNet makes 131 such passes, most of 2k-200k values)


def scale_shift_relu(y, scale, shift):
    """y = max(y * scale + shift, 0) in place, per channel (the last axis): a convolution's bias (and a folded
    inference batch norm) and its ReLU in one pass. y (..., C) C-contiguous; scale, shift (C,) of y's dtype."""
    flat = y.reshape(-1, scale.shape[0])
    if y.size < PARALLEL_MIN:
        _scale_shift_relu(flat, scale, shift)
    else:
        _in_pieces_scale_shift_relu(flat, scale, shift, _piece(flat.shape[0]))
    return y


def add_relu(x, y, scale, bias, out):
    """out = max(x + scale * (y + bias), 0): a residual connection (with the bias of the convolution that made y)
    and its ReLU in one pass. x, y, out (..., C) C-contiguous, one shape and dtype; scale a number, bias (C,), both
    of that dtype."""
    xf, yf, of = (a.reshape(-1, bias.shape[0]) for a in (x, y, out))
    if x.size < PARALLEL_MIN:
        _add_relu(xf, yf, scale, bias, of)
    else:
        _in_pieces_add_relu(xf, yf, scale, bias, of, _piece(of.shape[0]))
    return out


def _piece(rows):
    """Rows of a (rows, C) array per parallel piece: 16 pieces, enough for 2 threads to share the work evenly."""
    return max(1, -(-rows // 16))


@njit(cache=True)
def _scale_shift_relu(flat, scale, shift):
    """The pass of scale_shift_relu over flat (P, C), on this thread."""
    for i in range(flat.shape[0]):
        row = flat[i]
        for c in range(row.shape[0]):
            v = row[c] * scale[c] + shift[c]
            row[c] = 0 if v < 0 else v


@njit(parallel=True, cache=True)
def _in_pieces_scale_shift_relu(flat, scale, shift, rows):
    for p in prange((flat.shape[0] + rows - 1) // rows):
        _scale_shift_relu(flat[p * rows:(p + 1) * rows], scale, shift)


@njit(cache=True)
def _add_relu(x, y, scale, bias, out):
    """The pass of add_relu over (P, C) arrays, on this thread."""
    for i in range(out.shape[0]):
        xr, yr, orow = x[i], y[i], out[i]
        for c in range(orow.shape[0]):
            v = xr[c] + scale * (yr[c] + bias[c])
            orow[c] = 0 if v < 0 else v


@njit(parallel=True, cache=True)
def _in_pieces_add_relu(x, y, scale, bias, out, rows):
    for p in prange((out.shape[0] + rows - 1) // rows):
        _add_relu(x[p * rows:(p + 1) * rows], y[p * rows:(p + 1) * rows], scale, bias, out[p * rows:(p + 1) * rows])
