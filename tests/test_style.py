"""The course's style-transfer costs: published fixture values, the course's total_cost cases, gradients."""
import numpy as np
import pytest

from tinyconv import Tensor, gradcheck, no_grad
from tinyconv.style import (compute_content_cost, compute_layer_style_cost, compute_style_cost, gram_matrix,
                            style_gram, target_style_cost, style_targets, total_cost, total_variation_cost)


def fixture(shared, name):
    with np.load(shared / "data" / "fixtures" / name) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("name, index, expected", [
    ("nst_tf1_content.npz", None, 6.76559),
    ("nst_tf2_content.npz", -1, 7.0568767),
])
def test_content_cost_fixtures(shared, name, index, expected):
    d = fixture(shared, name)
    a_C, a_G = (d["a_C"], d["a_G"]) if index is None else (d["a_C"][index], d["a_G"][index])
    J = compute_content_cost(Tensor(a_C), Tensor(a_G))
    assert J.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name, expected, rel", [
    ("nst_tf1_gram.npz", [[6.42230511, -4.42912197, -2.09668207], [-4.42912197, 19.46583748, 19.56387138],
                          [-2.09668207, 19.56387138, 20.6864624]], 1e-5),
    ("nst_tf2_gram.npz", [[63.193256, -26.729713, -7.732155], [-26.729713, 12.775055, -2.5164719],
                          [-7.732155, -2.5164719, 23.746586]], 1e-3),
])
def test_gram_matrix_fixtures(shared, name, expected, rel):
    G = gram_matrix(Tensor(fixture(shared, name)["A"]))
    np.testing.assert_allclose(G.numpy(), np.array(expected), rtol=rel)


@pytest.mark.parametrize("name, expected, rel", [
    ("nst_tf1_layer_style.npz", 9.19028, 1e-5),
    ("nst_tf2_layer_style.npz", 14.01649, 1e-3),
])
def test_layer_style_cost_fixtures(shared, name, expected, rel):
    d = fixture(shared, name)
    J = compute_layer_style_cost(Tensor(d["a_S"]), Tensor(d["a_G"]))
    assert J.item() == pytest.approx(expected, rel=rel)


def test_total_cost_course_cases():
    np.random.seed(3)
    J_content, J_style = np.random.randn(), np.random.randn()
    assert total_cost(J_content, J_style) == pytest.approx(35.34667875478276, rel=1e-12)
    assert total_cost(0.2, 0.8) == pytest.approx(34)
    assert total_cost(0.3, 0.5, alpha=3, beta=8) == pytest.approx(4.9)


def test_total_cost_of_tensors_is_differentiable():
    Jc, Js = Tensor(np.float64(2.0), requires_grad=True), Tensor(np.float64(3.0), requires_grad=True)
    J = total_cost(Jc, Js, alpha=10, beta=40)
    J.backward()
    assert J.item() == pytest.approx(140.0)
    assert Jc.grad == pytest.approx(10.0) and Js.grad == pytest.approx(40.0)


def test_target_style_cost_matches_the_course_formula_for_different_sizes():
    """With a target from a style image of another size, the cost compares Grams per position."""
    rng = np.random.default_rng(0)
    a_S, a_G = rng.standard_normal((1, 6, 4, 5)), rng.standard_normal((1, 3, 4, 5))
    A_S, A_G = a_S.reshape(-1, 5).T, a_G.reshape(-1, 5).T
    G_S, G_G = A_S @ A_S.T / 24 * 12, A_G @ A_G.T   # the style Gram rescaled to the generated image's 12 positions
    expected = np.sum((G_S - G_G) ** 2) / (4 * 5 ** 2 * 12 ** 2)
    assert target_style_cost(style_gram(Tensor(a_S)).numpy(), Tensor(a_G)).item() == pytest.approx(expected)


def test_target_style_cost_names_a_shape_mismatch():
    with pytest.raises(ValueError, match=r"target Gram has shape \(3, 3\), expected \(4, 4\)"):
        target_style_cost(np.zeros((3, 3)), Tensor(np.zeros((1, 2, 2, 4))))


def test_style_blend_equals_weighted_sum_of_costs_up_to_a_constant():
    """Matching the blended Gram has the gradient of the blend-weighted sum of the styles' costs."""
    rng = np.random.default_rng(1)
    styles = [{"l": rng.standard_normal((1, 4, 4, 3))}, {"l": rng.standard_normal((1, 5, 3, 3))}]
    blend = [0.25, 0.75]
    layers = [("l", 1.0)]
    a_G = Tensor(rng.standard_normal((1, 4, 4, 3)), requires_grad=True)
    compute_style_cost(style_targets(styles, blend), {"l": a_G}, layers).backward()
    grad_blended = a_G.grad
    a_G.grad = None
    with no_grad():
        targets = [style_targets([s]) for s in styles]
    sum(w * compute_style_cost(t, {"l": a_G}, layers) for w, t in zip(blend, targets)).backward()
    np.testing.assert_allclose(grad_blended, a_G.grad, rtol=1e-10)


def test_style_targets_rejects_bad_blend():
    with pytest.raises(ValueError, match="blend weights"):
        style_targets([{"l": np.ones((1, 2, 2, 3))}], [1.0, 2.0])


def test_total_variation_cost_by_hand():
    x = np.arange(2 * 3 * 1, dtype=np.float64).reshape(1, 2, 3, 1)   # rows differ by 3, columns by 1
    # 3 vertical pairs with difference 3, 4 horizontal pairs with difference 1, over 6 values
    assert total_variation_cost(Tensor(x)).item() == pytest.approx((3 * 9 + 4 * 1) / 6)


def test_costs_gradcheck():
    rng = np.random.default_rng(2)
    a_C, a_S = rng.standard_normal((1, 3, 4, 2)), rng.standard_normal((1, 4, 3, 2))
    G_S = style_targets([{"l": a_S}])

    def J(a_G):
        return total_cost(compute_content_cost(a_C, a_G), compute_style_cost(G_S, {"l": a_G}, [("l", 1.0)]),
                          alpha=10, beta=40) + 0.5 * total_variation_cost(a_G)

    assert gradcheck(J, Tensor(rng.standard_normal((1, 3, 4, 2)), requires_grad=True))
