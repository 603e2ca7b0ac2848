"""im2col and its adjoint col2im: the copy kernels that turn a convolution into a matrix product.

Layout (NHWC input, HWIO kernel): one row of the column matrix per output pixel (n, oh, ow), and within a row
the window in (i, j, c) order, i.e. column index k = (i*kw + j)*C + c. That is exactly the row order of
`w.reshape(kh*kw*C, O)`, so a convolution is `cols @ w.reshape(-1, O)`.

The kernels work on a *tile* of output rows: flat output rows t0 <= t < t1 with t = n*Ho + oh, each holding Wo
pixels, so the column buffer (t1-t0)*Wo x kh*kw*C stays a few MB however big the image is. Cells that fall in the
padding are zeros in im2col and are dropped by col2im.

Both run on one thread on purpose: whole-slice copies reach 30-45 GB/s on one core (2 threads were no faster),
a small part of the matrix product that follows, and keeping Numba's thread pool out of the convolution leaves
the cores to OpenBLAS's threads.
"""
from numba import njit


@njit(cache=True)
def im2col(x, kh, kw, sh, sw, pt, pl, Ho, Wo, t0, t1, cols):
    """Fill cols[(t-t0)*Wo + ow, (i*kw + j)*C + c] = x[n, oh*sh - pt + i, ow*sw - pl + j, c] (0 in the padding).

    x: (N, H, W, C); cols: ((t1-t0)*Wo, kh*kw*C), written in full.
    """
    N, H, W, C = x.shape
    K = kh * kw * C
    xf = x.reshape(x.size)           # flat views: whole-slice copies compile to memcpy-speed loops
    cf = cols.reshape(cols.size)
    for r in range(t1 - t0):
        t = t0 + r
        n = t // Ho
        oh = t - n * Ho
        for ow in range(Wo):
            w0 = ow * sw - pl
            jlo = max(0, -w0)                # first window column inside the image
            jhi = max(jlo, min(kw, W - w0))  # one past the last
            for i in range(kh):
                d = (r * Wo + ow) * K + i * kw * C
                h = oh * sh - pt + i
                if h < 0 or h >= H:
                    cf[d:d + kw * C] = 0
                    continue
                # window columns jlo..jhi-1 are contiguous in x: x[n, h, w0+jlo : w0+jhi, :]
                s = ((n * H + h) * W + w0 + jlo) * C
                cf[d:d + jlo * C] = 0
                cf[d + jlo * C:d + jhi * C] = xf[s:s + (jhi - jlo) * C]
                cf[d + jhi * C:d + kw * C] = 0
    return cols


@njit(cache=True)
def col2im_add(cols, kh, kw, sh, sw, pt, pl, Ho, Wo, t0, t1, gx):
    """Adjoint of `im2col` for the same tile: gx[n, h, w, c] += every cols entry that im2col copied from it.

    Loops over the input rows (n, h) the tile reaches and gathers what each received; padding entries of cols
    are ignored. gx: (N, H, W, C), accumulated into.
    """
    N, H, W, C = gx.shape
    K = kh * kw * C
    gf = gx.reshape(gx.size)
    cf = cols.reshape(cols.size)
    n0 = t0 // Ho
    n1 = (t1 - 1) // Ho
    # input rows that this tile's output rows can reach, as flat u = n*H + h
    u0 = n0 * H + min(H, max(0, (t0 - n0 * Ho) * sh - pt))
    u1 = n1 * H + min(H, max(0, (t1 - 1 - n1 * Ho) * sh - pt + kh))
    for u in range(u0, u1):
        n = u // H
        h = u - n * H
        for i in range(kh):
            num = h + pt - i
            if num < 0 or num % sh != 0:
                continue
            oh = num // sh
            t = n * Ho + oh
            if oh >= Ho or t < t0 or t >= t1:
                continue
            for ow in range(Wo):
                w0 = ow * sw - pl
                jlo = max(0, -w0)
                jhi = max(jlo, min(kw, W - w0))
                s = ((t - t0) * Wo + ow) * K + (i * kw + jlo) * C
                d = (u * W + w0 + jlo) * C
                gf[d:d + (jhi - jlo) * C] += cf[s:s + (jhi - jlo) * C]
    return gx
