"""im2col and its adjoint col2im: the copy kernels that turn a convolution into a matrix product.

Layout (NHWC input, HWIO kernel): one row of the column matrix per output pixel (n, oh, ow), and within a row
the window in (i, j, c) order, i.e. column index k = (i*kw + j)*C + c. That is exactly the row order of
`w.reshape(kh*kw*C, O)`, so a convolution is `cols @ w.reshape(-1, O)`.

The kernels work on a *tile* of output rows: flat output rows t0 <= t < t1 with t = n*Ho + oh, each holding Wo
pixels, so the column buffer (t1-t0)*Wo x kh*kw*C stays a few MB however big the image is. Cells that fall in the
padding are zeros in im2col and are dropped by col2im.
"""
from numba import njit, prange


@njit(parallel=True, cache=True)
def im2col(x, kh, kw, sh, sw, pt, pl, Ho, Wo, t0, t1, cols):
    """Fill cols[(t-t0)*Wo + ow, (i*kw + j)*C + c] = x[n, oh*sh - pt + i, ow*sw - pl + j, c] (0 in the padding).

    x: (N, H, W, C); cols: ((t1-t0)*Wo, kh*kw*C), written in full.
    """
    N, H, W, C = x.shape
    for r in prange(t1 - t0):
        t = t0 + r
        n = t // Ho
        oh = t - n * Ho
        for ow in range(Wo):
            row = cols[r * Wo + ow]
            w0 = ow * sw - pl
            jlo = max(0, -w0)                # first window column inside the image
            jhi = min(kw, W - w0)            # one past the last
            for i in range(kh):
                h = oh * sh - pt + i
                base = i * kw * C
                if h < 0 or h >= H or jhi <= jlo:
                    for k in range(kw * C):
                        row[base + k] = 0
                    continue
                for k in range(jlo * C):
                    row[base + k] = 0
                # window columns jlo..jhi-1 are contiguous in x: x[n, h, w0+jlo : w0+jhi, :]
                src = x[n, h].reshape(W * C)
                s0 = (w0 + jlo) * C
                d0 = base + jlo * C
                for k in range((jhi - jlo) * C):
                    row[d0 + k] = src[s0 + k]
                for k in range(jhi * C, kw * C):
                    row[base + k] = 0
    return cols


@njit(parallel=True, cache=True)
def col2im_add(cols, kh, kw, sh, sw, pt, pl, Ho, Wo, t0, t1, gx):
    """Adjoint of `im2col` for the same tile: gx[n, h, w, c] += every cols entry that im2col copied from it.

    Runs as a gather over input rows (n, h), so each thread owns the rows it writes (no races); padding entries
    of cols are ignored. gx: (N, H, W, C), accumulated into.
    """
    N, H, W, C = gx.shape
    n0 = t0 // Ho
    n1 = (t1 - 1) // Ho
    # input rows that this tile's output rows can reach, as flat u = n*H + h
    u0 = n0 * H + min(H, max(0, (t0 - n0 * Ho) * sh - pt))
    u1 = n1 * H + min(H, max(0, (t1 - 1 - n1 * Ho) * sh - pt + kh))
    for u in prange(u0, u1):
        n = u // H
        h = u - n * H
        dst = gx[n, h].reshape(W * C)
        for i in range(kh):
            num = h + pt - i
            if num < 0 or num % sh != 0:
                continue
            oh = num // sh
            t = n * Ho + oh
            if oh >= Ho or t < t0 or t >= t1:
                continue
            base = i * kw * C
            for ow in range(Wo):
                row = cols[(t - t0) * Wo + ow]
                w0 = ow * sw - pl
                jlo = max(0, -w0)
                jhi = min(kw, W - w0)
                s0 = base + jlo * C
                d0 = (w0 + jlo) * C
                for k in range((jhi - jlo) * C):
                    dst[d0 + k] += row[s0 + k]
    return gx
