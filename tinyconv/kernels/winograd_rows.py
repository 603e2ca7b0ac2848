"""Winograd F(m x m, 3x3) for few channels: every stage of a row of tiles in one Numba pass, no BLAS.

Same algorithm, shapes and matrices as winograd.py (read it first): V = BT patch BT.T per tile, M[k] = V[k] @ U[k]
for the a*a transform points k (a = m + 2), y = AT M AT.T. There the products are a*a BLAS calls per chunk of
tiles, V and M go through memory, and with few channels the products are thin ((tiles x 32) @ (32 x 64) for
FaceNet's 77x77 32 -> 64): that layer ran at 37 GFLOP/s of the direct definition (187 ms at batch 32). Here one
thread takes one row of tiles (N * tH rows in parallel) and keeps its V (a*a, tW, C), M (a*a, tW, O) and U in the
L2 cache. The input rows are transformed once per row of tiles (BT along the columns, then along each tile's
rows), not once per overlapping patch.

Each tile is computed on its own, in a fixed order: an image gets the same bits alone and in a batch (BLAS's
results depend on where a row falls in the matrix), which is what FaceNet's batch/alone check needs.
"""
import numpy as np
from numba import njit, prange

from tinyconv.kernels import dot, winograd
from tinyconv.kernels.conv import work_buffer


@njit(cache=True)
def _products(V, U, M):
    """M[k] = V[k] @ U[k] for every transform point k; V (P, T, C), U (P, C, O), M (P, T, O): register-blocked
    (dot.matmul_block), each tile's sums along C in order."""
    for k in range(V.shape[0]):
        dot.matmul_block(V[k], U[k], M[k])


def _row_kernel(m):
    """The Numba kernel of F(m x m) by rows of tiles (m = 2 or 4), with BT and AT frozen into its code as
    constants: LLVM unrolls the loops over them and drops the zero terms, so each stage is one pass along the
    channels per tile (with the matrices as arguments, 77x77 32->64 at batch 32 took 115 ms instead of 102 for
    F(2x2), 79x79 32->32 86 instead of 77, F(4x4) 72 instead of 61). fastmath: nsz drops the sums' leading 0 +,
    contract fuses the multiplications by 2, 4, 5, ... into the additions (same speed; FaceNet's course distance
    measured 4.4e-7 with it, 6.0e-7 without: both re-rolls of the later layers' rounding)."""
    BT, AT = winograd.MATRICES[m][0].astype(np.float32), winograd.MATRICES[m][2].astype(np.float32)  # exact
    a = m + 2

    @njit(parallel=True, fastmath={"nsz", "contract"}, cache=True)
    def rows(x, U, pt, pl, y):
        """y (N, Ho, Wo, O) = the 3x3 correlation of x (N, H, W, C), zero-padded pt above and pl left, with the
        kernel whose F(m x m) transform is U (a*a, C, O). Parallel over rows of m x m output tiles."""
        N, H, W, C = x.shape
        _, Ho, Wo, O = y.shape
        tH, tW = -(-Ho // m), -(-Wo // m)
        cols = m * tW + 2
        for q in prange(N * tH):
            n, oh = q // tH, q % tH * m
            R = np.zeros((a, cols, C), x.dtype)   # the a input rows of these tiles, zero-padded (column j is j - pl)
            for k in range(a):
                h = oh - pt + k
                if 0 <= h < H:
                    R[k, pl:pl + W] = x[n, h]
            S = np.empty((a, cols, C), x.dtype)   # BT @ R, down each column
            for j in range(cols):
                for c in range(C):
                    for i in range(a):
                        s = x.dtype.type(0)
                        for k in range(a):
                            if BT[i, k] != 0:
                                s += BT[i, k] * R[k, j, c]
                        S[i, j, c] = s
            V = np.empty((a * a, tW, C), x.dtype)  # V[i*a + l, tile] = (S BT.T)[i, l] over the tile's a columns
            for tj in range(tW):
                for i in range(a):
                    for c in range(C):
                        for l in range(a):
                            v = x.dtype.type(0)
                            for j in range(a):
                                if BT[l, j] != 0:
                                    v += BT[l, j] * S[i, tj * m + j, c]
                            V[i * a + l, tj, c] = v
            M = np.empty((a * a, tW, O), y.dtype)
            _products(V, U, M)
            t = np.empty((m, a, O), y.dtype)      # AT @ M, one tile at a time
            for tj in range(tW):
                for j in range(a):
                    for o in range(O):
                        for u in range(m):
                            s = y.dtype.type(0)
                            for i in range(a):
                                if AT[u, i] != 0:
                                    s += AT[u, i] * M[i * a + j, tj, o]
                            t[u, j, o] = s
                ow = tj * m
                for u in range(min(m, Ho - oh)):  # y = (AT M) AT.T, the tile's cells inside y
                    for v_ in range(min(m, Wo - ow)):
                        out = y[n, oh + u, ow + v_]
                        for o in range(O):
                            s = y.dtype.type(0)
                            for j in range(a):
                                if AT[v_, j] != 0:
                                    s += AT[v_, j] * t[u, j, o]
                            out[o] = s
        return y
    return rows


_ROWS = {m: _row_kernel(m) for m in (2, 4)}


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
    U = winograd.kernel_transform(np.asarray(w, dtype=x.dtype), winograd.MATRICES[m][1],
                                  work_buffer(((m + 2) ** 2, C, O), x.dtype, 2))
    y = np.empty((N, H + pt + pb - 2, W + pl + pr - 2, O), x.dtype)
    return _ROWS[m](np.ascontiguousarray(x), U, pt, pl, y)
