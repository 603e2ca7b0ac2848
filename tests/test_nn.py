"""Layers and optimisers: naming, state dicts, train/eval behaviour, and that SGD and Adam minimise."""
import numpy as np
import pytest

from tinyconv import Tensor, gradcheck, nn, optim
import tinyconv.functional as F


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding="same", bias=False, name="Conv2d_1a_3x3")
        self.bn = nn.BatchNorm2d(4, scale=False, name="Conv2d_1a_3x3_BatchNorm")
        self.head = nn.Linear(4, 2, name="Logits")

    def forward(self, x):
        return self.head(F.global_avg_pool2d(F.relu(self.bn(self.conv(x)))))


def test_names_follow_the_layers_and_map_to_weight_file_paths():
    net = TinyNet()
    assert set(net.named_parameters()) == {"Conv2d_1a_3x3/kernel", "Conv2d_1a_3x3_BatchNorm/beta",
                                           "Logits/kernel", "Logits/bias"}
    assert set(net.named_buffers()) == {"Conv2d_1a_3x3_BatchNorm/moving_mean",
                                        "Conv2d_1a_3x3_BatchNorm/moving_variance"}
    assert net.named_parameters()["Conv2d_1a_3x3/kernel"].shape == (3, 3, 3, 4)
    assert net.num_parameters() == 3 * 3 * 3 * 4 + 4 + 4 * 2 + 2


def test_unnamed_layers_are_named_by_attribute_path():
    seq = nn.Sequential(nn.Linear(2, 3), F.relu, nn.Linear(3, 1))
    assert set(seq.named_parameters()) == {"layers.0/kernel", "layers.0/bias", "layers.2/kernel", "layers.2/bias"}


def test_state_dict_round_trip_and_errors():
    a, b = TinyNet(), TinyNet()
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 3)).astype(np.float32)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).data, b(x).data)
    state = a.state_dict()
    state["Logits/kernel"] = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"layer Logits: Logits/kernel expected shape \(4, 2\), found \(4, 3\)"):
        b.load_state_dict(state)
    del state["Logits/kernel"]
    with pytest.raises(ValueError, match=r"missing \['Logits/kernel'\]"):
        b.load_state_dict(state)


def test_batchnorm_train_uses_batch_statistics_and_updates_running_ones():
    bn = nn.BatchNorm2d(2)
    x = np.random.default_rng(1).standard_normal((4, 3, 3, 2)).astype(np.float32) * 3 + 5
    out = bn(x)
    np.testing.assert_allclose(out.data.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(bn.named_buffers()["moving_mean"], 0.01 * x.mean(axis=(0, 1, 2)), rtol=1e-5)
    n = x.size // 2   # Keras: running = 0.99 running + 0.01 batch, with the unbiased batch variance
    np.testing.assert_allclose(bn.named_buffers()["moving_variance"],
                               0.99 + 0.01 * x.var(axis=(0, 1, 2)) * n / (n - 1), rtol=1e-5)
    bn.eval()
    before = bn.named_buffers()["moving_mean"].copy()
    bn(x)
    np.testing.assert_array_equal(bn.named_buffers()["moving_mean"], before)


@pytest.mark.parametrize("scale, center", [(True, True), (False, True), (True, False)])
def test_batchnorm_affine_is_the_inference_batch_norm(scale, center):
    """(scale, shift) of the current values: x * scale + shift is the inference batch norm, after any change."""
    bn = nn.BatchNorm2d(3, scale=scale, center=center).astype(np.float64).eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 4, 3))
    for _ in range(2):
        for key, value in bn.state_dict().items():
            value[...] = rng.uniform(0.5, 2.0, 3) if key.endswith("variance") else rng.standard_normal(3)
        s, t = bn.affine(np.float64)
        np.testing.assert_allclose(x * s + t, bn(x).data, rtol=1e-12, atol=1e-12)
    assert [a.dtype for a in bn.affine()] == [np.float32, np.float32]


def test_whole_module_gradient_in_float64():
    net = TinyNet().astype(np.float64).eval()
    x = np.random.default_rng(2).standard_normal((2, 5, 5, 3))
    assert gradcheck(lambda t, *params: net(t), x, *net.parameters())


@pytest.mark.parametrize("make", [lambda p: optim.SGD(p, lr=0.1, momentum=0.9), lambda p: optim.Adam(p, lr=0.1)])
def test_optimisers_minimise_a_quadratic(make):
    target = np.array([1.0, -2.0, 3.0])
    w = Tensor(np.zeros(3), requires_grad=True)
    opt = make([w])
    for _ in range(200):
        opt.zero_grad()
        ((w - target) ** 2).sum().backward()
        opt.step()
    np.testing.assert_allclose(w.data, target, atol=1e-2)


def test_sgd_momentum_step_formula():
    w = Tensor(np.array([1.0]), requires_grad=True)
    opt = optim.SGD([w], lr=0.5, momentum=0.9)
    w.grad = np.array([2.0])
    opt.step()  # v = 2, w = 1 - 0.5 * 2 = 0
    w.grad = np.array([1.0])
    opt.step()  # v = 0.9 * 2 + 1 = 2.8, w = 0 - 1.4
    np.testing.assert_allclose(w.data, [-1.4])


def test_frozen_parameters_get_no_gradient():
    """requires_grad_(False) on the batch norm layers: backward computes and accumulates nothing for them."""
    net = TinyNet().eval()
    net.bn.requires_grad_(False)
    assert net.trainable_parameters() == [p for k, p in net.named_parameters().items() if "BatchNorm" not in k]
    x = np.random.default_rng(3).standard_normal((2, 5, 5, 3)).astype(np.float32)
    for _ in range(2):
        net(x).sum().backward()
    assert net.bn.beta.grad is None
    assert net.conv.kernel.grad is not None and net.conv.kernel.grad.dtype == np.float32
    net.bn.requires_grad_(True)
    net(x).sum().backward()
    assert net.bn.beta.grad is not None


def test_prelu_layer_has_one_alpha_per_channel():
    layer = nn.PReLU(3, name="pnet_prelu1")
    assert {k: v.shape for k, v in layer.named_parameters().items()} == {"pnet_prelu1/alpha": (3,)}
    x = np.array([[-2.0, 1.0, -4.0]], np.float32)
    np.testing.assert_allclose(layer(x).data, [[-0.5, 1.0, -1.0]])
    assert gradcheck(lambda t: layer.astype(np.float64)(t), x.astype(np.float64))
