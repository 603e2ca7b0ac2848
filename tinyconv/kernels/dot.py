"""Matrix products in Numba, register-blocked, for the shapes BLAS runs badly: small ones, and thin ones.

- Small: np.dot hands every product above ~260k multiply-adds to OpenBLAS's 2 threads. For the small products
  of inference on a few crops (MTCNN's R-Net and O-Net: (7, 1152) @ (1152, 256), 2M multiply-adds) the hand-off
  between threads costs more than the arithmetic, and on a busy 2-core machine, where the second thread must
  wait for a core, it took 16-40 ms instead of 0.2 ms on one thread. Products below SMALL_PRODUCT multiply-adds
  therefore run on the calling thread (`dot`).
- Thin: with few columns (Winograd's products per transform point, (tiles, 32) @ (32, 64); FaceNet's 1x1
  convolutions to 32 channels) BLAS reaches a third of its speed. `matmul` runs those on all threads, rows in
  parallel.
Both go through `matmul_block`: a block of BLOCK_ROWS rows x BLOCK_COLS columns of the result is summed in a
stack array that LLVM keeps in registers (kernels/registers.py), so each row of b loaded serves BLOCK_ROWS rows
and the result is written once. Every value is its own sum along k, in order, one fused multiply-add at a time:
a row's result does not depend on the other rows (nor on the batch an image comes in).
"""
import numpy as np
from numba import njit, prange

from tinyconv.kernels import registers

SMALL_PRODUCT = 1 << 22       # multiply-adds (m * k * n) below which `dot` runs on one thread
BLOCK_ROWS, BLOCK_COLS = 4, 16  # 8 AVX2 registers of float32 accumulators
ROWS_PER_TASK = 64            # `matmul`: rows per parallel task
_block = registers.stack_array((BLOCK_ROWS, BLOCK_COLS))


def dot(a, b, out=None):
    """a (m, k) @ b (k, n) -> (m, n), written into `out` when given (C-contiguous, a's dtype)."""
    m, k = a.shape
    n = b.shape[1]
    if m * k * n >= SMALL_PRODUCT:
        return np.dot(a, b, out=out)
    if out is None:
        out = np.empty((m, n), np.result_type(a.dtype, b.dtype))
    return matmul_block(np.ascontiguousarray(a, dtype=out.dtype), np.ascontiguousarray(b, dtype=out.dtype), out)


@njit(fastmath={"contract"}, cache=True)
def matmul_block(a, b, out):
    """out (m, n) = a (m, k) @ b (k, n) on the calling thread, register-blocked (module docstring); rows and
    columns past the last whole block one value at a time. FaceNet's Winograd products, (20, 32) @ (32, 64) for
    each of 36 transform points, 640 times over 2 threads: 117-136 GFLOP/s; 38-43 with the rows of `out`
    updated in memory along n."""
    m, k = a.shape
    n = b.shape[1]
    mb, nb = m - m % BLOCK_ROWS, n - n % BLOCK_COLS
    for i0 in range(0, mb, BLOCK_ROWS):
        for j0 in range(0, nb, BLOCK_COLS):
            acc = _block(a.dtype)
            for i in range(BLOCK_ROWS):
                for j in range(BLOCK_COLS):
                    acc[i, j] = 0
            for p in range(k):
                bp = b[p, j0:j0 + BLOCK_COLS]
                for i in range(BLOCK_ROWS):
                    v = a[i0 + i, p]
                    for j in range(BLOCK_COLS):
                        acc[i, j] += v * bp[j]
            for i in range(BLOCK_ROWS):
                for j in range(BLOCK_COLS):
                    out[i0 + i, j0 + j] = acc[i, j]
    for i in range(m):          # the rest: columns nb.. of the blocked rows, every column of the others
        j0 = nb if i < mb else 0
        row = out[i, j0:]
        row[:] = 0
        for p in range(k):
            v, bp = a[i, p], b[p, j0:]
            for j in range(row.size):
                row[j] += v * bp[j]
    return out


@njit(parallel=True, cache=True)
def matmul(a, b, out):
    """out (m, n) = a (m, k) @ b (k, n), C-contiguous, one dtype: `matmul_block` on tasks of ROWS_PER_TASK rows
    in parallel."""
    m = a.shape[0]
    for t in prange(-(-m // ROWS_PER_TASK)):
        r0, r1 = t * ROWS_PER_TASK, min((t + 1) * ROWS_PER_TASK, m)
        matmul_block(a[r0:r1], b, out[r0:r1])
    return out
