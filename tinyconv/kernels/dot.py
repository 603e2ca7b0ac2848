"""Matrix products that stay on one thread when they are small.

np.dot hands every product above ~260k multiply-adds to OpenBLAS's 2 threads. For the small products of
inference on a few crops (MTCNN's R-Net and O-Net: (7, 1152) @ (1152, 256), 2M multiply-adds) the hand-off
between threads costs more than the arithmetic, and on a busy 2-core machine, where the second thread must wait
for a core, it took 16-40 ms instead of 0.2 ms on one thread. Products below SMALL_PRODUCT multiply-adds therefore
run in a plain Numba loop on the calling thread; larger ones go to np.dot.
"""
import numpy as np
from numba import njit

SMALL_PRODUCT = 1 << 22       # multiply-adds (m * k * n) below which a product runs on one thread


def dot(a, b, out=None):
    """a (m, k) @ b (k, n) -> (m, n), written into `out` when given (C-contiguous, a's dtype)."""
    m, k = a.shape
    n = b.shape[1]
    if m * k * n >= SMALL_PRODUCT:
        return np.dot(a, b, out=out)
    if out is None:
        out = np.empty((m, n), np.result_type(a.dtype, b.dtype))
    return _small_dot(np.ascontiguousarray(a, dtype=out.dtype), np.ascontiguousarray(b, dtype=out.dtype), out)


@njit(cache=True)
def _small_dot(a, b, out):
    """out[i] = sum over k of a[i, k] * b[k]: the inner loop runs along a row of b and of out (vectorised)."""
    for i in range(a.shape[0]):
        row = out[i]
        row[:] = 0
        for k in range(a.shape[1]):
            v = a[i, k]
            bk = b[k]
            for j in range(row.shape[0]):
                row[j] += v * bk[j]
    return out
