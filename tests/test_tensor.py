"""Tensor and reverse mode: dtypes, accumulation, freed graphs, no_grad, deep graphs, broadcasting gradients."""
import numpy as np
import pytest

import tinyconv.functional as F
from tinyconv import Tensor, no_grad


def test_dtypes():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(np.ones(2)).dtype == np.float64          # float64 stays, for gradient checks
    assert Tensor(np.arange(3)).dtype == np.float32        # integers are converted explicitly
    assert (Tensor(np.ones(2, np.float32)) * 2.5 + np.ones(2)).dtype == np.float32  # constants follow the tensor
    with pytest.raises(TypeError, match="dtype <U1"):
        Tensor(np.array(["a"]))


def test_gradients_accumulate_across_backward_calls():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x).sum().backward()
    (3 * x).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data + 3)


def test_shared_subexpression_sums_both_paths():
    x = Tensor(np.array([3.0]), requires_grad=True)
    y = x * x
    (y + y * x).sum().backward()  # d/dx (x^2 + x^3) = 2x + 3x^2
    np.testing.assert_allclose(x.grad, [2 * 3 + 3 * 9])


def test_second_backward_on_freed_graph_raises_clearly():
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="already freed"):
        y.backward()


def test_retain_graph_allows_a_second_walk():
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, [4, 4, 4])


def test_backward_needs_grad_for_non_scalars_and_checks_its_shape():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="non-scalar"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"grad has shape \(2,\), the tensor has shape \(3,\)"):
        (x * 2).backward(np.ones(2))
    (x * 2).backward(Tensor(np.array([1.0, 2.0, 3.0])))
    np.testing.assert_array_equal(x.grad, [2, 4, 6])


def test_no_grad_records_nothing():
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        y = x * 2
    assert not y.requires_grad and y.op is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_deep_graph_has_no_recursion_limit():
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(20000):
        y = y + 1e-4 * y
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [(1 + 1e-4) ** 20000])


def test_broadcast_gradient_is_summed_back_to_operand_shape():
    a = Tensor(np.ones((2, 1, 3)), requires_grad=True)
    b = Tensor(np.arange(4.0).reshape(4, 1), requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (2, 1, 3) and b.grad.shape == (4, 1)
    np.testing.assert_array_equal(a.grad, np.full((2, 1, 3), 6.0))
    np.testing.assert_array_equal(b.grad, np.full((4, 1), 6.0))


def test_broadcast_error_names_operation_and_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        Tensor(np.ones((2, 3))) + Tensor(np.ones(4))


def test_detach_and_numpy():
    x = Tensor(np.ones(2), requires_grad=True)
    d = (x * 3).detach()
    assert not d.requires_grad and d.op is None
    assert isinstance(d.numpy(), np.ndarray) and d.numpy()[0] == 3
    assert F.sum(x).item() == 2.0


def test_backward_checks_the_shape_and_dtype_of_every_vjp():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    wrong_dtype = Tensor.from_op(x.data * 2, (x,), lambda g: (g * np.float64(2) * np.ones(3),), "twice")
    with pytest.raises(RuntimeError, match=r"VJP of twice returned a gradient of shape \(3,\) and dtype float64 "
                                           r"for input 0 of shape \(3,\) and dtype float32"):
        wrong_dtype.sum().backward()
    wrong_shape = Tensor.from_op(x.data.sum(), (x,), lambda g: (g,), "total")
    with pytest.raises(RuntimeError, match=r"VJP of total returned a gradient of shape \(\) .* input 0 of shape \(3,\)"):
        wrong_shape.backward()
    too_few = Tensor.from_op(x.data + x.data, (x, x), lambda g: (g,), "pair")
    with pytest.raises(RuntimeError, match="VJP of pair returned 1 gradients for 2 inputs"):
        too_few.sum().backward()


def test_gradcheck_on_a_non_contiguous_input():
    """gradcheck perturbs the array itself: a transposed (non-contiguous) float64 tensor is checked correctly."""
    from tinyconv import gradcheck
    data = np.random.default_rng(0).standard_normal((3, 4)).T
    assert not data.flags.c_contiguous
    assert gradcheck(lambda t: t * t, Tensor(data))
    wrong = lambda t: Tensor.from_op(t.data * t.data, (t,), lambda g: (g * t.data,), "half")   # misses the 2
    with pytest.raises(AssertionError, match="gradcheck: input 0"):
        gradcheck(wrong, Tensor(data.copy().T.copy().T))
