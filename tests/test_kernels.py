"""tinyconv.kernels against plain NumPy references written out below (explicit loops over output pixels).

Geometry (batch, image size, channels, kernel size, strides, asymmetric paddings) is drawn by hypothesis; the
convolution kernels are also run with tiny column tiles so the tiling code is exercised on small shapes.
"""
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyconv import kernels
from tinyconv.kernels import conv

SETTINGS = settings(max_examples=40, deadline=None)


# ---------------------------------------------------------------- references (float64, obviously right, slow)

def out_size(H, W, kh, kw, stride, padding):
    (sh, sw), ((pt, pb), (pl, pr)) = stride, padding
    return (H + pt + pb - kh) // sh + 1, (W + pl + pr - kw) // sw + 1


def windows(H, W, kh, kw, stride, padding):
    """(oh, ow, rows slice, cols slice) of every window, in the padded image's coordinates."""
    Ho, Wo = out_size(H, W, kh, kw, stride, padding)
    for oh in range(Ho):
        for ow in range(Wo):
            yield oh, ow, slice(oh * stride[0], oh * stride[0] + kh), slice(ow * stride[1], ow * stride[1] + kw)


def pad(x, padding, value=0.0):
    return np.pad(x, ((0, 0), *padding, (0, 0)), constant_values=value)


def crop(xp, padding, H, W):
    (pt, _), (pl, _) = padding
    return xp[:, pt:pt + H, pl:pl + W]


def ref_conv(x, w, stride, padding):
    N, H, W, C = x.shape
    kh, kw, _, O = w.shape
    xp = pad(x, padding)
    y = np.zeros((N, *out_size(H, W, kh, kw, stride, padding), O))
    for oh, ow, rs, cs in windows(H, W, kh, kw, stride, padding):
        y[:, oh, ow] = np.tensordot(xp[:, rs, cs], w, axes=([1, 2, 3], [0, 1, 2]))
    return y


def ref_conv_grad_input(gy, w, x_shape, stride, padding):
    N, H, W, C = x_shape
    kh, kw, _, O = w.shape
    gxp = pad(np.zeros(x_shape), padding)
    for oh, ow, rs, cs in windows(H, W, kh, kw, stride, padding):
        gxp[:, rs, cs] += np.tensordot(gy[:, oh, ow], w, axes=([1], [3]))
    return crop(gxp, padding, H, W)


def ref_conv_grad_weight(x, gy, w_shape, stride, padding):
    N, H, W, C = x.shape
    kh, kw, _, O = w_shape
    xp = pad(x, padding)
    gw = np.zeros(w_shape)
    for oh, ow, rs, cs in windows(H, W, kh, kw, stride, padding):
        gw += np.tensordot(xp[:, rs, cs], gy[:, oh, ow], axes=([0], [0]))
    return gw


def ref_max_pool(x, size, stride, padding):
    """(y, argmax as h*W + w of the unpadded image); np.argmax picks the first maximum in row-major order."""
    N, H, W, C = x.shape
    (pt, _), (pl, _) = padding
    xp = pad(x, padding, -np.inf)
    Ho, Wo = out_size(H, W, *size, stride, padding)
    y, arg = np.zeros((N, Ho, Wo, C)), np.zeros((N, Ho, Wo, C), int)
    for oh, ow, rs, cs in windows(H, W, *size, stride, padding):
        win = xp[:, rs, cs].reshape(N, -1, C)
        k = win.argmax(axis=1)
        y[:, oh, ow] = win.max(axis=1)
        h, w = rs.start + k // size[1] - pt, cs.start + k % size[1] - pl
        arg[:, oh, ow] = h * W + w
    return y, arg


def ref_max_pool_backward(gy, arg, x_shape):
    N, H, W, C = x_shape
    gx = np.zeros(x_shape)
    for n, oh, ow, c in np.ndindex(gy.shape):
        h, w = divmod(arg[n, oh, ow, c], W)
        gx[n, h, w, c] += gy[n, oh, ow, c]
    return gx


def ref_avg_pool(x, size, stride, padding):
    N, H, W, C = x.shape
    xp, real = pad(x, padding), pad(np.ones((1, H, W, 1)), padding)
    y = np.zeros((N, *out_size(H, W, *size, stride, padding), C))
    for oh, ow, rs, cs in windows(H, W, *size, stride, padding):
        y[:, oh, ow] = xp[:, rs, cs].sum(axis=(1, 2)) / real[:, rs, cs].sum()
    return y


def ref_avg_pool_backward(gy, x_shape, size, stride, padding):
    N, H, W, C = x_shape
    gxp, real = pad(np.zeros(x_shape), padding), pad(np.ones((1, H, W, 1)), padding)
    for oh, ow, rs, cs in windows(H, W, *size, stride, padding):
        gxp[:, rs, cs] += real[:, rs, cs] * (gy[:, oh, ow] / real[:, rs, cs].sum())[:, None, None, :]
    return crop(gxp, padding, H, W)


# ---------------------------------------------------------------- generated geometry

@st.composite
def conv_cases(draw):
    """(x shape, w shape, stride, padding, tile bytes) with a non-empty output."""
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(2))
    # image may be smaller than the kernel as long as the padding makes the window fit
    H = draw(st.integers(max(1, kh - sum(padding[0])), 8))
    W = draw(st.integers(max(1, kw - sum(padding[1])), 8))
    N, C, O = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    tile_bytes = draw(st.sampled_from([1, 300, conv.TILE_BYTES]))
    return (N, H, W, C), (kh, kw, C, O), stride, padding, tile_bytes


@st.composite
def pool_cases(draw):
    """(x shape, size, stride, padding) with every window touching the image (padding < window size)."""
    size = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple((draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))) for k in size)
    H = draw(st.integers(max(1, size[0] - sum(padding[0])), 8))
    W = draw(st.integers(max(1, size[1] - sum(padding[1])), 8))
    return (draw(st.integers(1, 3)), H, W, draw(st.integers(1, 20))), size, stride, padding


@contextmanager
def tile_bytes(n):
    """Temporarily set the column-tile size of the convolution kernels (1 = one output row per tile)."""
    saved = conv.TILE_BYTES, conv.MIN_TILE_PIXELS
    conv.TILE_BYTES, conv.MIN_TILE_PIXELS = n, 1
    try:
        yield
    finally:
        conv.TILE_BYTES, conv.MIN_TILE_PIXELS = saved


def random(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- convolution

@SETTINGS
@given(conv_cases())
def test_conv2d_forward_matches_reference(case):
    x_shape, w_shape, stride, padding, tb = case
    x, w = random(x_shape, seed=1), random(w_shape, seed=2)
    with tile_bytes(tb):
        y = kernels.conv2d_forward(x, w, stride, padding)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, ref_conv(x, w, stride, padding), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(conv_cases())
def test_conv2d_grad_input_matches_reference_and_is_the_adjoint(case):
    x_shape, w_shape, stride, padding, tb = case
    x, w = random(x_shape, seed=1), random(w_shape, seed=2)
    with tile_bytes(tb):
        y = kernels.conv2d_forward(x, w, stride, padding)
        gy = random(y.shape, seed=3)
        gx = kernels.conv2d_grad_input(gy, w, x_shape, stride, padding)
    assert gx.shape == x_shape
    np.testing.assert_allclose(gx, ref_conv_grad_input(gy, w, x_shape, stride, padding), rtol=1e-12, atol=1e-12)
    # <conv(x), gy> = <x, grad_input(gy)>
    np.testing.assert_allclose(np.vdot(y, gy), np.vdot(x, gx), rtol=1e-10, atol=1e-10)


@SETTINGS
@given(conv_cases())
def test_conv2d_grad_weight_matches_reference_and_is_the_adjoint(case):
    x_shape, w_shape, stride, padding, tb = case
    x, w = random(x_shape, seed=1), random(w_shape, seed=2)
    with tile_bytes(tb):
        y = kernels.conv2d_forward(x, w, stride, padding)
        gy = random(y.shape, seed=3)
        gw = kernels.conv2d_grad_weight(x, gy, w_shape, stride, padding)
    assert gw.shape == w_shape
    np.testing.assert_allclose(gw, ref_conv_grad_weight(x, gy, w_shape, stride, padding), rtol=1e-12, atol=1e-12)
    # conv is linear in w too: <conv(x, w), gy> = <w, grad_weight(x, gy)>
    np.testing.assert_allclose(np.vdot(y, gy), np.vdot(w, gw), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kh, kw, stride, padding", [
    (1, 1, (1, 1), ((0, 0), (0, 0))),     # pointwise: a plain matrix product
    (1, 1, (2, 2), ((0, 0), (0, 0))),
    (3, 3, (1, 1), ((1, 1), (1, 1))),
    (3, 3, (2, 2), ((0, 1), (0, 1))),     # TensorFlow 'same' with stride 2 on an even size
    (1, 7, (1, 1), ((0, 0), (3, 3))),
    (7, 1, (1, 1), ((3, 3), (0, 0))),
    (5, 5, (1, 1), ((2, 2), (2, 2))),
])
def test_conv2d_float32_named_shapes(kh, kw, stride, padding):
    """float32 in, float32 out, within float32 rounding of the float64 reference, on the shapes the models use."""
    x64, w64 = random((2, 9, 10, 24), seed=4), random((kh, kw, 24, 16), seed=5)
    x, w = x64.astype(np.float32), w64.astype(np.float32)
    with tile_bytes(2000):
        y = kernels.conv2d_forward(x, w, stride, padding)
        gy64 = random(y.shape, seed=6)
        gx = kernels.conv2d_grad_input(gy64.astype(np.float32), w, x.shape, stride, padding)
        gw = kernels.conv2d_grad_weight(x, gy64.astype(np.float32), w.shape, stride, padding)
    assert y.dtype == gx.dtype == gw.dtype == np.float32
    tol = dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, ref_conv(x64, w64, stride, padding), **tol)
    np.testing.assert_allclose(gx, ref_conv_grad_input(gy64, w64, x.shape, stride, padding), **tol)
    np.testing.assert_allclose(gw, ref_conv_grad_weight(x64, gy64, w.shape, stride, padding), **tol)


def test_conv2d_output_dtype_follows_input():
    x, w = random((1, 4, 4, 2), np.float32), random((3, 3, 2, 3))
    y = kernels.conv2d_forward(x, w, (1, 1), ((1, 1), (1, 1)))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref_conv(x.astype(np.float64), w, (1, 1), ((1, 1), (1, 1))), rtol=1e-4, atol=1e-4)


def test_conv2d_bad_shapes_raise_clear_errors():
    x = np.zeros((1, 4, 4, 3))
    with pytest.raises(ValueError, match="3 channels .* expects 2"):
        kernels.conv2d_forward(x, np.zeros((3, 3, 2, 5)), (1, 1), ((0, 0), (0, 0)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        kernels.conv2d_forward(x, np.zeros((5, 5, 3, 5)), (1, 1), ((0, 0), (0, 0)))
    with pytest.raises(ValueError, match="output gradient has shape"):
        kernels.conv2d_grad_input(np.zeros((1, 3, 3, 5)), np.zeros((3, 3, 3, 5)), x.shape, (1, 1), ((0, 0), (0, 0)))


# ---------------------------------------------------------------- pooling

@SETTINGS
@given(pool_cases())
def test_max_pool2d_forward_and_backward_match_reference(case):
    x_shape, size, stride, padding = case
    x = random(x_shape, seed=7)
    y, arg = kernels.max_pool2d_forward(x, size, stride, padding)
    ref_y, ref_arg = ref_max_pool(x, size, stride, padding)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(arg, ref_arg)
    gy = random(y.shape, seed=8)
    gx = kernels.max_pool2d_backward(gy, arg, x_shape)
    assert gx.shape == x_shape
    np.testing.assert_allclose(gx, ref_max_pool_backward(gy, ref_arg, x_shape), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(pool_cases())
def test_avg_pool2d_forward_and_backward_match_reference(case):
    x_shape, size, stride, padding = case
    x = random(x_shape, seed=9)
    y = kernels.avg_pool2d_forward(x, size, stride, padding)
    np.testing.assert_allclose(y, ref_avg_pool(x, size, stride, padding), rtol=1e-12, atol=1e-12)
    gy = random(y.shape, seed=10)
    gx = kernels.avg_pool2d_backward(gy, x_shape, size, stride, padding)
    np.testing.assert_allclose(gx, ref_avg_pool_backward(gy, x_shape, size, stride, padding), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.vdot(y, gy), np.vdot(x, gx), rtol=1e-10, atol=1e-10)


def test_max_pool2d_tie_goes_to_first_cell_in_row_major_order():
    x = np.zeros((1, 2, 3, 2), np.float32)
    x[0, 0, 2, 0] = x[0, 1, 0, 0] = x[0, 1, 2, 0] = 5.0     # channel 0: three equal maxima, first is (0, 2)
    # channel 1: all zeros, so the first cell (0, 0) wins
    y, arg = kernels.max_pool2d_forward(x, (2, 3), (1, 1), ((0, 0), (0, 0)))
    assert y.shape == (1, 1, 1, 2) and y[0, 0, 0].tolist() == [5.0, 0.0]
    assert arg[0, 0, 0].tolist() == [0 * 3 + 2, 0]
    gx = kernels.max_pool2d_backward(np.ones_like(y), arg, x.shape)
    expected = np.zeros_like(x)
    expected[0, 0, 2, 0] = expected[0, 0, 0, 1] = 1.0
    np.testing.assert_array_equal(gx, expected)


def test_max_pool2d_padding_is_never_chosen_and_overlaps_accumulate():
    x = -np.arange(1, 10, dtype=np.float64).reshape(1, 3, 3, 1) * 10     # all negative: padding 0 would win
    y, arg = kernels.max_pool2d_forward(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
    assert y.max() < 0
    np.testing.assert_array_equal(y[0, :, :, 0], [[-10, -10, -20], [-10, -10, -20], [-40, -40, -50]])
    gx = kernels.max_pool2d_backward(np.ones_like(y), arg, x.shape)
    assert gx[0, 0, 0, 0] == 4 and gx.sum() == 9      # four overlapping windows chose the cell (0, 0)


def test_avg_pool2d_does_not_count_padding():
    x = np.ones((1, 2, 2, 1))
    y = kernels.avg_pool2d_forward(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
    np.testing.assert_array_equal(y, np.ones((1, 2, 2, 1)))   # zero padding counted would give 4/9


def test_pool_float32_keeps_dtype():
    x = random((2, 7, 7, 33), np.float32)
    y, arg = kernels.max_pool2d_forward(x, (3, 3), (2, 2), ((0, 0), (0, 0)))
    a = kernels.avg_pool2d_forward(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
    assert y.dtype == a.dtype == np.float32 and arg.dtype == np.int32
    x64 = x.astype(np.float64)
    np.testing.assert_array_equal(y, ref_max_pool(x64, (3, 3), (2, 2), ((0, 0), (0, 0)))[0])
    np.testing.assert_allclose(a, ref_avg_pool(x64, (3, 3), (2, 2), ((1, 1), (1, 1))), rtol=1e-5, atol=1e-6)
    gx = kernels.avg_pool2d_backward(a, x.shape, (3, 3), (2, 2), ((1, 1), (1, 1)))
    assert gx.dtype == np.float32


# ---------------------------------------------------------------- compile cache

def test_numba_cache_is_reused_by_a_new_process():
    """A second interpreter loads every kernel from Numba's on-disk cache instead of compiling it again."""
    script = (
        "import numpy as np\n"
        "from tinyconv import kernels\n"
        "from tinyconv.kernels import conv, im2col, pool\n"
        "x = np.ones((1, 6, 6, 4), np.float32); w = np.ones((3, 3, 4, 2), np.float32)\n"
        "s, p = (2, 2), ((1, 1), (1, 1))\n"
        "kernels.conv2d_grad_input(kernels.conv2d_forward(x, w, s, p), w, x.shape, s, p)\n"
        "kernels.conv2d_forward(x[..., :3].copy(), w[:, :, :3].copy(), s, p)  # few inputs per window: direct\n"
        "y, arg = kernels.max_pool2d_forward(x, (2, 2), s, p)\n"
        "kernels.max_pool2d_backward(y, arg, x.shape)\n"
        "kernels.avg_pool2d_backward(kernels.avg_pool2d_forward(x, (2, 2), s, p), x.shape, (2, 2), s, p)\n"
        "fns = [im2col.im2col, im2col.col2im_add, conv._direct_forward, pool._max_forward, pool._max_backward,\n"
        "       pool._avg_forward, pool._avg_backward]\n"
        "count = lambda stat: sum(sum(getattr(f.stats, stat).values()) for f in fns)\n"
        "print(count('cache_hits'), count('cache_misses'))\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    for _ in range(2):      # the first run fills the cache if this checkout has none yet
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root)
    hits, misses = map(int, out.stdout.split())
    assert (hits, misses) == (7, 0)
