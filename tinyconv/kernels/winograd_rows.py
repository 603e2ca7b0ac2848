"""Winograd F(2x2, 3x3) for few channels: every stage of a row of tiles in one Numba pass, no BLAS.

Same algorithm, shapes and matrices as winograd.py (read it first): V = BT patch BT.T per tile, M[k] = V[k] @ U[k]
for the 16 transform points k, y = AT M AT.T. There the products are 16 BLAS calls per chunk of tiles, V and M go
through memory, and with few channels the products are thin ((tiles x 32) @ (32 x 64) for FaceNet's 77x77
32 -> 64): BLAS ran them at about 40 GFLOP/s of the direct definition. Here one thread takes one row of tiles
(N * tH rows in parallel) and keeps its V (16, tW, C), M (16, tW, O) and U in the L2 cache; the products are plain
loops over output channels that LLVM vectorises.

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
    along C (vectorised: the sum may be reordered, the same way for every tile); 2 tiles x 4 output channels at a
    time, so each value loaded serves 2 or 4 multiply-adds (1.6x faster than 2 x 2 at C = 32, 4.5x than a plain
    loop over output channels). An odd last tile, or the last output channels, may be computed twice."""
    _, T, C = V.shape
    O = Ut.shape[1]
    zero = np.zeros(1, M.dtype)[0]
    for k in range(16):
        for t in range(0, T, 2):
            ta, tb = t, min(t + 1, T - 1)
            va, vb = V[k, ta], V[k, tb]
            for o in range(0, O, 4):
                o0, o1, o2, o3 = o, min(o + 1, O - 1), min(o + 2, O - 1), min(o + 3, O - 1)
                u0, u1, u2, u3 = Ut[k, o0], Ut[k, o1], Ut[k, o2], Ut[k, o3]
                a0, a1, a2, a3, b0, b1, b2, b3 = zero, zero, zero, zero, zero, zero, zero, zero
                for c in range(C):
                    x, y = va[c], vb[c]
                    a0 += x * u0[c]
                    a1 += x * u1[c]
                    a2 += x * u2[c]
                    a3 += x * u3[c]
                    b0 += y * u0[c]
                    b1 += y * u1[c]
                    b2 += y * u2[c]
                    b3 += y * u3[c]
                M[k, ta, o0], M[k, ta, o1], M[k, ta, o2], M[k, ta, o3] = a0, a1, a2, a3
                M[k, tb, o0], M[k, tb, o1], M[k, tb, o2], M[k, tb, o3] = b0, b1, b2, b3


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
