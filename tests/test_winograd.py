"""The Winograd kernels, through BLAS (tinyconv/kernels/winograd.py) and by rows of tiles (winograd_rows.py): exact
in float64, and in float32 within the documented ERROR_BOUND of a float64 direct (im2col) convolution, over
hypothesis-drawn shapes: odd sizes, 'same', 'valid' and uneven padding, batch 1 and more, 1 to 512 channels (few
pixels when there are many channels). That an image gets the same bits alone and in a batch is checked for every
path in tests/test_kernels.py."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyconv.functional as F
from tinyconv.kernels import conv, winograd, winograd_rows

CHANNELS = [1, 2, 3, 5, 16, 32, 33, 64, 128, 512]   # 32 and 33: either side of winograd_rows' limit


@st.composite
def cases(draw):
    """(x_shape, w_shape, padding, m): at most ~40k multiply-adds per output pixel row so tests stay quick."""
    C, O = draw(st.sampled_from(CHANNELS)), draw(st.sampled_from(CHANNELS))
    big = max(C, O) >= 128
    n = draw(st.integers(1, 2 if big else 3))
    h, w = draw(st.integers(1, 6 if big else 13)), draw(st.integers(1, 6 if big else 13))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]),
                             st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                                       st.tuples(st.integers(0, 2), st.integers(0, 2)))))
    pads = F.resolve_padding(padding, (h, w), (3, 3), (1, 1))
    h, w = max(h, 3 - sum(pads[0])), max(w, 3 - sum(pads[1]))       # the 3x3 window must fit
    return (n, h, w, C), (3, 3, C, O), pads, draw(st.sampled_from([2, 4]))


def relative_error(y, reference):
    return np.abs(y - reference).max() / max(np.abs(reference).max(), 1e-30)


@given(cases(), st.integers(0, 2**31 - 1))
def test_float32_within_bound_of_float64_direct(case, seed):
    x_shape, w_shape, pads, m = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    y64 = conv.conv2d_forward(x, w, (1, 1), pads)
    gy = rng.standard_normal(y64.shape)
    gx64 = conv.conv2d_grad_input(gy, w, x_shape, (1, 1), pads)
    x32, w32, gy32 = x.astype(np.float32), w.astype(np.float32), gy.astype(np.float32)
    y = winograd.conv2d_forward(x32, w32, (1, 1), pads, m)
    rows = winograd_rows.conv2d_forward(x32, w32, (1, 1), pads, m)
    gx = winograd.conv2d_grad_input(gy32, w32, x_shape, (1, 1), pads, m)
    assert y.dtype == rows.dtype == gx.dtype == np.float32
    assert relative_error(y, y64) <= winograd.ERROR_BOUND[m]
    assert relative_error(rows, y64) <= winograd.ERROR_BOUND[m]
    assert relative_error(gx, gx64) <= winograd.ERROR_BOUND[m]


@given(cases(), st.integers(0, 2**31 - 1))
def test_float64_matches_direct(case, seed):
    x_shape, w_shape, pads, m = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    y64 = conv.conv2d_forward(x, w, (1, 1), pads)
    for forward in (winograd.conv2d_forward, winograd_rows.conv2d_forward):
        np.testing.assert_allclose(forward(x, w, (1, 1), pads, m), y64, rtol=1e-10, atol=1e-10 * np.sqrt(x_shape[3]))


@pytest.mark.parametrize("m", [2, 4])
def test_one_dimensional_identity(m):
    """F(m, 3): AT @ ((G @ g) * (BT @ d)) is the valid correlation of the m+2 samples d with the 3 taps g."""
    BT, G, AT = winograd.MATRICES[m]
    rng = np.random.default_rng(m)
    d, g = rng.standard_normal(m + 2), rng.standard_normal(3)
    np.testing.assert_allclose(AT @ ((G @ g) * (BT @ d)), np.correlate(d, g, "valid"), rtol=1e-12, atol=1e-12)


def test_small_chunks_cover_every_tile(monkeypatch):
    """One tile row per chunk (the chunking code path of large images), batch 2, uneven sizes."""
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 1)
    monkeypatch.setattr(winograd, "MIN_CHUNK_TILES", 1)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 11, 7, 3)), rng.standard_normal((3, 3, 3, 4))
    for m in (2, 4):
        np.testing.assert_allclose(winograd.conv2d_forward(x, w, (1, 1), ((1, 1), (1, 1)), m),
                                   conv.conv2d_forward(x, w, (1, 1), ((1, 1), (1, 1))), rtol=1e-10, atol=1e-12)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="winograd: needs a 3x3 kernel"):
        winograd.conv2d_forward(np.ones((1, 5, 5, 2)), np.ones((1, 7, 2, 2)), (1, 1), ((0, 0), (3, 3)))
    with pytest.raises(ValueError, match="winograd_rows: needs a 3x3 kernel"):
        winograd_rows.conv2d_forward(np.ones((1, 5, 5, 2)), np.ones((1, 7, 2, 2)), (1, 1), ((0, 0), (3, 3)))
    with pytest.raises(ValueError, match=r"winograd: output gradient \(1, 4, 4, 2\)"):
        winograd.conv2d_grad_input(np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 2)), (1, 5, 5, 2), (1, 1),
                                   ((1, 1), (1, 1)))
