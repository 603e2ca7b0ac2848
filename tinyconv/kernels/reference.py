"""The plain-loop convolution and pooling: obviously right, slow, and the yardstick for the fast kernels.

The same functions and arguments as tinyconv.kernels (conv.py, pool.py): x (N, H, W, C), w (kh, kw, C, O),
stride (sh, sw), padding ((top, bottom), (left, right)). Each one pads the input, then loops over the output
pixels; the window of output pixel (oh, ow) is rows oh*sh .. oh*sh + kh - 1 and columns ow*sw .. ow*sw + kw - 1
of the padded image. Read these first; tests/test_kernels.py checks the fast kernels against them on thousands
of generated shapes. Outputs follow the input's dtype.
"""
import numpy as np

from tinyconv.kernels import geometry


def _windows(name, x_shape, window_hw, stride, padding, pool=False):
    """(oh, ow, rows, cols) of every output pixel, with rows/cols slices into the padded image."""
    (sh, sw), _, (Ho, Wo) = geometry.window(name, x_shape, window_hw, stride, padding, pool)
    kh, kw = window_hw
    for oh in range(Ho):
        for ow in range(Wo):
            yield oh, ow, slice(oh * sh, oh * sh + kh), slice(ow * sw, ow * sw + kw)


def _pad(x, padding, value=0.0):
    return np.pad(x, ((0, 0), *padding, (0, 0)), constant_values=value)


def _crop(xp, padding, H, W):
    (pt, _), (pl, _) = padding
    return xp[:, pt:pt + H, pl:pl + W]


def conv2d_forward(x, w, stride, padding):
    """y[n, oh, ow, o] = sum over the window (i, j, c) of x_padded[n, oh*sh + i, ow*sw + j, c] * w[i, j, c, o]."""
    Ho, Wo = geometry.conv_window(x.shape, w.shape, stride, padding)[2]
    xp = _pad(x, padding)
    y = np.zeros((x.shape[0], Ho, Wo, w.shape[3]), x.dtype)
    for oh, ow, rows, cols in _windows("conv2d", x.shape, w.shape[:2], stride, padding):
        y[:, oh, ow] = np.tensordot(xp[:, rows, cols], w, axes=([1, 2, 3], [0, 1, 2]))
    return y


def conv2d_grad_input(gy, w, x_shape, stride, padding):
    """gx: every output pixel sends gy[n, oh, ow, :] back through the kernel onto the cells of its window."""
    geometry.conv_window(x_shape, w.shape, stride, padding)
    gxp = _pad(np.zeros(x_shape, gy.dtype), padding)
    for oh, ow, rows, cols in _windows("conv2d", x_shape, w.shape[:2], stride, padding):
        gxp[:, rows, cols] += np.tensordot(gy[:, oh, ow], w, axes=([1], [3]))
    return _crop(gxp, padding, *x_shape[1:3])


def conv2d_grad_weight(x, gy, w_shape, stride, padding):
    """gw[i, j, c, o] = sum over images and output pixels of the window's x[.., i, j, c] times gy[.., o]."""
    geometry.conv_window(x.shape, w_shape, stride, padding)
    xp = _pad(x, padding)
    gw = np.zeros(w_shape, x.dtype)
    for oh, ow, rows, cols in _windows("conv2d", x.shape, w_shape[:2], stride, padding):
        gw += np.tensordot(xp[:, rows, cols], gy[:, oh, ow], axes=([0], [0]))
    return gw


def max_pool2d_forward(x, size, stride, padding):
    """(y, argmax): the max of each window (padding is -inf), and where it is, as h*W + w of the unpadded image.

    np.argmax picks the first maximum in row-major window order: that cell gets the gradient.
    """
    Ho, Wo = geometry.window("max_pool2d", x.shape, size, stride, padding, pool=True)[2]
    N, H, W, C = x.shape
    (pt, _), (pl, _) = padding
    xp = _pad(x, padding, -np.inf)
    y, arg = np.zeros((N, Ho, Wo, C), x.dtype), np.zeros((N, Ho, Wo, C), np.int32)
    for oh, ow, rows, cols in _windows("max_pool2d", x.shape, size, stride, padding, pool=True):
        win = xp[:, rows, cols].reshape(N, -1, C)
        k = win.argmax(axis=1)
        y[:, oh, ow] = win.max(axis=1)
        arg[:, oh, ow] = (rows.start + k // size[1] - pt) * W + cols.start + k % size[1] - pl
    return y, arg


def max_pool2d_backward(gy, argmax, x_shape):
    """gx: each gy[n, oh, ow, c] is added to the cell argmax[n, oh, ow, c] names."""
    gx = np.zeros(x_shape, gy.dtype)
    for n, oh, ow, c in np.ndindex(gy.shape):
        h, w = divmod(int(argmax[n, oh, ow, c]), x_shape[2])
        gx[n, h, w, c] += gy[n, oh, ow, c]
    return gx


def avg_pool2d_forward(x, size, stride, padding):
    """The mean of the real (not padding) cells of each window."""
    Ho, Wo = geometry.window("avg_pool2d", x.shape, size, stride, padding, pool=True)[2]
    N, H, W, C = x.shape
    xp, real = _pad(x, padding), _pad(np.ones((1, H, W, 1), x.dtype), padding)
    y = np.zeros((N, Ho, Wo, C), x.dtype)
    for oh, ow, rows, cols in _windows("avg_pool2d", x.shape, size, stride, padding, pool=True):
        y[:, oh, ow] = xp[:, rows, cols].sum(axis=(1, 2)) / real[:, rows, cols].sum()
    return y


def avg_pool2d_backward(gy, x_shape, size, stride, padding):
    """gx: each gy[n, oh, ow, c] shared equally among the real cells of its window."""
    N, H, W, C = x_shape
    gxp, real = _pad(np.zeros(x_shape, gy.dtype), padding), _pad(np.ones((1, H, W, 1), gy.dtype), padding)
    for oh, ow, rows, cols in _windows("avg_pool2d", x_shape, size, stride, padding, pool=True):
        gxp[:, rows, cols] += real[:, rows, cols] * (gy[:, oh, ow] / real[:, rows, cols].sum())[:, None, None, :]
    return _crop(gxp, padding, H, W)
