"""Winograd minimal filtering F(m x m, 3x3) for 3x3 stride-1 convolutions on NHWC arrays (Lavin & Gray, 2016).

Shapes as in conv.py: x (N, H, W, C), w (3, 3, C, O) HWIO, y (N, Ho, Wo, O); padding ((pt, pb), (pl, pr)) already
resolved by the caller, each side at most 2. The output is cut into m x m tiles; tile (n, ti, tj) needs the
a x a input patch (a = m + 2) starting at row ti*m - pt, column tj*m - pl (zeros outside the image). With the
constant matrices BT (a x a), G (a x 3) and AT (m x a) of `MATRICES`:

    V[p]  = BT @ patch_p @ BT.T            input transform, per tile p and channel   (Numba)
    U     = G @ w @ G.T                    kernel transform, per (C, O) pair          (Numba)
    M[k]  = V[k] @ U[k]                    for each of the a*a transform points k:    (BLAS, batched matmul)
            (tiles x C) @ (C x O)
    y_p   = AT @ M[p] @ AT.T               output transform, per tile and output channel (Numba)

A tile costs a*a multiplications per (C, O) pair instead of 9*m*m: 16 vs 36 for F(2x2, 3x3), 36 vs 144 for
F(4x4, 3x3). The transforms add and scale, so float32 loses a little more precision than im2col; measured against
a float64 direct convolution over 600 random shapes (1 to 512 channels), max |error| / max |y| was at most 9e-7
for F(2x2, 3x3) (im2col: 9e-7) and 4.6e-6 for F(4x4, 3x3), below ERROR_BOUND[m] (tests/test_winograd.py checks
it). F(4x4) interpolates at 0, 1, -1, 1/2, -2 (and infinity): the textbook 0, +-1, +-2 measured 1.2e-5 (their
matrices hold 5s and 8s on both sides; 1/2 and -2 balance them). tinyconv.functional.conv_algorithm chooses.

The gradient with respect to the input is the forward convolution of gy with the kernel turned 180 degrees and
in/out swapped, padded 2 - pt, 2 - pb, ... (see conv.conv2d_grad_input). The gradient with respect to the
kernel stays with conv.conv2d_grad_weight (on large images its columns of one kernel row, a third of im2col's
copy): a Winograd version (the adjoints of the three stages, git history a5e7392) measured 1.5-20x slower, its
products being long and thin (C x tiles) @ (tiles x O).

The tiles are processed in chunks of tile rows so V stays near CHUNK_BYTES (a large image would otherwise move
hundreds of MB through memory per transform), in work buffers reused between calls. Each chunk makes a*a BLAS
calls: on a machine whose other core is busy, every call waits for its second thread (VGG conv1_2 at 512 px took
4.4 s instead of 0.29 s beside another process), so chunks are not made smaller than that: 16 MB measured no
slower than 2-8 MB on a quiet machine.
"""
import numpy as np
from numba import njit, prange

from tinyconv.kernels.conv import image_tiles, work_buffer

MATRICES = {  # m -> (BT, G, AT), interpolation points 0, 1, -1 (, 1/2, -2) and infinity
    2: (np.array([[1, 0, -1, 0],
                  [0, 1, 1, 0],
                  [0, -1, 1, 0],
                  [0, 1, 0, -1]], np.float64),
        np.array([[1, 0, 0],
                  [1 / 2, 1 / 2, 1 / 2],
                  [1 / 2, -1 / 2, 1 / 2],
                  [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 0],
                  [0, 1, -1, -1]], np.float64)),
    4: (np.array([[2, -3, -4, 3, 2, 0],
                  [0, -2, 1, 5, 2, 0],
                  [0, 2, -5, 1, 2, 0],
                  [0, -4, -2, 4, 2, 0],
                  [0, 1, -2, -1, 2, 0],
                  [0, 2, -3, -4, 3, 2]], np.float64),
        np.array([[1 / 2, 0, 0],
                  [1 / 6, 1 / 6, 1 / 6],
                  [-1 / 6, 1 / 6, -1 / 6],
                  [-8 / 15, -4 / 15, -2 / 15],
                  [1 / 30, -1 / 15, 2 / 15],
                  [0, 0, 1 / 2]], np.float64),
        np.array([[1, 1, 1, 1, 1, 0],
                  [0, 1, -1, 1 / 2, -2, 0],
                  [0, 1, 1, 1 / 4, 4, 0],
                  [0, 1, -1, 1 / 8, -8, 1]], np.float64)),
}
ERROR_BOUND = {2: 2e-6, 4: 1e-5}   # float32 max |y - y64| / max |y64| (documented bound, tested)
CHUNK_BYTES = 16 << 20        # target size of V for one chunk of tile rows ...
MIN_CHUNK_TILES = 1024        # ... unless that leaves fewer tiles (rows of each matrix product) than this: each
                              # product is one BLAS call, and a short one runs badly on 2 threads


def supports(w_shape, stride, padding):
    """True when this module can compute the convolution: a 3x3 kernel, stride 1, padding at most 2 per side."""
    return tuple(w_shape[:2]) == (3, 3) and tuple(stride) == (1, 1) and max(max(p) for p in padding) <= 2


@njit(parallel=True, cache=True)
def input_transform(x, BT, m, pt, pl, tH, tW, q0, q1, V):
    """V[i*a + j, (q-q0)*tW + tj, c] = (BT @ patch @ BT.T)[i, j] of the patch of tile row q = n*tH + ti.

    x: (N, H, W, C); BT: (a, a); V: (a*a, (q1-q0)*tW, C), written in full. Parallel over tile rows.
    """
    N, H, W, C = x.shape
    a = BT.shape[0]
    for r in prange(q1 - q0):
        q = q0 + r
        n = q // tH
        h0 = (q - n * tH) * m - pt
        t = np.empty((a, a, C), x.dtype)          # BT @ patch, one tile at a time
        for tj in range(tW):
            w0 = tj * m - pl
            t[:] = 0
            for k in range(a):                    # t[i, l] = sum_k BT[i, k] * patch[k, l]
                h = h0 + k
                if h < 0 or h >= H:
                    continue
                for i in range(a):
                    b = BT[i, k]
                    if b == 0:
                        continue
                    for l in range(a):
                        w = w0 + l
                        if 0 <= w < W:
                            for c in range(C):
                                t[i, l, c] += b * x[n, h, w, c]
            p = r * tW + tj
            for i in range(a):                    # V[i, j] = sum_l t[i, l] * BT[j, l]
                for j in range(a):
                    v = V[i * a + j, p]
                    v[:] = 0
                    for l in range(a):
                        b = BT[j, l]
                        if b != 0:
                            for c in range(C):
                                v[c] += b * t[i, l, c]
    return V


@njit(parallel=True, cache=True)
def output_transform(M, AT, tH, tW, q0, q1, y):
    """y[n, ti*m + r, tj*m + s, :] = (AT @ M[:, p] @ AT.T)[r, s] for the tiles of tile rows q0 <= q < q1.

    M: (a*a, (q1-q0)*tW, O); AT: (m, a); y: (N, Ho, Wo, O), the cells of these tiles inside it are written.
    """
    N, Ho, Wo, O = y.shape
    m, a = AT.shape
    for r in prange(q1 - q0):
        q = q0 + r
        n = q // tH
        oh0 = (q - n * tH) * m
        t = np.empty((m, a, O), y.dtype)          # AT @ M, one tile at a time
        for tj in range(tW):
            p = r * tW + tj
            t[:] = 0
            for i in range(a):                    # t[u, j] = sum_i AT[u, i] * M[i, j]
                for u in range(m):
                    b = AT[u, i]
                    if b == 0:
                        continue
                    for j in range(a):
                        src = M[i * a + j, p]
                        for o in range(O):
                            t[u, j, o] += b * src[o]
            ow0 = tj * m
            for u in range(min(m, Ho - oh0)):     # y[u, s] = sum_j t[u, j] * AT[s, j]
                for s in range(min(m, Wo - ow0)):
                    dst = y[n, oh0 + u, ow0 + s]
                    dst[:] = 0
                    for j in range(a):
                        b = AT[s, j]
                        if b != 0:
                            for o in range(O):
                                dst[o] += b * t[u, j, o]
    return y


@njit(parallel=True, cache=True)
def kernel_transform(w, G, U):
    """U[i*a + j, c, o] = (G @ w[:, :, c, o] @ G.T)[i, j] for every (c, o) pair, summed in float64 and rounded once.

    w: (3, 3, C, O), any strides (grad_input passes the turned kernel as a view, not a copy); G: (a, 3) float64;
    U: (a*a, C, O), written in full. Parallel over input channels.
    """
    a = G.shape[0]
    _, _, C, O = w.shape
    for c in prange(C):
        t = np.empty((a, 3, O))                   # G @ w[:, :, c, :], float64
        for i in range(a):
            for l in range(3):
                for o in range(O):
                    t[i, l, o] = G[i, 0] * w[0, l, c, o] + G[i, 1] * w[1, l, c, o] + G[i, 2] * w[2, l, c, o]
        for i in range(a):
            for j in range(a):
                u = U[i * a + j, c]
                for o in range(O):
                    u[o] = t[i, 0, o] * G[j, 0] + t[i, 1, o] * G[j, 1] + t[i, 2, o] * G[j, 2]
    return U


def conv2d_forward(x, w, stride, padding, m=2):
    """y (N, Ho, Wo, O) = cross-correlation of x (N, H, W, C) with the 3x3 kernel w (3, 3, C, O), stride (1, 1).

    m: output tile side, 2 or 4. Output dtype follows x; w is cast to it. conv.conv2d_forward's signature plus m;
    the caller checks `supports` first.
    """
    if not supports(w.shape, stride, padding) or x.shape[3] != w.shape[2]:
        raise ValueError(f"winograd: needs a 3x3 kernel, stride 1 and padding <= 2 with matching channels; got "
                         f"input {x.shape}, kernel {w.shape}, stride {stride}, padding {padding}")
    C, O = w.shape[2:]
    U = kernel_transform(np.asarray(w, dtype=x.dtype), MATRICES[m][1], work_buffer(((m + 2) ** 2, C, O), x.dtype, 2))
    return _convolve(x, U, padding, m)


def conv2d_grad_input(gy, w, x_shape, stride, padding, m=2):
    """gx of shape x_shape = vector-Jacobian product of conv2d_forward with gy (N, Ho, Wo, O): the forward
    convolution of gy with w turned 180 degrees, in/out swapped, padded 2 - pt, 2 - pb (rows) and likewise
    (columns), so that the output has x's height and width.

    No turned copy of w: turning the kernel reverses the columns of G (G w[::-1, ::-1] G.T = G' w G'.T with
    G' = G[:, ::-1]), and swapping in/out transposes each U[k], which the products read as they are.
    """
    (pt, pb), (pl, pr) = padding
    N, H, W, C = x_shape
    O = w.shape[3]
    fits = gy.shape == (N, H + pt + pb - 2, W + pl + pr - 2, O) and w.shape[2] == C
    if not fits or not supports(w.shape, stride, padding):
        raise ValueError(f"winograd: output gradient {gy.shape} does not fit input {tuple(x_shape)}, kernel "
                         f"{w.shape} and padding {padding}")
    G_turned = np.ascontiguousarray(MATRICES[m][1][:, ::-1])
    U = kernel_transform(np.asarray(w, dtype=gy.dtype), G_turned, work_buffer(((m + 2) ** 2, C, O), gy.dtype, 2))
    return _convolve(gy, U.transpose(0, 2, 1), ((2 - pt, 2 - pb), (2 - pl, 2 - pr)), m)


def _convolve(x, U, padding, m):
    """y (N, Ho, Wo, O) from x (N, H, W, C) and the transformed kernel U (a*a, C, O): input transform, one BLAS
    product per transform point (and per image, where conv.image_tiles keeps images apart), output transform,
    chunk by chunk of tile rows."""
    N, H, W, C = x.shape
    O = U.shape[2]
    (pt, pb), (pl, pr) = padding
    Ho, Wo = H + pt + pb - 2, W + pl + pr - 2
    a = m + 2
    BT, _, AT = MATRICES[m]
    BT, AT = BT.astype(x.dtype), AT.astype(x.dtype)
    x = np.ascontiguousarray(x)
    tH, tW = -(-Ho // m), -(-Wo // m)
    y = np.empty((N, Ho, Wo, O), x.dtype)
    rows = max(CHUNK_BYTES // (a * a * tW * C * x.itemsize), -(-MIN_CHUNK_TILES // tW), 1)
    for q0, q1, g in image_tiles(N, tH, tW, rows):
        V = input_transform(x, BT, m, pt, pl, tH, tW, q0, q1, work_buffer((a * a, (q1 - q0) * tW, C), x.dtype))
        M = work_buffer((a * a, (q1 - q0) * tW, O), x.dtype, slot=1)
        np.matmul(V.reshape(a * a, g, -1, C), U[:, None], out=M.reshape(a * a, g, -1, O))
        output_transform(M, AT, tH, tW, q0, q1, y)
    return y
