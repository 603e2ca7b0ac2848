"""Every differentiable operation: analytic gradient against central differences in float64, over
hypothesis-generated shapes, broadcasting, strides, paddings and kernel sizes; forward values against NumPy."""
import contextlib

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import tinyconv.functional as F
from tinyconv import Tensor, gradcheck


seeds = st.integers(0, 2**31 - 1)
small_shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast: the second drops leading axes and sets some axes to 1."""
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple))
    drop = draw(st.integers(0, len(shape)))
    other = tuple(1 if draw(st.booleans()) else n for n in shape[drop:])
    return (shape, other) if draw(st.booleans()) else (other, shape)


def randn(seed, shape, low=None):
    x = np.random.default_rng(seed).standard_normal(shape)
    return x if low is None else np.abs(x) + low


# ----- elementwise ----------------------------------------------------------------------------------------------
@given(broadcast_pair(), seeds, st.sampled_from(["add", "sub", "mul", "div", "maximum", "pow"]))
def test_binary_ops_broadcast_gradients(shapes, seed, op):
    a = randn(seed, shapes[0], low=0.5)  # positive: a valid base for pow
    b = randn(seed + 1, shapes[1], low=0.5) * (1 if op in ("div", "pow") else np.sign(randn(seed + 2, shapes[1])))
    fn = getattr(F, op)
    expected = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "maximum": np.maximum,
                "pow": np.power}[op](a, b)
    np.testing.assert_allclose(fn(a, b).data, expected, rtol=1e-12)
    assert gradcheck(fn, a, b)


@given(small_shapes, seeds, st.floats(-2, 2), st.booleans())
def test_add_relu_is_relu_of_x_plus_scaled_y(shape, seed, scale, with_bias):
    """relu(x + scale * (y + bias)), bias over the last axis: the residual connection with the up-projection's bias."""
    x, y = randn(seed, shape), randn(seed + 1, shape)
    b = randn(seed + 2, shape[-1:] or (1,)) if with_bias else None
    z = x + scale * (y + (0 if b is None else b))
    np.testing.assert_array_equal(F.add_relu(x, y, scale, b).data, np.maximum(z, 0))
    assume(np.abs(z).min() > 1e-3)   # away from the kink at 0
    if b is None:
        assert gradcheck(lambda a, c: F.add_relu(a, c, scale), x, y)
    else:
        assert gradcheck(lambda a, c, d: F.add_relu(a, c, scale, d), x, y, b)
    with pytest.raises(ValueError, match=r"add_relu: shapes \(2, 3\) and \(3,\) differ"):
        F.add_relu(np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match=r"add_relu: bias must have shape \(3,\) \(the last axis\), got \(2,\)"):
        F.add_relu(np.ones((2, 3)), np.ones((2, 3)), 1.0, np.ones(2))


@given(small_shapes, seeds, st.sampled_from(["neg", "exp", "log", "sqrt", "relu", "sigmoid", "tanh", "clip"]))
def test_unary_ops_gradients(shape, seed, op):
    x = randn(seed, shape)
    if op in ("log", "sqrt"):
        x = np.abs(x) + 0.3
    if op == "relu":  # keep away from the kink at 0, where no derivative exists
        x = x + 0.1 * np.sign(x)
    if op == "clip":
        x = np.where(np.abs(np.abs(x) - 0.5) < 0.05, x + 0.1, x)
        assert gradcheck(lambda t: F.clip(t, -0.5, 0.5), x)
        np.testing.assert_array_equal(F.clip(x, -0.5, 0.5).data, np.clip(x, -0.5, 0.5))
        return
    fn = getattr(F, op)
    expected = {"neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "relu": lambda v: np.maximum(v, 0),
                "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh}[op](x)
    np.testing.assert_allclose(fn(x).data, expected, rtol=1e-12, atol=1e-15)
    assert gradcheck(fn, x)


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple), seeds)
def test_prelu(shape, seed):
    x, slope = randn(seed, shape), randn(seed + 1, shape[-1:])
    x = x + 0.1 * np.sign(x)  # keep away from the kink at 0
    np.testing.assert_allclose(F.prelu(x, slope).data, np.where(x > 0, x, slope * x), rtol=1e-12)
    assert gradcheck(F.prelu, x, slope)


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple), seeds)
def test_prelu_with_bias_is_prelu_of_the_sum(shape, seed):
    """prelu(x, slope, bias) = prelu(x + bias, slope), bias one per channel, with its gradient."""
    x, slope, bias = randn(seed, shape), randn(seed + 1, shape[-1:]), randn(seed + 2, shape[-1:])
    z = x + bias
    x = x + 0.1 * np.sign(z)  # keep x + bias away from the kink at 0
    np.testing.assert_allclose(F.prelu(x, slope, bias).data, F.prelu(x + bias, slope).data, rtol=1e-12)
    assert gradcheck(F.prelu, x, slope, bias)


def test_prelu_slope_and_bias_must_be_one_per_channel():
    with pytest.raises(ValueError, match=r"prelu: slope must have shape \(3,\)"):
        F.prelu(np.ones((2, 3)), np.ones(2))
    with pytest.raises(ValueError, match=r"prelu: bias must have shape \(3,\)"):
        F.prelu(np.ones((2, 3)), np.ones(3), np.ones(2))


@given(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), seeds, st.data())
def test_softmax(shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = randn(seed, shape) * 3
    e = np.exp(x)
    np.testing.assert_allclose(F.softmax(x, axis).data, e / e.sum(axis=axis, keepdims=True), rtol=1e-12)
    assert gradcheck(lambda t: F.softmax(t, axis), x)


def test_softmax_of_large_values_is_finite():
    y = F.softmax(np.array([1000.0, 0.0, -1000.0]))
    np.testing.assert_allclose(y.data, [1, 0, 0])


def test_operators_match_functions():
    a, b = Tensor(randn(0, (2, 3))), Tensor(randn(1, (3,)))
    np.testing.assert_allclose((a + b - 2 * a / b ** 2 + (-a)).data,
                               a.data + b.data - 2 * a.data / b.data ** 2 - a.data)
    np.testing.assert_allclose((1 - a).data, 1 - a.data)
    np.testing.assert_allclose((2 / b).data, 2 / b.data)
    np.testing.assert_allclose((a @ b).data, a.data @ b.data)
    np.testing.assert_allclose(a.exp().log().data, a.data)


# ----- reductions and shapes ------------------------------------------------------------------------------------
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple), seeds, st.data(),
       st.sampled_from(["sum", "mean", "max"]), st.booleans())
def test_reductions(shape, seed, data, op, keepdims):
    x = randn(seed, shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                               st.sets(st.integers(0, len(shape) - 1), min_size=1).map(tuple)))
    fn = lambda t: getattr(F, op)(t, axis=axis, keepdims=keepdims)  # noqa: E731
    np.testing.assert_allclose(fn(x).data, getattr(np, op)(x, axis=axis, keepdims=keepdims), rtol=1e-12)
    assert gradcheck(fn, x)


def test_max_shares_gradient_between_ties():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [1, 0, 0]])


@given(st.sampled_from([((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
                        ((2, 1, 2, 3), (4, 3, 2)), ((4, 3), (2, 3, 5))]), seeds)
def test_matmul(shapes, seed):
    a, b = randn(seed, shapes[0]), randn(seed + 1, shapes[1])
    np.testing.assert_allclose(F.matmul(a, b).data, a @ b, rtol=1e-12)
    assert gradcheck(F.matmul, a, b)


@given(st.integers(1, 5), st.integers(1, 6), seeds)
def test_gram(n, m, seed):
    a = randn(seed, (n, m))
    np.testing.assert_allclose(F.gram(a).data, a @ a.T, rtol=1e-12)
    assert gradcheck(F.gram, a)
    assert gradcheck(lambda t: F.gram(F.transpose(t)), a)  # as style.py calls it, on a transposed view


def test_matmul_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\)"):
        F.matmul(np.ones((2, 3)), np.ones((4, 5)))


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple), seeds, st.randoms())
def test_reshape_transpose(shape, seed, random):
    x = randn(seed, shape)
    axes = list(range(len(shape)))
    random.shuffle(axes)
    fn = lambda t: F.transpose(F.reshape(t, (-1,) + shape[1:]), axes)  # noqa: E731
    np.testing.assert_array_equal(fn(x).data, x.transpose(axes))
    assert gradcheck(fn, x)
    assert gradcheck(lambda t: t.reshape(-1), x)


@given(st.integers(1, 3), st.integers(-3, 2), seeds)
def test_concat(pieces, axis, seed):
    arrays = [randn(seed + i, (2, 1 + i, 3) if axis in (1, -2) else (2, 2, 3) if axis != 0 and axis != -3
                    else (1 + i, 2, 3)) for i in range(pieces)]
    np.testing.assert_array_equal(F.concat(arrays, axis=axis).data, np.concatenate(arrays, axis=axis))
    assert gradcheck(lambda *ts: F.concat(ts, axis=axis), *arrays)


@pytest.mark.parametrize("index", [(slice(1, None), 0), (Ellipsis, slice(None, None, 2)), 1,
                                   (np.array([0, 2, 0]),), np.array([[True, False, True, False]] * 3)])
def test_getitem_gradient_including_repeated_indices(index):
    x = randn(3, (3, 4))
    np.testing.assert_array_equal(F.getitem(x, index).data, x[index])
    assert gradcheck(lambda t: t[index], x)


@given(small_shapes.filter(lambda s: len(s) > 0), seeds, st.data())
def test_pad(shape, seed, data):
    widths = [tuple(data.draw(st.integers(0, 2)) for _ in range(2)) for _ in shape]
    x = randn(seed, shape)
    np.testing.assert_array_equal(F.pad(x, widths, value=1.5).data, np.pad(x, widths, constant_values=1.5))
    assert gradcheck(lambda t: F.pad(t, widths), x)


@given(st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), seeds)
def test_l2_normalize(shape, seed):
    x = randn(seed, shape)
    out = F.l2_normalize(x, axis=-1).data
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1, rtol=1e-12)
    assert gradcheck(lambda t: F.l2_normalize(t, axis=-1), x)


def test_l2_normalize_of_zero_is_finite():
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    F.l2_normalize(x).sum().backward()
    assert np.all(np.isfinite(x.grad))


# ----- convolution and pooling ------------------------------------------------------------------------------------
paddings = st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2),
                     st.tuples(st.integers(0, 2), st.integers(0, 2)),
                     st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                               st.tuples(st.integers(0, 2), st.integers(0, 2))))


@st.composite
def conv_case(draw, winograd=False):
    """Shapes of a convolution; winograd=True: only the 3x3 stride-1 kernels that path computes."""
    kernels = [(3, 3)] if winograd else [(1, 1), (3, 3), (1, 3), (3, 1), (2, 2), (1, 7), (7, 1), (2, 3)]
    kh, kw = draw(st.sampled_from(kernels))
    stride = 1 if winograd else draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 2), st.integers(1, 2))))
    padding = draw(paddings)
    n, cin, cout = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(kh, kh + 4)), draw(st.integers(kw, kw + 4))
    return (n, h, w, cin), (kh, kw, cin, cout), stride, padding


@contextlib.contextmanager
def conv_algorithm(name):
    """Force conv2d's algorithm (a name of F.CONV_PATHS) inside the block."""
    saved, F.CONV_ALGORITHM = F.CONV_ALGORITHM, name
    try:
        yield
    finally:
        F.CONV_ALGORITHM = saved


def reference_conv2d(x, w, stride, pads):
    """Plain NumPy: pad, then for every output position the dot product of the window with the kernel."""
    sh, sw = stride
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    kh, kw = w.shape[:2]
    ho, wo = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
    out = np.zeros((x.shape[0], ho, wo, w.shape[3]))
    for i in range(ho):
        for j in range(wo):
            window = xp[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
            out[:, i, j, :] = np.tensordot(window, w, axes=([1, 2, 3], [0, 1, 2]))
    return out


@pytest.mark.parametrize("algorithm", ["im2col", "winograd2", "winograd4", "winograd4_rows"])
@given(st.data(), seeds, st.booleans())
def test_conv2d_forward_and_gradients(algorithm, data, seed, with_bias):
    x_shape, w_shape, stride, padding = data.draw(conv_case(winograd=algorithm != "im2col"))
    x, w = randn(seed, x_shape), randn(seed + 1, w_shape)
    b = randn(seed + 2, w_shape[3]) if with_bias else None
    stride2 = (stride, stride) if isinstance(stride, int) else stride
    pads = F.resolve_padding(padding, x_shape[1:3], w_shape[:2], stride2)
    expected = reference_conv2d(x, w, stride2, pads) + (0 if b is None else b)
    with conv_algorithm(algorithm):
        assert F.conv_algorithm(x_shape, w_shape, stride2, pads).startswith(algorithm)
        np.testing.assert_allclose(F.conv2d(x, w, b, stride, padding).data, expected, rtol=1e-10, atol=1e-12)
        inputs = (x, w) if b is None else (x, w, b)
        assert gradcheck(lambda *t: F.conv2d(*t[:2], t[2] if len(t) > 2 else None, stride, padding), *inputs)


@given(st.data(), seeds, st.booleans())
def test_conv2d_relu_is_relu_of_conv2d(data, seed, with_scale):
    """relu(conv2d(x, w) * scale + b); scale (a folded batch norm) is a constant: no gradient of its own."""
    x_shape, w_shape, stride, padding = data.draw(conv_case(winograd=False))
    x, w, b = randn(seed, x_shape), randn(seed + 1, w_shape), randn(seed + 2, w_shape[3])
    scale = randn(seed + 3, w_shape[3]) if with_scale else None
    z = F.conv2d(x, w, None, stride, padding).data * (1 if scale is None else scale) + b
    out = F.conv2d_relu(x, w, b, stride, padding, scale=scale).data
    if scale is None:
        np.testing.assert_array_equal(out, np.maximum(z, 0))
    else:
        np.testing.assert_allclose(out, np.maximum(z, 0), rtol=1e-12, atol=1e-12)
    assume(np.abs(z).min() > 1e-3)   # away from the kink at 0
    assert gradcheck(lambda *t: F.conv2d_relu(*t, stride, padding, scale=scale), x, w, b)


def test_conv2d_scale_is_a_constant_of_the_output_channels():
    x, w = np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 5))
    with pytest.raises(ValueError, match=r"conv2d: scale must have shape \(5,\), got \(2,\)"):
        F.conv2d_relu(x, w, scale=np.ones(2))
    with pytest.raises(TypeError, match="scale is a constant"):
        F.conv2d_relu(x, w, scale=Tensor(np.ones(5), requires_grad=True))


def test_conv_algorithm_auto_picks_winograd_for_wide_3x3_only():
    same, valid = ((1, 1), (1, 1)), ((0, 0), (0, 0))
    assert F.conv_algorithm((1, 224, 224, 64), (3, 3, 64, 64), (1, 1), same) == "winograd4_rows"  # VGG conv1_2
    assert F.conv_algorithm((1, 224, 224, 96), (3, 3, 96, 48), (1, 1), same) == "winograd2"    # 64 channels each
    assert F.conv_algorithm((1, 46, 46, 96), (3, 3, 96, 96), (1, 1), same) == "winograd2"      # 48x48 for F(4x4)
    assert F.conv_algorithm((1, 46, 46, 64), (3, 3, 64, 64), (1, 1), same) == "winograd4_rows"  # <= 80 inputs
    assert F.conv_algorithm((32, 35, 35, 81), (3, 3, 81, 48), (1, 1), same) == "winograd2"
    assert F.conv_algorithm((32, 35, 35, 32), (3, 3, 32, 48), (1, 1), same) == "winograd4_rows"  # few channels
    assert F.conv_algorithm((1, 224, 224, 32), (3, 3, 32, 64), (1, 1), same) == "winograd4_rows"
    assert F.conv_algorithm((32, 79, 79, 32), (3, 3, 32, 32), (1, 1), valid) == "winograd4_rows"  # FaceNet's stem
    assert F.conv_algorithm((32, 77, 77, 32), (3, 3, 32, 64), (1, 1), same) == "winograd4_rows"
    assert F.conv_algorithm((32, 17, 17, 32), (3, 3, 32, 32), (1, 1), same) == "winograd4_rows"  # Block35
    assert F.conv_algorithm((1, 23, 23, 32), (3, 3, 32, 64), (1, 1), valid) == "winograd4_rows"  # MTCNN O-Net
    assert F.conv_algorithm((1, 16, 16, 32), (3, 3, 32, 32), (1, 1), valid) == "im2col"          # 14x14
    assert F.conv_algorithm((32, 38, 38, 80), (3, 3, 80, 192), (1, 1), valid) == "winograd4_rows"  # FaceNet's stem
    assert F.conv_algorithm((1, 56, 56, 128), (3, 3, 128, 256), (1, 1), same) == "winograd4"
    assert F.conv_algorithm((1, 64, 64, 512), (3, 3, 512, 512), (1, 1), same) == "winograd4"
    assert F.conv_algorithm((1, 28, 28, 512), (3, 3, 512, 512), (1, 1), same) == "winograd2"   # 48x48 for F(4x4)
    assert F.conv_algorithm((64, 28, 28, 512), (3, 3, 512, 512), (1, 1), same) == "winograd2"  # never by the batch
    assert F.conv_algorithm((32, 17, 17, 192), (3, 3, 192, 192), (1, 1), same) == "winograd2"  # 256 pixels
    assert F.conv_algorithm((32, 15, 15, 192), (3, 3, 192, 192), (1, 1), same) == "im2col"     # fewer
    assert F.conv_algorithm((1, 224, 224, 3), (3, 3, 3, 64), (1, 1), same) == "im2col"        # RGB input
    assert F.conv_algorithm((1, 56, 56, 64), (3, 3, 64, 64), (2, 2), same) == "im2col"        # stride 2
    assert F.conv_algorithm((1, 287, 383, 16), (3, 3, 16, 32), (1, 1), ((0, 0), (0, 0))) == "im2col"  # direct
    assert F.conv_algorithm((1, 17, 17, 128), (1, 7, 128, 128), (1, 1), ((0, 0), (3, 3))) == "im2col"


@pytest.mark.parametrize("size, kernel, stride, expected", [
    (7, 3, 2, ((1, 1), (1, 1))),   # out 4: total pad (4-1)*2+3-7 = 2
    (8, 3, 2, ((0, 1), (0, 1))),   # out 4: total pad 1, the smaller half (0) at the top/left
    (17, 7, 1, ((3, 3), (3, 3))),
    (5, 1, 2, ((0, 0), (0, 0))),
])
def test_same_padding_follows_tensorflow(size, kernel, stride, expected):
    assert F.resolve_padding("same", (size, size), (kernel, kernel), (stride, stride)) == expected


def test_conv2d_bad_input_names_operation_and_shapes():
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels \(shape \(1, 5, 5, 3\)\).*\(3, 3, 4, 2\)"):
        F.conv2d(np.ones((1, 5, 5, 3)), np.ones((3, 3, 4, 2)))
    with pytest.raises(ValueError, match="NHWC"):
        F.conv2d(np.ones((5, 5, 3)), np.ones((3, 3, 3, 2)))
    with pytest.raises(ValueError, match="does not fit"):
        F.conv2d(np.ones((1, 2, 2, 3)), np.ones((3, 3, 3, 2)))
    with pytest.raises(TypeError, match="float32.*float64"):
        F.conv2d(np.ones((1, 5, 5, 3), np.float32), np.ones((3, 3, 3, 2)))


@st.composite
def pool_case(draw):
    size = draw(st.sampled_from([(2, 2), (3, 3), (1, 2), (3, 2)]))
    stride = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(st.integers(1, 2), st.integers(1, 3))))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 1)))
    return (draw(st.integers(1, 2)), draw(st.integers(size[0], 7)), draw(st.integers(size[1], 7)),
            draw(st.integers(1, 3))), size, stride, padding


@given(pool_case(), seeds, st.sampled_from(["max", "avg"]))
def test_pooling_forward_and_gradients(case, seed, kind):
    x_shape, size, stride, padding = case
    assume(padding in ("same", "valid") or padding < min(size))
    x = np.random.default_rng(seed).permutation(np.prod(x_shape)).reshape(x_shape) * 0.1  # no ties
    fn = lambda t: getattr(F, f"{kind}_pool2d")(t, size, stride, padding)  # noqa: E731
    stride2 = size if stride is None else (stride, stride) if isinstance(stride, int) else stride
    (pt, pb), (pl, pr) = F.resolve_padding(padding, x_shape[1:3], size, stride2)
    ho, wo = (x_shape[1] + pt + pb - size[0]) // stride2[0] + 1, (x_shape[2] + pl + pr - size[1]) // stride2[1] + 1
    ref = np.zeros((x_shape[0], ho, wo, x_shape[3]))
    for i in range(ho):
        for j in range(wo):
            rows = slice(max(i * stride2[0] - pt, 0), min(i * stride2[0] - pt + size[0], x_shape[1]))
            cols = slice(max(j * stride2[1] - pl, 0), min(j * stride2[1] - pl + size[1], x_shape[2]))
            ref[:, i, j] = (x[:, rows, cols].max if kind == "max" else x[:, rows, cols].mean)(axis=(1, 2))
    np.testing.assert_allclose(fn(x).data, ref, rtol=1e-12)
    assert gradcheck(fn, x)


def test_max_pool_tie_gives_gradient_to_first_cell():
    x = Tensor(np.ones((1, 2, 2, 1)), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad[0, :, :, 0], [[1, 0], [0, 0]])


def test_pool_padding_must_be_smaller_than_window():
    with pytest.raises(ValueError, match="max_pool2d: padding"):
        F.max_pool2d(np.ones((1, 4, 4, 1)), 2, 2, padding=2)


def test_avg_pool_same_counts_only_real_cells():
    out = F.avg_pool2d(np.ones((1, 3, 3, 1)), 3, 1, "same").data
    np.testing.assert_allclose(out, 1.0)


@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), seeds)
def test_global_avg_pool(n, h, w, c, seed):
    x = randn(seed, (n, h, w, c))
    np.testing.assert_allclose(F.global_avg_pool2d(x).data, x.mean(axis=(1, 2)))
    assert gradcheck(F.global_avg_pool2d, x)


# ----- normalisation, dropout, dense -----------------------------------------------------------------------------
@given(st.sampled_from([(4, 3), (2, 3, 2, 5), (3, 1, 1, 2)]), seeds, st.booleans(), st.booleans(), st.booleans())
def test_batch_norm(shape, seed, training, with_gamma, with_beta):
    c = shape[-1]
    x = randn(seed, shape)
    mean, var = randn(seed + 1, c), randn(seed + 2, c, low=0.5)
    gamma = randn(seed + 3, c) if with_gamma else None
    beta = randn(seed + 4, c) if with_beta else None
    axes = tuple(range(len(shape) - 1))
    mu, s2 = (x.mean(axis=axes), x.var(axis=axes)) if training else (mean, var)
    expected = (x - mu) / np.sqrt(s2 + 1e-3) * (1 if gamma is None else gamma) + (0 if beta is None else beta)
    running_mean, running_var = mean.copy(), var.copy()
    stats = (None, None) if training else (running_mean, running_var)
    out = F.batch_norm(x, *stats, gamma, beta, training=training)
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    assert np.array_equal(running_mean, mean) and np.array_equal(running_var, var)   # pure: nothing updated
    params = [p for p in (gamma, beta) if p is not None]

    def fn(t, *ps):
        ps = list(ps)
        g = ps.pop(0) if gamma is not None else None
        b = ps.pop(0) if beta is not None else None
        return F.batch_norm(t, *stats, g, b, training=training)
    assert gradcheck(fn, x, *params)


def test_batch_norm_running_statistics_are_constants_and_never_updated_silently():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="updates no running mean .*pass mean=None"):
        F.batch_norm(x, np.zeros(3), np.ones(3), training=True)
    with pytest.raises(TypeError, match="running var is a constant"):
        F.batch_norm(x, np.zeros(3), Tensor(np.ones(3), requires_grad=True))
    with pytest.raises(ValueError, match="inference needs the running mean"):
        F.batch_norm(x)
    out = F.batch_norm(x, Tensor(np.zeros(3)), Tensor(np.ones(3)), eps=0)   # constant Tensors are fine
    np.testing.assert_allclose(out.data, x)


def test_dropout_scales_kept_values_and_is_identity_at_inference():
    x = Tensor(np.ones((1000,)), requires_grad=True)
    y = F.dropout(x, 0.25, training=True, rng=np.random.default_rng(0))
    kept = y.data != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(y.data[kept], 1 / 0.75)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, y.data)  # d/dx = mask / (1 - rate)
    assert F.dropout(x, 0.25, training=False) is x


@given(st.sampled_from([(3,), (2, 3), (2, 4, 3)]), st.integers(1, 4), st.booleans(), seeds)
def test_linear(x_shape, out_features, with_bias, seed):
    x, w = randn(seed, x_shape), randn(seed + 1, (x_shape[-1], out_features))
    b = randn(seed + 2, out_features) if with_bias else None
    np.testing.assert_allclose(F.linear(x, w, b).data, x @ w + (0 if b is None else b), rtol=1e-12)
    assert gradcheck(F.linear, x, w, *([b] if with_bias else []))


# ----- the gradient check itself --------------------------------------------------------------------------------
def test_gradcheck_catches_a_wrong_gradient():
    def wrong_square(t):
        return Tensor.from_op(t.data ** 2, (t,), lambda g: (g * t.data,), "wrong_square")  # should be 2 t g
    with pytest.raises(AssertionError, match="gradcheck: input 0"):
        gradcheck(wrong_square, np.array([1.0, 2.0]))


def test_gradcheck_refuses_float32():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(F.exp, Tensor(np.ones(2, np.float32)))


# ----- float32 stays float32 through every VJP -----------------------------------------------------------------------
# Each differentiable operation of functional.py, called on float32 tensors of shape `s` (a small 4-d shape, NHWC);
# the operation's name is the key. test_every_op_is_listed keeps this table complete.
FLOAT32_CASES = {
    "astype": lambda t, s: F.astype(F.astype(t, np.float64), np.float32),
    "add": lambda t, s: F.add(t, t[:1]),
    "sub": lambda t, s: F.sub(t, 2.0 * t),
    "mul": lambda t, s: F.mul(t, t[..., :1]),
    "div": lambda t, s: F.div(t, F.exp(t)),
    "neg": lambda t, s: F.neg(t),
    "pow": lambda t, s: F.pow(F.exp(t), F.tanh(t)),
    "exp": lambda t, s: F.exp(t),
    "log": lambda t, s: F.log(F.exp(t)),
    "sqrt": lambda t, s: F.sqrt(F.exp(t)),
    "relu": lambda t, s: F.relu(t),
    "maximum": lambda t, s: F.maximum(t, F.relu(t)),        # ties wherever t > 0: the 1/2 case
    "sigmoid": lambda t, s: F.sigmoid(t),
    "tanh": lambda t, s: F.tanh(t),
    "clip": lambda t, s: F.clip(t, -0.5, 0.5),
    "sum": lambda t, s: F.sum(t, axis=(1, 2)),
    "mean": lambda t, s: F.mean(t, axis=-1),
    "add_relu": lambda t, s: F.add_relu(t, 2.0 * t, 0.5, np.ones(s[-1])),
    "max": lambda t, s: F.max(F.relu(t), axis=(1, 2)),    # ties at 0: the shared case
    "matmul": lambda t, s: F.matmul(t, F.transpose(t, 0, 1, 3, 2)),
    "gram": lambda t, s: F.gram(F.reshape(t, -1, s[-1])),
    "reshape": lambda t, s: F.reshape(t, -1),
    "transpose": lambda t, s: F.transpose(t),
    "concat": lambda t, s: F.concat([t, 2.0 * t], axis=-1),
    "getitem": lambda t, s: t[:, ::2, [0, 0]],
    "pad": lambda t, s: F.pad(t, ((0, 0), (1, 1), (0, 2), (0, 0))),
    "l2_normalize": lambda t, s: F.l2_normalize(t),
    "conv2d": lambda t, s: F.conv2d(t, F.tensor(np.ones((2, 2, s[-1], 3), np.float32)), np.ones(3), 1, "same"),
    "conv2d_relu": lambda t, s: F.conv2d_relu(t, F.tensor(np.ones((2, 2, s[-1], 3), np.float32)), np.ones(3), 1,
                                              "same"),
    "max_pool2d": lambda t, s: F.max_pool2d(t, 2, 1, "same"),
    "avg_pool2d": lambda t, s: F.avg_pool2d(t, 2, 1, "same"),
    "batch_norm": lambda t, s: F.batch_norm(t, None, None, np.ones(s[-1]), np.zeros(s[-1]), training=True),
    "dropout": lambda t, s: F.dropout(t, 0.5, True, np.random.default_rng(0)),
    "linear": lambda t, s: F.linear(t, np.ones((s[-1], 2)), np.ones(2)),
    "prelu": lambda t, s: F.prelu(t, np.full(s[-1], 0.25, np.float32)),
    "softmax": lambda t, s: F.softmax(t, axis=-1),
}


def test_every_op_is_listed():
    import inspect
    ops = {name for name, fn in vars(F).items()
           if inspect.isfunction(fn) and fn.__module__ == F.__name__ and "Tensor.from_op(" in inspect.getsource(fn)}
    assert ops == set(FLOAT32_CASES)


@given(st.sampled_from(sorted(FLOAT32_CASES)), st.tuples(st.integers(1, 2), st.integers(2, 4), st.integers(2, 4),
                                                         st.integers(1, 3)), seeds)
def test_float32_in_float32_gradients_out(op, shape, seed):
    """backward checks every VJP's shape and dtype (Tensor.backward); here every parameter stays float32 too."""
    x = Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), requires_grad=True)
    out = FLOAT32_CASES[op](x, shape)
    assert out.dtype == np.float32, op
    (out * out).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.shape == x.shape, op


def test_float32_leaks_are_caught_by_backward():
    """The leaks this check found: max (winners / count) and maximum (0.5 * ties) returned float64 gradients."""
    x = Tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    (F.max(x, axis=1).sum() + F.maximum(x, 0.0).sum()).backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, 1 / 3 + 0.5)


def test_mixed_dtypes_promote_and_cast_the_gradient_back():
    a = Tensor(np.ones(3, np.float32), requires_grad=True)
    b = Tensor(np.full(3, 2.0), requires_grad=True)           # float64
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_array_equal(a.grad, [2, 2, 2])
