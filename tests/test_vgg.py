"""VGG16/VGG19 feature extractor: layer names and shapes, preprocessing, depth, pooling, the real weights."""
import numpy as np
import pytest

from tinyconv import no_grad, weights
from tinyconv.models.vgg import VGG, vgg16
from tinyconv.weights.architectures import vgg_shapes


@pytest.mark.parametrize("arch, convs", [("vgg16", 13), ("vgg19", 16)])
def test_parameter_names_and_shapes_follow_the_weights_file(arch, convs):
    model = VGG(arch)
    shapes = {k: t.shape for k, t in model.named_parameters().items()}
    assert shapes == vgg_shapes(arch)
    assert len(shapes) == 2 * convs
    assert shapes["block1_conv1/kernel"] == (3, 3, 3, 64) and shapes["block1_conv1/bias"] == (64,)


def test_preprocess_is_caffe_bgr_minus_mean_and_deprocess_inverts_it():
    model = VGG()
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0] = (255, 10, 0)
    x = model.preprocess(rgb)
    assert x.shape == (1, 2, 3, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0, 0], [0 - 103.939, 10 - 116.779, 255 - 123.68], rtol=1e-6)
    np.testing.assert_allclose(model.deprocess(x), rgb, atol=1e-4)


def test_a_converted_matconvnet_file_gives_rgb_minus_the_rgb_mean(tmp_path):
    """The input convention comes from the weights file: MatConvNet's VGG takes RGB minus its RGB mean pixel."""
    from test_weights import write_matconvnet
    from tinyconv.weights.architectures import ARCHITECTURES
    from tinyconv.weights.matconvnet import read_matconvnet

    rng = np.random.default_rng(0)
    write_matconvnet(tmp_path / "small.mat", {"conv1_1": (rng.standard_normal((3, 3, 3, 64)).astype(np.float32),
                                                          rng.random(64, np.float32))}, "new")
    state, preprocessing = read_matconvnet(tmp_path / "small.mat")
    model = VGG()
    model.load_state_dict(dict(model.state_dict(), **state))
    weights.save(tmp_path / "converted.h5", model, dict(ARCHITECTURES["vgg16"], **preprocessing,
                                                         architecture="vgg16", source_package="",
                                                         source_version="", source_file="small.mat",
                                                         source_sha256=""))
    loaded = VGG().load_weights(tmp_path / "converted.h5")
    rgb = rng.integers(0, 256, (2, 3, 3)).astype(np.uint8)
    x = loaded.preprocess(rgb)
    np.testing.assert_allclose(x[0], rgb - np.array([123.68, 116.779, 103.939]), atol=1e-4)   # R, G, B order
    np.testing.assert_allclose(loaded.deprocess(x), rgb, atol=1e-4)
    assert VGG().preprocess(rgb)[0, 0, 0, 0] == pytest.approx(rgb[0, 0, 2] - 103.939)   # caffe: B first


def test_preprocess_rejects_a_grey_image():
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) RGB image, got shape \(4, 4\)"):
        VGG().preprocess(np.zeros((4, 4)))


def test_features_runs_only_as_deep_as_asked():
    """A 4x4 image is pooled to 1x1 before block3: block3_conv1 works, block4_conv1 would need one more pooling."""
    model = VGG()
    x = model.preprocess(np.full((4, 4, 3), 128.0))
    with no_grad():
        out = model.features(x, ["block3_conv1", "conv1_1"])
    assert set(out) == {"block3_conv1", "conv1_1"}
    assert out["block3_conv1"].shape == (1, 1, 1, 256) and out["conv1_1"].shape == (1, 4, 4, 64)
    assert min(out["block3_conv1"].numpy().min(), out["conv1_1"].numpy().min()) >= 0   # after ReLU
    with no_grad(), pytest.raises(ValueError, match="does not fit"):
        model.features(x, ["block4_conv1"])


def test_layer_names_paper_aliases_and_unknown_layer():
    model = VGG()
    assert model.layer_name("conv4_2") == model.layer_name("relu4_2") == "block4_conv2"
    with pytest.raises(ValueError, match=r"vgg16: no layer 'conv5_4'"):
        model.layer_name("conv5_4")
    assert VGG("vgg19").layer_name("conv5_4") == "block5_conv4"


def test_average_pooling_is_selectable():
    rng = np.random.default_rng(0)
    x = VGG().preprocess(rng.uniform(0, 255, (8, 8, 3)))
    state = VGG().state_dict()
    maxed, averaged = VGG(pooling="max"), VGG(pooling="avg")
    maxed.load_state_dict(state)
    averaged.load_state_dict(state)
    with no_grad():
        a = maxed.features(x, ["block2_conv1"])["block2_conv1"].numpy()
        b = averaged.features(x, ["block2_conv1"])["block2_conv1"].numpy()
    assert a.shape == b.shape == (1, 4, 4, 128)
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match="pooling must be 'max' or 'avg'"):
        VGG(pooling="min")


def test_activation_shapes():
    shapes = dict(VGG().activation_shapes(64, 48, "conv5_1"))
    assert shapes["block1_conv2"] == (1, 64, 48, 64)
    assert shapes["block4_conv3"] == (1, 8, 6, 512)
    assert shapes["block5_conv1"] == (1, 4, 3, 512) and "block5_conv2" not in shapes


@pytest.fixture(scope="module")
def real_vgg16(weights_file):
    return vgg16(weights_file("vgg16"))


def test_real_weights_probe_values_and_frozen(real_vgg16):
    params = real_vgg16.named_parameters()
    assert params["block1_conv1/kernel"].numpy()[0, 0, 0, 0] == pytest.approx(0.42947057, rel=1e-7)
    assert params["block5_conv2/bias"].numpy()[510] == pytest.approx(0.23517226, rel=1e-7)
    assert not any(p.requires_grad for p in real_vgg16.parameters())


def test_real_first_layer_matches_a_direct_convolution(real_vgg16):
    """block1_conv1 = ReLU(3x3 'same' cross-correlation + bias), written out with NumPy."""
    rng = np.random.default_rng(1)
    rgb = rng.uniform(0, 255, (9, 7, 3))
    x = real_vgg16.preprocess(rgb)
    with no_grad():
        ours = real_vgg16.features(x, ["block1_conv1"])["block1_conv1"].numpy()
    kernel = real_vgg16.named_parameters()["block1_conv1/kernel"].numpy().astype(np.float64)
    bias = real_vgg16.named_parameters()["block1_conv1/bias"].numpy()
    padded = np.pad(x[0].astype(np.float64), ((1, 1), (1, 1), (0, 0)))
    expected = np.zeros((9, 7, 64))
    for i in range(3):
        for j in range(3):
            expected += padded[i:i + 9, j:j + 7] @ kernel[i, j]
    np.testing.assert_allclose(ours[0], np.maximum(expected + bias, 0), rtol=1e-4, atol=1e-3)
