"""Winograd F(m x m, 3x3) for few channels: every stage of a row of tiles in one Numba pass, no BLAS.

Same algorithm, shapes and matrices as winograd.py (read it first): V = BT patch BT.T per tile, M[k] = V[k] @ U[k]
for the a*a transform points k (a = m + 2), y = AT M AT.T. There the products are a*a BLAS calls per chunk of
tiles, V and M go through memory, and with few channels the products are thin ((tiles x 32) @ (32 x 64) for
FaceNet's 77x77 32 -> 64): that layer ran at 37 GFLOP/s of the direct definition (187 ms at batch 32). Here a
thread takes a row of tiles at a time and keeps its V (a*a, tW, C), M (a*a, tW, O) and U in its cache:
- the input rows are transformed once per row of tiles, not once per overlapping patch: BT down the columns of
  the a rows (S = BT R), then BT along each tile's a columns;
- the products are register-blocked (dot.matmul_block);
- AT is applied the same way, first to M seen as a rows (T = AT M), then along each tile's columns.
Each transform is a few multiply-add passes along long contiguous rows, one per nonzero entry of BT or AT
(`_rows_times`). FaceNet's 77x77 32 -> 64 at batch 32, in process: 187 ms through BLAS, 82-98 by rows with the
products updating M in memory and the transforms one tile at a time, 48-50 as here (transforms alone 52-57 ms
then, 31 now).

Each tile is computed on its own, in a fixed order: an image gets the same bits alone and in a batch (BLAS's
results depend on where a row falls in the matrix), which is what FaceNet's batch/alone check needs.
"""
import numpy as np
from numba import get_num_threads, njit, prange

from tinyconv.kernels import dot, winograd
from tinyconv.kernels.conv import work_buffer


@njit(cache=True)
def _products(V, U, M):
    """M[k] = V[k] @ U[k] for every transform point k; V (P, T, C), U (P, C, O), M (P, T, O): register-blocked
    (dot.matmul_block), each tile's sums along C in order."""
    for k in range(V.shape[0]):
        dot.matmul_block(V[k], U[k], M[k])


@njit(fastmath={"nsz", "contract"}, cache=True)
def _rows_times(A, X, Z):
    """Z (r, L) += A (r, k) @ X (k, L) for a small constant A (BT, AT) and long rows: one multiply-add pass along
    a row of X per nonzero entry of A (the zeros are skipped)."""
    for r in range(A.shape[0]):
        z = Z[r]
        for i in range(A.shape[1]):
            b = A[r, i]
            if b != 0:
                xi = X[i]
                for e in range(z.size):
                    z[e] += b * xi[e]


@njit(parallel=True, fastmath={"nsz", "contract"}, cache=True)
def _rows(x, BT, AT, U, pt, pl, y, threads):
    """y (N, Ho, Wo, O) = the 3x3 correlation of x (N, H, W, C), zero-padded pt above and pl left, with the kernel
    whose F(m x m) transform is U (a*a, C, O); BT (a, a), AT (m, a) as in winograd.MATRICES, x's dtype. The rows
    of m x m output tiles are split in `threads` runs of consecutive rows, in parallel; each run makes its buffers
    (about 600 KB for FaceNet's 77x77 32 -> 64) once. fastmath: nsz lets 0 + b*x be b*x, contract fuses each
    multiplication by an entry of BT or AT into its addition."""
    N, H, W, C = x.shape
    _, Ho, Wo, O = y.shape
    m, a = AT.shape
    tH, tW = -(-Ho // m), -(-Wo // m)
    cols = m * tW + 2
    for run in prange(threads):
        R = np.empty((a, cols, C), x.dtype)   # the a input rows of these tiles, zero-padded (column j is j - pl)
        S = np.empty((a, cols, C), x.dtype)   # BT @ R, down the columns
        V = np.empty((a, a, tW, C), x.dtype)  # V[i, l, tile] = (S BT.T)[i, l] over the tile's a columns
        M = np.empty((a * a, tW, O), y.dtype)
        T = np.empty((m, a, tW, O), y.dtype)  # AT @ M, M seen as (a, a*tW*O)
        Y = np.empty((m, tW, m, O), y.dtype)  # (AT M) AT.T over each tile's a columns: the row of whole tiles
        for q in range(run * N * tH // threads, (run + 1) * N * tH // threads):
            n, oh = q // tH, q % tH * m
            R[:] = 0
            for k in range(a):
                h = oh - pt + k
                if 0 <= h < H:
                    R[k, pl:pl + W] = x[n, h]
            S[:] = 0
            _rows_times(BT, R.reshape(a, cols * C), S.reshape(a, cols * C))
            V[:] = 0
            for l in range(a):
                for j in range(a):
                    b = BT[l, j]
                    if b != 0:
                        for i in range(a):
                            for tj in range(tW):
                                v, s = V[i, l, tj], S[i, tj * m + j]
                                for c in range(C):
                                    v[c] += b * s[c]
            _products(V.reshape(a * a, tW, C), U, M)
            T[:] = 0
            _rows_times(AT, M.reshape(a, a * tW * O), T.reshape(m, a * tW * O))
            Y[:] = 0
            for v_ in range(m):
                for j in range(a):
                    b = AT[v_, j]
                    if b != 0:
                        for u in range(m):
                            for tj in range(tW):
                                out, t = Y[u, tj, v_], T[u, j, tj]
                                for o in range(O):
                                    out[o] += b * t[o]
            for u in range(min(m, Ho - oh)):  # the cells inside y
                y[n, oh + u] = Y[u].reshape(tW * m, O)[:Wo]
    return y


def conv2d_forward(x, w, stride, padding, m=2):
    """y (N, Ho, Wo, O) = cross-correlation of x (N, H, W, C) with the 3x3 kernel w (3, 3, C, O), stride (1, 1).

    m: output tile side, 2 or 4 (winograd.MATRICES, same float32 error bounds). conv.conv2d_forward's signature
    plus m (the caller checks winograd.supports first)."""
    if not winograd.supports(w.shape, stride, padding) or x.shape[3] != w.shape[2]:
        raise ValueError(f"winograd_rows: needs a 3x3 kernel, stride 1 and padding <= 2 with matching channels; "
                         f"got input {x.shape}, kernel {w.shape}, stride {stride}, padding {padding}")
    N, H, W, C = x.shape
    O = w.shape[3]
    (pt, pb), (pl, pr) = padding
    BT, G, AT = winograd.MATRICES[m]
    U = winograd.kernel_transform(np.asarray(w, dtype=x.dtype), G, work_buffer(((m + 2) ** 2, C, O), x.dtype, 2))
    y = np.empty((N, H + pt + pb - 2, W + pl + pr - 2, O), x.dtype)
    threads = max(1, min(get_num_threads(), N * -(-y.shape[1] // m)))
    return _rows(np.ascontiguousarray(x), BT.astype(x.dtype), AT.astype(x.dtype), U, pt, pl, y, threads)  # exact
