"""2-D convolution on NHWC arrays, forward and both gradients: im2col (Numba) + BLAS matrix products.

Shapes: x (N, H, W, C), w (kh, kw, C, O) (HWIO), y (N, Ho, Wo, O) with Ho = (H + pt + pb - kh) // sh + 1 and
Wo likewise. stride = (sh, sw); padding = ((pt, pb), (pl, pr)), zeros, already resolved by the caller. No bias.

With K = kh*kw*C and the column matrix `cols` of `im2col` (one row per output pixel):
    forward       y  = cols @ w.reshape(K, O)
    grad_input    gx = col2im(gy @ w.reshape(K, O).T)   (stride 1: a forward convolution of gy, see there)
    grad_weight   gw = cols.T @ gy
The work is done in tiles of output rows so the column buffer stays a few MB (the big early VGG layers would
otherwise move 100+ MB of columns through memory); on images of ROW_MIN_PIXELS output pixels or more the stride-1
kernel gradient copies the columns of one kernel row only (`_rows_grad_weight`). 1x1 stride-1 unpadded
convolutions are plain matrix products with no copy at all; with at most THIN input or output channels they are
register-blocked Numba products (dot.matmul), where BLAS is slow (batch 32: FaceNet's 17x17 256->32 2.2 ms against
3.0, 38x38 64->80 4.1 against 6.7, 17x17 96->256 4.6 against 5.7; wider ones even). 1-D kernels at stride 1
(FaceNet's 1x7, 7x1, 1x3, 3x1) skip im2col too, and the zero padding along the kernel: for a 1 x k kernel the
inputs of output column s through the taps t0 <= t < t1 that fall inside the image (`_taps`) are contiguous in x,
a VIEW of the matrix rows (N*H, W*C) of row stride W*C, so with v_s = x[:, :, s-pl+t0:s-pl+t1].reshape(N*H, (t1-t0)*C)
    forward       y[:, :, s] = v_s @ w[0, t0:t1].reshape(-1, O)        (Wo products, up to k*C deep)
    grad_weight   gw[0, t0:t1] += v_s.T @ gy[:, :, s]
(grad_input: a forward convolution). A k x 1 kernel does the same on x copied transposed to (N, W, H, C), and its
products fill a work buffer column after column, copied back to y in chunks of W*O. Against the former path
(products over a zero-padded copy of x, k*C deep everywhere), in process at batch 32, 128 -> 128: the 7x1 forward
at 17x17 took 19.9-21.8 ms instead of 23.8-28.5, and at FaceNet's 8x8, where the padding was a fifth of the
products, the three passes took 0.62-0.87 of their former time. One product per tap (C deep, accumulated): 26 ms
for the 1x7 forward at 17x17.
Forward passes with few input channels (C <= DIRECT_MAX_C) are computed directly instead (`_direct_forward`,
channel-planar on pieces of output rows, any stride): there the column matrix is thin, BLAS runs at a
fraction of its speed and the copy costs more than the arithmetic. Measured (ms, 2 threads), direct / im2col:
MTCNN P-Net 768x576x3 -> 10: 10.4 / 32.8 (the per-pixel direct kernel this one replaced: 45.0); 383x287x10 -> 16:
7.7 / 22.2; 381x285x16 -> 32: 19.8 / 30.5 (Winograd: 34.6); R-Net's 300 crops 24x24x3 -> 28: 11.9 / 16.7; VGG's
RGB layer (3 -> 64, 'same') at 224, 512, 1024 px: 5.1 / 9.4, 29.5 / 55.9, 114 / 221. At 16 channels the two are
about even on small images (96x96x16 -> 64: 3.9 / 3.7); with more channels im2col wins (11x11x28 -> 48: 29.6 / 10.8).
At stride 2, FaceNet's RGB layer (160x160x3 -> 32, 'valid', batch 32): 17.6 / 26.0 (batch 1: 0.62 / 0.79).
Output dtype follows x (float32 or float64); w is cast to it if needed.
"""
import numpy as np
from numba import njit, prange

from tinyconv.kernels import dot, geometry
from tinyconv.kernels.im2col import col2im_add, im2col

DIRECT_MAX_C = 16             # forward passes with at most this many input channels skip im2col ...
DIRECT_TILE_BYTES = 16 << 10  # ... and accumulate pieces of output rows of about this size (in the L1 cache)
TILE_BYTES = 8 << 20          # target size of one tile of the column matrix ...
MIN_TILE_PIXELS = 2048        # ... unless that leaves fewer output pixels (matrix rows) than this
IMAGE_MIN_ROWS = 256          # products never span images of at least this many output pixels (image_tiles)
THIN = 96                     # 1x1 forward passes with at most this many input or output channels: dot.matmul
ROW_MIN_PIXELS = 2048         # stride-1 kernel gradients on images of this many output pixels or more ...
ROW_TILE_BYTES = 3 << 20      # ... copy 1 x kw columns (`_rows_grad_weight`), in tiles of about this size
_scratch = {}                 # (dtype, slot) -> reusable 1-D work buffer (grown on demand; not thread-safe)


def work_buffer(shape, dtype, slot=0):
    """A C-contiguous work array of `shape` and dtype, carved out of a buffer that is reused between calls (fresh
    large allocations stall now and then); `slot` tells apart buffers that are in use at the same time."""
    size = int(np.prod(shape))
    buf = _scratch.get((dtype, slot))
    if buf is None or buf.size < size:
        buf = _scratch[(dtype, slot)] = np.empty(size, dtype)
    return buf[:size].reshape(shape)


def _geometry(x_shape, w_shape, stride, padding):
    """(Ho, Wo) of the convolution; ValueError naming the mismatch when the shapes do not fit."""
    return geometry.conv_window(x_shape, w_shape, stride, padding)[2]


def _is_pointwise(w_shape, stride, padding):
    """True for a 1x1 kernel with stride 1 and no padding: the convolution is one matrix product."""
    return w_shape[0] == w_shape[1] == 1 and tuple(stride) == (1, 1) and not np.any(padding)


def _is_line(w_shape, stride):
    """True for a 1-D kernel (1xk or kx1, k > 1) at stride 1: products over views of x (`_line_forward`)."""
    return min(w_shape[:2]) == 1 and max(w_shape[:2]) > 1 and tuple(stride) == (1, 1)


def _line_layout(x, w_shape, padding):
    """(rows, across, along, tall) for a 1-D kernel: x as the matrix rows (N*H, W*C), with no copy for a 1 x k
    kernel; for a k x 1 kernel x is first copied transposed to (N, W, H, C) (into a work buffer) so that the
    kernel's axis is the second image axis either way (tall True). across, along: the padding (before, after)
    across and along that axis."""
    tall = w_shape[0] > 1
    if tall:
        N, H, W, C = x.shape
        xt = work_buffer((N, W, H, C), x.dtype)
        np.copyto(xt, x.transpose(0, 2, 1, 3))
        x, padding = xt, padding[::-1]
    N, H, W, C = x.shape
    return x.reshape(N * H, W * C), padding[0], padding[1], tall


def _taps(s, k, pl, W):
    """(t0, t1): the taps t0 <= t < t1 of output column s that fall inside the image (0 <= s - pl + t < W); the
    others would multiply the zero padding (none inside: t1 = t0, an empty product, zeros)."""
    t0 = max(0, pl - s)
    return t0, max(t0, min(k, pl + W - s))


def _line_forward(x, w, Ho, Wo, padding):
    """Forward convolution of a 1-D kernel with no column copy (see the module docstring): for a 1 x k kernel, the
    inputs of output column s in row (n, h) are contiguous in x, so they form the (N*H) x ((t1-t0)*C) matrix view
    rows[:, (s-pl+t0)*C:(s-pl+t1)*C] (taps t0..t1-1 inside the image, `_taps`) and y[:, :, s] is ONE product with
    those rows of w reshaped (k*C) x O: im2col's product without the copy and without the padding. A k x 1
    kernel is the same with H and W swapped (y swapped back)."""
    rows, (pt, pb), (pl, _), tall = _line_layout(x, w.shape, padding)
    N, C, k, O = x.shape[0], x.shape[3], max(w.shape[:2]), w.shape[3]
    H, W = rows.shape[0] // N, rows.shape[1] // C
    Ho, Wo = (Wo, Ho) if tall else (Ho, Wo)
    direct = not (tall or pt or pb)     # y's rows are then exactly x's rows: the products write into y
    y = np.empty((N, Ho, Wo, O), x.dtype) if direct else None
    # cols[s] (N*H, O): output column s, a view of y, or else in a work buffer column after column (a k x 1
    # kernel's y is then copied back in chunks of H*O instead of O)
    cols = y.reshape(N * H, Wo, O).transpose(1, 0, 2) if direct else work_buffer((Wo, N * H, O), x.dtype, slot=1)
    wk = w.reshape(k * C, O)
    for s in range(Wo):
        t0, t1 = _taps(s, k, pl, W)
        np.matmul(rows[:, (s - pl + t0) * C:(s - pl + t1) * C], wk[t0 * C:t1 * C], out=cols[s])
    if direct:
        return y
    y = (np.zeros if pt or pb else np.empty)((N, Wo, Ho, O) if tall else (N, Ho, Wo, O), x.dtype)
    cols = cols.reshape(Wo, N, H, O)
    if tall:
        np.copyto(y[:, :, pt:pt + H], cols.transpose(1, 0, 2, 3))
    else:
        np.copyto(y[:, pt:pt + H], cols.transpose(1, 2, 0, 3))
    return y


def _line_grad_weight(x, gy, w_shape, padding):
    """Kernel gradient of a 1-D kernel at stride 1 over the same views as `_line_forward`: rows t0*C..t1*C of
    gw (k*C, O) += rows[:, (s-pl+t0)*C:(s-pl+t1)*C].T @ gy[:, :, s] for each output column s (output rows that
    see only padding add nothing)."""
    rows, (pt, _), (pl, _), tall = _line_layout(x, w_shape, padding)
    N, C, k, O = x.shape[0], x.shape[3], max(w_shape[:2]), w_shape[3]
    H, W = rows.shape[0] // N, rows.shape[1] // C
    # g[s] (N*H, O): gy's output column s, over the rows of x that see the image
    if tall:
        g = work_buffer((gy.shape[1], N * H, O), x.dtype, slot=1)
        np.copyto(g.reshape(-1, N, H, O), gy[:, :, pt:pt + H].transpose(1, 0, 2, 3))
    else:
        g = np.ascontiguousarray(gy[:, pt:pt + H]).reshape(N * H, -1, O).transpose(1, 0, 2)
    gw, part = np.zeros((k * C, O), x.dtype), np.empty((k * C, O), x.dtype)
    for s in range(len(g)):
        t0, t1 = _taps(s, k, pl, W)
        gw[t0 * C:t1 * C] += np.matmul(rows[:, (s - pl + t0) * C:(s - pl + t1) * C].T, g[s], out=part[t0 * C:t1 * C])
    return gw.reshape(w_shape)


def image_tiles(N, per_image, width, rows):
    """Yield (t0, t1, g) ranges of flat row indices t = n*per_image + r (n an image, r one of its per_image rows,
    e.g. output rows; `width` matrix rows each) in pieces of about `rows`, to be multiplied as g products of equal
    height, one per image, whose shapes depend on the image alone: an image then gets the same bits alone and in a
    batch (OpenBLAS gives a row other bits when the product has another number of rows). Either g whole images,
    or a piece of one image (g = 1). Images of fewer than IMAGE_MIN_ROWS matrix rows are the exception: one
    product spans several of them (g = 1), since BLAS runs such short products at a fraction of its speed.
    The 1-D kernels (`_line_forward`, `_line_grad_weight`) are the other exception, at every image size: their
    products take one output column of the whole batch (N*H rows); one per image would have H rows, and 1x7 at
    batch 32, 17x17, 128 -> 128 took 34.1 ms that way against 15.6 (FaceNet at 160 px runs them on 8x8 and 3x3
    images, under IMAGE_MIN_ROWS anyway)."""
    if per_image * width < IMAGE_MIN_ROWS:
        for t0 in range(0, N * per_image, rows):
            yield t0, min(t0 + rows, N * per_image), 1
    elif rows >= per_image:
        images = rows // per_image
        for n0 in range(0, N, images):
            g = min(images, N - n0)
            yield n0 * per_image, (n0 + g) * per_image, g
    else:
        for n in range(N):
            for r0 in range(0, per_image, rows):
                yield n * per_image + r0, n * per_image + min(r0 + rows, per_image), 1


def _tiles(N, Ho, Wo, K, itemsize):
    """image_tiles over output rows t = n*Ho + oh: tiles of about TILE_BYTES of columns, but never fewer than
    MIN_TILE_PIXELS matrix rows (OpenBLAS runs a short, wide product on 2 threads at a fraction of its speed:
    448 x 4608 @ 4608 x 512 was 4x slower per FLOP than 896 rows) unless an image has fewer."""
    rows = max(TILE_BYTES // (Wo * K * itemsize), -(-MIN_TILE_PIXELS // Wo), 1)
    return image_tiles(N, Ho, Wo, rows)


def conv2d_forward(x, w, stride, padding):
    """y (N, Ho, Wo, O) = cross-correlation of x (N, H, W, C) with w (kh, kw, C, O); see the module docstring."""
    Ho, Wo = _geometry(x.shape, w.shape, stride, padding)
    N, H, W, C = x.shape
    kh, kw, _, O = w.shape
    K = kh * kw * C
    x = np.ascontiguousarray(x)
    wm = np.ascontiguousarray(w, dtype=x.dtype).reshape(K, O)
    if _is_line(w.shape, stride):
        return _line_forward(x, wm.reshape(w.shape), Ho, Wo, padding)
    y = np.empty((N, Ho, Wo, O), x.dtype)
    if _is_pointwise(w.shape, stride, padding):
        if min(C, O) <= THIN:                                     # thin: register-blocked in Numba
            dot.matmul(x.reshape(-1, C), wm, y.reshape(-1, O))
            return y
        for t0, t1, g in image_tiles(N, H * W, 1, N * H * W):    # one tile: g products, one per image
            np.matmul(x.reshape(-1, C)[t0:t1].reshape(g, -1, C), wm, out=y.reshape(-1, O)[t0:t1].reshape(g, -1, O))
        return y
    (sh, sw), ((pt, _), (pl, _)) = stride, padding
    if C <= DIRECT_MAX_C:
        return _direct_forward(x, wm.reshape(kh, kw, C, O), sh, sw, pt, pl, y,
                               max(DIRECT_TILE_BYTES // (O * x.itemsize), 8))
    y2 = y.reshape(N * Ho * Wo, O)
    for t0, t1, g in _tiles(N, Ho, Wo, K, x.itemsize):
        cols = im2col(x, kh, kw, sh, sw, pt, pl, Ho, Wo, t0, t1, work_buffer(((t1 - t0) * Wo, K), x.dtype))
        np.matmul(cols.reshape(g, -1, K), wm, out=y2[t0 * Wo:t1 * Wo].reshape(g, -1, O))
    return y


@njit(parallel=True, cache=True)
def _direct_forward(x, w, sh, sw, pt, pl, y, tile):
    """y (N, Ho, Wo, O) = x (N, H, W, C) correlated with w (kh, kw, C, O) at stride (sh, sw), zero padding pt above
    and pl left (and whatever below and right y's shape implies); parallel over pieces of `tile` output pixels of
    a row.

    Channel-planar: the input rows a piece needs are copied, zero-padded, into phases (C, sw, tile + (kw-1)//sw):
    phases[c, r, t] = x[n, h, sw*(k0 + t) + r - pl], so that tap (i, j) of channel c is the contiguous slice
    phases[c, j % sw, j//sw : j//sw + tile] for the whole piece (at stride 1 one phase, the row itself); acc
    (O, tile) gathers w[i, j, c, o] * slice in passes over contiguous memory that LLVM vectorises (three taps per
    pass: one load and store of acc for three multiply-adds), and is written back to NHWC at the end.
    """
    N, H, W, C = x.shape
    kh, kw, _, O = w.shape
    _, Ho, Wo, _ = y.shape
    pieces = (Wo + tile - 1) // tile
    span = (kw - 1) // sw
    for t in prange(N * Ho * pieces):
        n, oh, k0 = t // (Ho * pieces), t // pieces % Ho, t % pieces * tile
        m = min(tile, Wo - k0)
        acc = np.zeros((O, m), y.dtype)
        phases = np.empty((C, sw, m + span), x.dtype)
        for i in range(kh):
            h = oh * sh - pt + i
            if h < 0 or h >= H:
                continue
            for r in range(sw):
                for k in range(m + span):
                    col = sw * (k0 + k) + r - pl
                    inside = 0 <= col < W
                    for c in range(C):
                        phases[c, r, k] = x[n, h, col, c] if inside else 0
            for c in range(C):
                for j in range(0, kw - 2, 3):
                    x0 = phases[c, j % sw, j // sw:j // sw + m]
                    x1 = phases[c, (j + 1) % sw, (j + 1) // sw:(j + 1) // sw + m]
                    x2 = phases[c, (j + 2) % sw, (j + 2) // sw:(j + 2) // sw + m]
                    for o in range(O):
                        w0, w1, w2 = w[i, j, c, o], w[i, j + 1, c, o], w[i, j + 2, c, o]
                        a = acc[o]
                        for k in range(m):
                            a[k] += w0 * x0[k] + w1 * x1[k] + w2 * x2[k]
                for j in range(kw - kw % 3, kw):
                    x0 = phases[c, j % sw, j // sw:j // sw + m]
                    for o in range(O):
                        w0 = w[i, j, c, o]
                        a = acc[o]
                        for k in range(m):
                            a[k] += w0 * x0[k]
        out = y[n, oh, k0:k0 + m]
        for k in range(m):
            for o in range(O):
                out[k, o] = acc[o, k]
    return y


def conv2d_grad_input(gy, w, x_shape, stride, padding):
    """gx of shape x_shape (the unpadded input) = vector-Jacobian product of conv2d_forward with gy (N, Ho, Wo, O).

    Stride 1 (padding smaller than the kernel, as 'same' and 'valid' give): gx is the forward convolution of gy
    with the kernel turned 180 degrees and in/out swapped, padded by kernel-1-padding on each side - one more
    im2col (kh*kw*O columns) + matrix product, written straight into gx. Otherwise, and also when x has far fewer
    channels than y (C*4 <= O): gy @ w.T to kh*kw*C columns, then col2im. For VGG's RGB input layer at 512x512
    that is 27 instead of 576 columns, 141 -> 45 ms; with similar channel counts col2im's scatter-add costs more
    than the copy.
    """
    Ho, Wo = _geometry(x_shape, w.shape, stride, padding)
    N, H, W, C = x_shape
    kh, kw, _, O = w.shape
    if gy.shape != (N, Ho, Wo, O):
        raise ValueError(f"conv2d: output gradient has shape {gy.shape}, expected {(N, Ho, Wo, O)}")
    (sh, sw), ((pt, pb), (pl, pr)) = stride, padding
    if (sh, sw) == (1, 1) and max(pt, pb) < kh and max(pl, pr) < kw and C * 4 > O:
        w_turned = w[::-1, ::-1].transpose(0, 1, 3, 2)
        return conv2d_forward(gy, w_turned, (1, 1), ((kh - 1 - pt, kh - 1 - pb), (kw - 1 - pl, kw - 1 - pr)))
    K = kh * kw * C
    wt = np.ascontiguousarray(w, dtype=gy.dtype).reshape(K, O).T
    gy2 = np.ascontiguousarray(gy).reshape(N * Ho * Wo, O)
    gx = np.zeros(x_shape, gy.dtype)
    for t0, t1, _ in _tiles(N, Ho, Wo, K, gy.itemsize):
        gcols = np.dot(gy2[t0 * Wo:t1 * Wo], wt, out=work_buffer(((t1 - t0) * Wo, K), gy.dtype))
        col2im_add(gcols, kh, kw, sh, sw, pt, pl, Ho, Wo, t0, t1, gx)
    return gx


def conv2d_grad_weight(x, gy, w_shape, stride, padding):
    """gw of shape w_shape (kh, kw, C, O) = sum over output pixels of window(x) outer gy; x (N, H, W, C)."""
    Ho, Wo = _geometry(x.shape, w_shape, stride, padding)
    N, H, W, C = x.shape
    kh, kw, _, O = w_shape
    K = kh * kw * C
    if gy.shape != (N, Ho, Wo, O):
        raise ValueError(f"conv2d: output gradient has shape {gy.shape}, expected {(N, Ho, Wo, O)}")
    x = np.ascontiguousarray(x)
    gy2 = np.ascontiguousarray(gy, dtype=x.dtype).reshape(N * Ho * Wo, O)
    if _is_pointwise(w_shape, stride, padding):
        return np.dot(x.reshape(-1, C).T, gy2).reshape(w_shape)
    if _is_line(w_shape, stride):
        return _line_grad_weight(x, gy2.reshape(gy.shape), w_shape, padding)
    (sh, sw), ((pt, _), (pl, _)) = stride, padding
    if (sh, sw) == (1, 1) and Ho * Wo >= ROW_MIN_PIXELS:
        return _rows_grad_weight(x, gy2, w_shape, padding, Ho, Wo)
    gw = np.zeros((K, O), x.dtype)
    part = np.empty((K, O), x.dtype)
    for t0, t1, _ in _tiles(N, Ho, Wo, K, x.itemsize):
        cols = im2col(x, kh, kw, sh, sw, pt, pl, Ho, Wo, t0, t1, work_buffer(((t1 - t0) * Wo, K), x.dtype))
        gw += np.dot(cols.T, gy2[t0 * Wo:t1 * Wo], out=part)
    return gw.reshape(w_shape)


def _rows_grad_weight(x, gy2, w_shape, padding, Ho, Wo):
    """conv2d_grad_weight at stride 1 on images of ROW_MIN_PIXELS output pixels or more, with a column matrix of
    kw*C columns instead of kh*kw*C. The columns of the 1 x kw kernel (`im2col` with kh = 1) over the padded input
    rows hold, at row oh + i, what kernel row i sees from output row oh; so for a tile of output rows oh0..oh1 of
    one image, cols covering input rows oh0..oh1 + kh - 1 gives, per kernel row i, the contiguous view
    cols[rows oh0 + i .. oh1 + i] and gw[i] += view.T @ gy[rows oh0 .. oh1]: a third of im2col's copy for 3x3
    kernels. In process (ms, this / im2col): VGG conv1_2 at 224 px 42-48 / 64-67 (tiles of 10 MB: 56), conv2_2
    45 / 47, conv3_1 19 / 20; FaceNet's stem at batch 18, 79x79 32->32 32 / 55, 77x77 32->64 70 / 76."""
    N, H, W, C = x.shape
    kh, kw, _, O = w_shape
    (pt, pb), (pl, _) = padding
    Hc = H + pt + pb                     # rows of the 1 x kw column image, per image
    rows = max(ROW_TILE_BYTES // (Wo * kw * C * x.itemsize), 1)
    gw = np.zeros((kh, kw * C, O), x.dtype)
    part = np.empty((kw * C, O), x.dtype)
    for n in range(N):
        for oh0 in range(0, Ho, rows):
            oh1 = min(Ho, oh0 + rows)
            cols = im2col(x, 1, kw, 1, 1, pt, pl, Hc, Wo, n * Hc + oh0, n * Hc + oh1 + kh - 1,
                          work_buffer(((oh1 - oh0 + kh - 1) * Wo, kw * C), x.dtype))
            g = gy2[(n * Ho + oh0) * Wo:(n * Ho + oh1) * Wo]
            for i in range(kh):
                gw[i] += np.dot(cols[i * Wo:(i + oh1 - oh0) * Wo].T, g, out=part)
    return gw.reshape(w_shape)
