"""tinyconv.kernels against the plain-loop references of tinyconv/kernels/reference.py (obviously right, slow).

Geometry (batch, image size, channels, kernel size, strides, asymmetric paddings) is drawn by hypothesis; the
convolution kernels are also run with tiny column tiles so the tiling code is exercised on small shapes.
"""
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyconv import functional as F
from tinyconv import kernels
from tinyconv.kernels import activation, conv, dot, reference, winograd

ref_conv, ref_conv_grad_input, ref_conv_grad_weight = (reference.conv2d_forward, reference.conv2d_grad_input,
                                                       reference.conv2d_grad_weight)
ref_max_pool, ref_max_pool_backward = reference.max_pool2d_forward, reference.max_pool2d_backward
ref_avg_pool, ref_avg_pool_backward = reference.avg_pool2d_forward, reference.avg_pool2d_backward

SETTINGS = settings(max_examples=40, deadline=None)


# ---------------------------------------------------------------- generated geometry

@st.composite
def conv_cases(draw):
    """(x shape, w shape, stride, padding, tile bytes) with a non-empty output; often a 1-D kernel at stride 1
    (the path over views of the padded input)."""
    kh, kw = draw(st.one_of(st.tuples(st.integers(1, 5), st.integers(1, 5)),
                            st.sampled_from([(1, 3), (3, 1), (1, 7), (7, 1)])))
    stride = draw(st.one_of(st.just((1, 1)), st.tuples(st.integers(1, 3), st.integers(1, 3))))
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
def tile_bytes(n, rows=True):
    """Temporarily set the column-tile size of the convolution kernels (1 = one output row per tile); `rows`
    sends every stride-1 kernel gradient to the 1 x kw column path (`_rows_grad_weight`), else none."""
    saved = conv.TILE_BYTES, conv.MIN_TILE_PIXELS, conv.ROW_TILE_BYTES, conv.ROW_MIN_PIXELS
    conv.TILE_BYTES, conv.MIN_TILE_PIXELS, conv.ROW_TILE_BYTES = n, 1, n
    conv.ROW_MIN_PIXELS = 0 if rows else 1 << 62
    try:
        yield
    finally:
        conv.TILE_BYTES, conv.MIN_TILE_PIXELS, conv.ROW_TILE_BYTES, conv.ROW_MIN_PIXELS = saved


@contextmanager
def direct_kernel(channels, tile_bytes=None):
    """Temporarily route stride-1 forward passes with at most `channels` input channels to the direct kernel (0:
    none), in pieces of rows of about tile_bytes of output (1: the smallest pieces, 8 pixels)."""
    saved = conv.DIRECT_MAX_C, conv.DIRECT_TILE_BYTES
    conv.DIRECT_MAX_C, conv.DIRECT_TILE_BYTES = channels, tile_bytes or saved[1]
    try:
        yield
    finally:
        conv.DIRECT_MAX_C, conv.DIRECT_TILE_BYTES = saved


def random(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- convolution

@SETTINGS
@given(conv_cases(), st.booleans())
def test_conv2d_forward_matches_reference(case, direct):
    x_shape, w_shape, stride, padding, tb = case
    x, w = random(x_shape, seed=1), random(w_shape, seed=2)
    with tile_bytes(tb), direct_kernel(conv.DIRECT_MAX_C if direct else 0):
        y = kernels.conv2d_forward(x, w, stride, padding)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, ref_conv(x, w, stride, padding), rtol=1e-12, atol=1e-12)


@st.composite
def batch_cases(draw):
    """(x shape, w shape, stride, padding, tile bytes, path) for the alone-or-in-a-batch check: 2-4 images, up to
    48 channels, every forward path but the 1-D kernels' and the direct kernel's."""
    kh, kw = draw(st.tuples(st.integers(1, 4), st.integers(1, 4)).filter(lambda k: min(k) > 1 or k == (1, 1)))
    stride = draw(st.one_of(st.just((1, 1)), st.tuples(st.integers(1, 2), st.integers(1, 2))))
    padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
    H, W = draw(st.integers(max(4, kh), 14)), draw(st.integers(max(4, kw), 14))
    C, O = draw(st.integers(conv.DIRECT_MAX_C + 1, 48)), draw(st.integers(1, 48))
    path = draw(st.sampled_from(["im2col", "winograd2", "winograd4", "winograd4_rows"]
                                if (kh, kw, stride) == (3, 3, (1, 1)) else ["im2col"]))
    tile = draw(st.sampled_from([1, 3000, conv.TILE_BYTES]))
    return (draw(st.integers(2, 4)), H, W, C), (kh, kw, C, O), stride, padding, tile, path


@SETTINGS
@given(batch_cases())
def test_an_image_gets_the_same_bits_alone_and_in_a_batch(case):
    """Products never span images of IMAGE_MIN_ROWS output pixels or more (here: every image), so an image's
    float32 output does not depend on the batch it is in, on any path and in tiles of any size."""
    x_shape, w_shape, stride, padding, tb, path = case
    x, w = random(x_shape, np.float32, seed=1), random(w_shape, np.float32, seed=2)
    forward = F.CONV_PATHS[path][0]
    with patch.object(conv, "IMAGE_MIN_ROWS", 0), patch.object(winograd, "CHUNK_BYTES", tb), tile_bytes(tb):
        batch = forward(x, w, stride, padding)
        for i in range(x_shape[0]):
            np.testing.assert_array_equal(forward(x[i:i + 1], w, stride, padding)[0], batch[i])


@st.composite
def direct_cases(draw):
    """(x shape, w shape, stride, padding, dtype, tile bytes) for the direct kernel: stride 1 to 3, up to 20 input
    channels, any padding, rows from 1 to 40 pixels wide, cut in pieces of 8 pixels or more."""
    kh, kw = draw(st.one_of(st.tuples(st.integers(2, 5), st.integers(2, 5)), st.just((1, 1))))
    stride = draw(st.one_of(st.just((1, 1)), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(2))
    H = draw(st.integers(max(1, kh - sum(padding[0])), 8))
    W = draw(st.integers(max(1, kw - sum(padding[1])), 40))
    C, O = draw(st.integers(1, 20)), draw(st.integers(1, 12))
    return ((draw(st.integers(1, 3)), H, W, C), (kh, kw, C, O), stride, padding,
            draw(st.sampled_from([np.float32, np.float64])), draw(st.sampled_from([1, 200, conv.DIRECT_TILE_BYTES])))


@SETTINGS
@given(direct_cases())
def test_direct_forward_matches_reference(case):
    """The channel-planar direct kernel in float64 and float32 against the float64 reference."""
    x_shape, w_shape, stride, padding, dtype, tb = case
    x64, w64 = random(x_shape, seed=1), random(w_shape, seed=2)
    with direct_kernel(20, tb):
        y = kernels.conv2d_forward(x64.astype(dtype), w64.astype(dtype), stride, padding)
    assert y.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(y, ref_conv(x64, w64, stride, padding), rtol=tol, atol=tol)


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
@given(conv_cases(), st.booleans())
def test_conv2d_grad_weight_matches_reference_and_is_the_adjoint(case, rows):
    """Both stride-1 paths: im2col and the 1 x kw columns of `_rows_grad_weight`, in tiles of 1 row and more."""
    x_shape, w_shape, stride, padding, tb = case
    x, w = random(x_shape, seed=1), random(w_shape, seed=2)
    with tile_bytes(tb, rows):
        y = kernels.conv2d_forward(x, w, stride, padding)
        gy = random(y.shape, seed=3)
        gw = kernels.conv2d_grad_weight(x, gy, w_shape, stride, padding)
    assert gw.shape == w_shape
    np.testing.assert_allclose(gw, ref_conv_grad_weight(x, gy, w_shape, stride, padding), rtol=1e-12, atol=1e-12)
    # conv is linear in w too: <conv(x, w), gy> = <w, grad_weight(x, gy)>
    np.testing.assert_allclose(np.vdot(y, gy), np.vdot(w, gw), rtol=1e-10, atol=1e-10)


@st.composite
def line_cases(draw):
    """(x shape, w shape, padding) of a 1-D kernel (1 x k or k x 1, k 2..7) at stride 1: padding along the kernel
    from none to more than the kernel (output columns that see only padding), across it up to 2 (output rows that
    see only padding), images narrower than the kernel, batch 1 to 3."""
    k, tall = draw(st.integers(2, 7)), draw(st.booleans())
    along = (draw(st.integers(0, k)), draw(st.integers(0, k)))
    across = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    length, width = draw(st.integers(max(1, k - sum(along)), 9)), draw(st.integers(1, 5))
    N, C, O = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 5))
    if tall:
        return (N, length, width, C), (k, 1, C, O), (along, across)
    return (N, width, length, C), (1, k, C, O), (across, along)


@SETTINGS
@given(line_cases())
def test_line_kernels_match_reference(case):
    """The 1-D kernels' forward pass, input gradient (a forward convolution) and kernel gradient, float64."""
    x_shape, w_shape, padding = case
    x, w = random(x_shape, seed=1), random(w_shape, seed=2)
    y = kernels.conv2d_forward(x, w, (1, 1), padding)
    np.testing.assert_allclose(y, ref_conv(x, w, (1, 1), padding), rtol=1e-12, atol=1e-12)
    gy = random(y.shape, seed=3)
    gx = kernels.conv2d_grad_input(gy, w, x_shape, (1, 1), padding)
    np.testing.assert_allclose(gx, ref_conv_grad_input(gy, w, x_shape, (1, 1), padding), rtol=1e-12, atol=1e-12)
    gw = kernels.conv2d_grad_weight(x, gy, w_shape, (1, 1), padding)
    np.testing.assert_allclose(gw, ref_conv_grad_weight(x, gy, w_shape, (1, 1), padding), rtol=1e-12, atol=1e-12)


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


@pytest.mark.parametrize("kh, kw", [(1, 3), (3, 1)])
def test_line_kernels_in_a_dtype_blas_lacks(kh, kw):
    """The 1-D kernels' products write into views of the output (and of a work buffer); a float16 input, which has
    no BLAS routine, still gets every output value."""
    x64, w64 = random((2, 5, 6, 3), seed=7), random((kh, kw, 3, 4), seed=8)
    padding = ((kh // 2, kh // 2), (kw // 2, kw // 2))
    y = kernels.conv2d_forward(x64.astype(np.float16), w64.astype(np.float16), (1, 1), padding)
    assert y.dtype == np.float16
    np.testing.assert_allclose(y, ref_conv(x64, w64, (1, 1), padding), rtol=1e-2, atol=2e-2)


def test_conv2d_output_dtype_follows_input():
    x, w = random((1, 4, 4, 2), np.float32), random((3, 3, 2, 3))
    y = kernels.conv2d_forward(x, w, (1, 1), ((1, 1), (1, 1)))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref_conv(x.astype(np.float64), w, (1, 1), ((1, 1), (1, 1))), rtol=1e-4, atol=1e-4)


def test_conv2d_bad_shapes_raise_clear_errors():
    x = np.zeros((1, 4, 4, 3))
    with pytest.raises(ValueError, match="3 channels .* expects 2"):
        kernels.conv2d_forward(x, np.zeros((3, 3, 2, 5)), (1, 1), ((0, 0), (0, 0)))
    with pytest.raises(ValueError, match="does not fit"):
        kernels.conv2d_forward(x, np.zeros((5, 5, 3, 5)), (1, 1), ((0, 0), (0, 0)))
    with pytest.raises(ValueError, match="output gradient has shape"):
        kernels.conv2d_grad_input(np.zeros((1, 3, 3, 5)), np.zeros((3, 3, 3, 5)), x.shape, (1, 1), ((0, 0), (0, 0)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (7, 1152, 256), (20, 576, 128), (3, 5, 2), (300, 100, 100)])
def test_dot_matches_numpy_on_one_thread_or_blas(m, k, n, dtype):
    """kernels.dot gives the product by either path: the one-thread loop (every shape here is below the shipped
    SMALL_PRODUCT) and np.dot (threshold 1), with and without `out`."""
    a, b = random((m, k), dtype, seed=11), random((k, n), dtype, seed=12)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for threshold in (dot.SMALL_PRODUCT, 1):          # 1: every product goes to np.dot
        saved, dot.SMALL_PRODUCT = dot.SMALL_PRODUCT, threshold
        try:
            y = dot.dot(a, b)
            out = np.full((m, n), np.nan, dtype)
            assert dot.dot(a, b, out=out) is out
        finally:
            dot.SMALL_PRODUCT = saved
        assert y.dtype == dtype
        np.testing.assert_allclose(y, expected, **tol)
        np.testing.assert_allclose(out, expected, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (3, 7, 15), (4, 1, 16), (130, 256, 32), (700, 32, 64), (37, 50, 40)])
def test_register_blocked_products_give_each_row_the_same_bits_alone(m, k, n, dtype):
    """dot.matmul_block (one thread) and dot.matmul (rows in parallel) agree with float64 and with each other to
    the bit, and a row multiplied alone (no block at all) gets the same bits as inside the blocks."""
    a, b = random((m, k), dtype, seed=13), random((k, n), dtype, seed=14)
    blocked = dot.matmul_block(a, b, np.full((m, n), np.nan, dtype))
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(blocked, a.astype(np.float64) @ b.astype(np.float64), **tol)
    np.testing.assert_array_equal(dot.matmul(a, b, np.full((m, n), np.nan, dtype)), blocked)
    for i in {0, m // 2, m - 1}:
        np.testing.assert_array_equal(dot.matmul_block(a[i:i + 1], b, np.empty((1, n), dtype))[0], blocked[i])


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
    values, no_arg = kernels.max_pool2d_forward(x, size, stride, padding, argmax=False)   # inference: no argmax
    assert no_arg is None
    np.testing.assert_array_equal(values, ref_y)
    gy = random(y.shape, seed=8)
    expected = ref_max_pool_backward(gy, ref_arg, x_shape)
    gx = kernels.max_pool2d_backward(gy, arg, x_shape)
    assert gx.shape == x_shape
    np.testing.assert_allclose(gx, expected, rtol=1e-12, atol=1e-12)
    # with the geometry: the gather kernel where windows do not overlap, the scatter otherwise
    gx = kernels.max_pool2d_backward(gy, arg, x_shape, size, stride, padding)
    np.testing.assert_allclose(gx, expected, rtol=1e-12, atol=1e-12)


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
    y, arg = kernels.max_pool2d_forward(x, (2, 2), (2, 2), ((0, 1), (1, 0)))     # the gather of tiled windows
    gx = kernels.max_pool2d_backward(y, arg, x.shape, (2, 2), (2, 2), ((0, 1), (1, 0)))
    assert gx.dtype == np.float32
    np.testing.assert_array_equal(gx, ref_max_pool_backward(y.astype(np.float64), arg, x.shape))


# ---------------------------------------------------------------- activation

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 50, 7), (1, 10), (2, 0, 5)])
def test_prelu_forward_with_bias_in_pieces(shape, dtype):
    """prelu(x + bias) in flat pieces of PIECE_PIXELS pixels: several whole pieces and a partial one, or none."""
    x, slope, bias = (random(s, dtype, seed) for s, seed in ((shape, 1), (shape[-1:], 2), (shape[-1:], 3)))
    z = x + bias
    y = kernels.prelu_forward(x, slope, bias)
    assert y.dtype == dtype and y.shape == shape
    np.testing.assert_array_equal(y, np.where(z > 0, z, z * slope))


@pytest.mark.parametrize("rows", [3, activation.PARALLEL_MIN // 7 + 5])  # on the calling thread / in pieces
def test_scale_shift_relu_and_add_relu_on_both_paths(rows):
    """The one-pass epilogues: max(y * scale + shift, 0) in place, and max(x + s * (y + bias), 0)."""
    y, x, scale, shift = (random(s, np.float32, seed) for s, seed in (((rows, 7), 1), ((rows, 7), 2), ((7,), 3),
                                                                      ((7,), 4)))
    expected = np.maximum(y * scale + shift, 0)
    out = activation.add_relu(x, y, np.float32(0.5), shift, np.empty_like(x))
    np.testing.assert_array_equal(out, np.maximum(x + np.float32(0.5) * (y + shift), 0))
    assert activation.scale_shift_relu(y, scale, shift) is y
    np.testing.assert_array_equal(y, expected)


# ---------------------------------------------------------------- compile cache

def test_numba_cache_is_reused_by_a_new_process():
    """A second interpreter loads every kernel from Numba's on-disk cache instead of compiling it again."""
    script = (
        "import numpy as np\n"
        "from tinyconv import kernels\n"
        "from tinyconv.kernels import conv, dot, im2col, pool\n"
        "x = np.ones((1, 6, 6, 4), np.float32); w = np.ones((3, 3, 4, 2), np.float32)\n"
        "s, p = (2, 2), ((1, 1), (1, 1))\n"
        "kernels.conv2d_grad_input(kernels.conv2d_forward(x, w, s, p), w, x.shape, s, p)  # few channels: direct\n"
        "kernels.conv2d_forward(np.ones((1, 6, 6, 20), np.float32), np.ones((3, 3, 20, 2), np.float32), s, p)\n"
        "y, arg = kernels.max_pool2d_forward(x, (2, 2), s, p)\n"
        "kernels.max_pool2d_backward(y, arg, x.shape)\n"
        "kernels.max_pool2d_forward(x, (2, 2), s, p, argmax=False)\n"
        "dot.dot(x[0, 0], w[0, 0])\n"
        "kernels.avg_pool2d_backward(kernels.avg_pool2d_forward(x, (2, 2), s, p), x.shape, (2, 2), s, p)\n"
        "fns = [im2col.im2col, im2col.col2im_add, conv._direct_forward, pool._max_forward, pool._max_backward,\n"
        "       pool._avg_forward, pool._avg_backward, pool._max_values, dot.matmul_block]\n"
        "count = lambda stat: sum(sum(getattr(f.stats, stat).values()) for f in fns)\n"
        "print(count('cache_hits'), count('cache_misses'))\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    for _ in range(2):      # the first run fills the cache if this checkout has none yet
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root)
    hits, misses = map(int, out.stdout.split())
    assert (hits, misses) == (9, 0)


# ---------------------------------------------------------------- one window geometry for every operation

@pytest.mark.parametrize("name, stride, padding, size, message", [
    ("conv2d", 0, 0, 3, r"stride must be positive, got \(0, 0\)"),
    ("max_pool2d", (1, 0), 0, 3, r"stride must be positive, got \(1, 0\)"),
    ("avg_pool2d", 1, -1, 3, r"padding must not be negative"),
    ("conv2d", 1, 0, 9, r"window \(9, 9\) does not fit in input \(5, 5\)"),
    ("max_pool2d", 1, 0, 9, r"window \(9, 9\) does not fit in input \(5, 5\)"),
    ("avg_pool2d", 2, 2, 2, r"padding \(\(2, 2\), \(2, 2\)\) must be smaller than the window"),
    ("max_pool2d", 1, 0, 0, r"window size must be positive"),
])
def test_window_geometry_is_checked_once_with_the_same_message_everywhere(name, stride, padding, size, message):
    """functional, the fast kernels and the reference kernels all reject bad geometry through geometry.window."""
    x = np.ones((1, 5, 5, 2))
    pads = ((padding, padding), (padding, padding))
    strides = stride if isinstance(stride, tuple) else (stride, stride)
    if name == "conv2d":
        w = np.ones((size, size, 2, 1))
        calls = [lambda: F.conv2d(x, w, stride=stride, padding=padding),
                 lambda: kernels.conv2d_forward(x, w, strides, pads),
                 lambda: reference.conv2d_forward(x, w, strides, pads)]
    else:
        calls = [lambda: getattr(F, name)(x, size, stride, padding),
                 lambda: getattr(kernels, f"{name}_forward")(x, (size, size), strides, pads),
                 lambda: getattr(reference, f"{name}_forward")(x, (size, size), strides, pads)]
    for call in calls:
        with pytest.raises(ValueError, match=f"^{name}: {message}"):
            call()
