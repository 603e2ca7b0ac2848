"""Winograd F(2x2, 3x3) and F(4x4, 3x3) by rows of tiles (tinyconv/kernels/winograd_rows.py): in float32 within
winograd.py's ERROR_BOUND[m] of a float64 direct (im2col) convolution and exact in float64, over hypothesis-drawn
shapes (odd sizes, 'same', 'valid' and uneven padding, batch 1 to 3, 1 to 512 channels); an image gets the same
bits alone and in a batch."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyconv.functional as F
from tinyconv.kernels import conv, winograd, winograd_rows

CHANNELS = [1, 2, 3, 5, 16, 32, 33, 64, 512]


@st.composite
def cases(draw):
    """(x_shape, w_shape, padding, m): few pixels when there are many channels, so tests stay quick."""
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


@given(cases(), st.integers(0, 2**31 - 1))
def test_float32_within_bound_and_float64_exact(case, seed):
    x_shape, w_shape, pads, m = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    y64 = conv.conv2d_forward(x, w, (1, 1), pads)
    y = winograd_rows.conv2d_forward(x.astype(np.float32), w.astype(np.float32), (1, 1), pads, m)
    assert y.dtype == np.float32 and y.shape == y64.shape
    assert np.abs(y - y64).max() <= winograd.ERROR_BOUND[m] * max(np.abs(y64).max(), 1e-30)
    np.testing.assert_allclose(winograd_rows.conv2d_forward(x, w, (1, 1), pads, m), y64, rtol=1e-10,
                               atol=1e-10 * np.sqrt(x_shape[3]))


@pytest.mark.parametrize("m", [2, 4])
def test_an_image_alone_and_in_a_batch_get_the_same_bits(m):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 23, 21, 32)).astype(np.float32)
    w = rng.standard_normal((3, 3, 32, 64)).astype(np.float32)
    batch = winograd_rows.conv2d_forward(x, w, (1, 1), ((1, 1), (1, 1)), m)
    for i in range(5):
        np.testing.assert_array_equal(winograd_rows.conv2d_forward(x[i:i + 1], w, (1, 1), ((1, 1), (1, 1)), m)[0],
                                      batch[i])


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="winograd_rows: needs a 3x3 kernel"):
        winograd_rows.conv2d_forward(np.ones((1, 5, 5, 2)), np.ones((1, 7, 2, 2)), (1, 1), ((0, 0), (3, 3)))
