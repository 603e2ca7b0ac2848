"""Winograd F(2x2, 3x3) for few channels: every stage of a row of tiles in one Numba pass, no BLAS.

Same algorithm, shapes and matrices as winograd.py (read it first): V = BT patch BT.T per tile, M[k] = V[k] @ U[k]
for the 16 transform points k, y = AT M AT.T. There the products are 16 BLAS calls per chunk of tiles, V and M go
through memory, and with few channels the products are thin ((tiles x 32) @ (32 x 64) for FaceNet's 77x77
32 -> 64): that layer ran at 37 GFLOP/s of the direct definition (187 ms at batch 32). Here one thread takes one
row of tiles (N * tH rows in parallel) and keeps its V (16, tW, C), M (16, tW, O) and U in the L2 cache; the
products are dot products along C that LLVM vectorises (127 ms for that layer).

Each tile is computed on its own, in a fixed order: an image gets the same bits alone and in a batch (BLAS's
results depend on where a row falls in the matrix), which is what FaceNet's batch/alone check needs.
"""
import numpy as np
from numba import njit, prange

from tinyconv.kernels import winograd
from tinyconv.kernels.conv import work_buffer


@njit(fastmath={"reassoc", "contract"}, cache=True)
def _products(V, Ut, M):
    """M[k] = V[k] @ Ut[k].T for k < 16; V (16, T, C), Ut (16, O, C), M (16, T, O). Each entry is a dot product
    along C (vectorised: the sum may be reordered, the same way for every tile); 2 tiles x 2 output channels at a
    time, so each value loaded serves two multiply-adds: 18 GFLOP/s on one thread at 32 -> 64 (a loop vectorised
    along the output channels instead: 13; 2 tiles x 4 channels: 20, but it moved FaceNet's batch/alone distance
    from 7.9e-7 to 9.3e-7, near the course's 1e-6). An odd last tile or output channel is computed twice."""
    _, T, C = V.shape
    O = Ut.shape[1]
    zero = np.zeros(1, M.dtype)[0]
    for k in range(16):
        for t in range(0, T, 2):
            t2 = min(t + 1, T - 1)
            va, vb = V[k, t], V[k, t2]
            for o in range(0, O, 2):
                o2 = min(o + 1, O - 1)
                ua, ub = Ut[k, o], Ut[k, o2]
                s0, s1, s2, s3 = zero, zero, zero, zero
                for c in range(C):
                    s0 += va[c] * ua[c]
                    s1 += va[c] * ub[c]
                    s2 += vb[c] * ua[c]
                    s3 += vb[c] * ub[c]
                M[k, t, o], M[k, t, o2], M[k, t2, o], M[k, t2, o2] = s0, s1, s2, s3


@njit(parallel=True, cache=True)
def _rows(x, Ut, pt, pl, y):
    """y (N, Ho, Wo, O) = the 3x3 correlation of x (N, H, W, C), zero-padded pt above and pl left, with the kernel
    whose F(2x2) transform is U (16, C, O), given as Ut = U.transpose(0, 2, 1), contiguous. Parallel over rows of
    2x2 output tiles."""
    N, H, W, C = x.shape
    _, Ho, Wo, O = y.shape
    tH, tW = (Ho + 1) // 2, (Wo + 1) // 2
    for q in prange(N * tH):
        n, h0 = q // tH, q % tH * 2 - pt
        d = np.zeros((4, 4, C), x.dtype)          # one input patch
        V = np.empty((16, tW, C), x.dtype)
        M = np.empty((16, tW, O), x.dtype)
        for tj in range(tW):
            w0 = tj * 2 - pl
            for k in range(4):
                h = h0 + k
                for l in range(4):
                    w = w0 + l
                    if 0 <= h < H and 0 <= w < W:
                        d[k, l] = x[n, h, w]
                    else:
                        d[k, l] = 0
            for l in range(4):                    # t = BT d (in place, column l): rows d0-d2, d1+d2, d2-d1, d1-d3
                for c in range(C):
                    d0, d1, d2, d3 = d[0, l, c], d[1, l, c], d[2, l, c], d[3, l, c]
                    d[0, l, c], d[1, l, c], d[2, l, c], d[3, l, c] = d0 - d2, d1 + d2, d2 - d1, d1 - d3
            for i in range(4):                    # V = t BT.T: the same along the columns
                for c in range(C):
                    t0, t1, t2, t3 = d[i, 0, c], d[i, 1, c], d[i, 2, c], d[i, 3, c]
                    V[i * 4, tj, c], V[i * 4 + 1, tj, c] = t0 - t2, t1 + t2
                    V[i * 4 + 2, tj, c], V[i * 4 + 3, tj, c] = t2 - t1, t1 - t3
        _products(V, Ut, M)
        oh = q % tH * 2
        T = np.empty((2, 4, O), y.dtype)          # AT M of one tile, AT = [[1, 1, 1, 0], [0, 1, -1, -1]]
        for tj in range(tW):
            for j in range(4):
                m0, m1, m2, m3 = M[j, tj], M[4 + j, tj], M[8 + j, tj], M[12 + j, tj]
                for o in range(O):
                    T[0, j, o] = m0[o] + m1[o] + m2[o]
                    T[1, j, o] = m1[o] - m2[o] - m3[o]
            ow = tj * 2
            for r in range(min(2, Ho - oh)):      # y = (AT M) AT.T
                out = y[n, oh + r, ow]
                for o in range(O):
                    out[o] = T[r, 0, o] + T[r, 1, o] + T[r, 2, o]
                if ow + 1 < Wo:
                    out = y[n, oh + r, ow + 1]
                    for o in range(O):
                        out[o] = T[r, 1, o] - T[r, 2, o] - T[r, 3, o]
    return y


def conv2d_forward(x, w, stride, padding):
    """y (N, Ho, Wo, O) = cross-correlation of x (N, H, W, C) with the 3x3 kernel w (3, 3, C, O), stride (1, 1);
    conv.conv2d_forward's signature (the caller checks winograd.supports first)."""
    if not winograd.supports(w.shape, stride, padding) or x.shape[3] != w.shape[2]:
        raise ValueError(f"winograd_rows: needs a 3x3 kernel, stride 1 and padding <= 2 with matching channels; "
                         f"got input {x.shape}, kernel {w.shape}, stride {stride}, padding {padding}")
    N, H, W, C = x.shape
    O = w.shape[3]
    (pt, pb), (pl, pr) = padding
    U = winograd.kernel_transform(np.asarray(w, dtype=x.dtype), winograd.MATRICES[2][1],
                                  work_buffer((16, C, O), x.dtype, 2))
    y = np.empty((N, H + pt + pb - 2, W + pl + pr - 2, O), x.dtype)
    return _rows(np.ascontiguousarray(x), np.ascontiguousarray(U.transpose(0, 2, 1)), pt, pl, y)
