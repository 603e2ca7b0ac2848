"""python -m tinyconv.visualize: receptive fields (checked exactly against gradients), top patches and activation
maximisation on hand-set weights, the command's errors, and one small run with the real VGG16 weights."""
import numpy as np
import pytest
from PIL import Image

import tinyconv.functional as F
from tinyconv import Tensor
from tinyconv.models.vgg import VGG
from tinyconv.visualize import (GREY, crop_patch, layer_geometry, main, maximise_activation, pictures,
                                pre_activation, receptive_field, top_patches)


def gradient_support(fn, size, i, j):
    """Input pixels (rows, cols) that unit (i, j) of channel 0 of fn(x) depends on, found by backward()."""
    x = Tensor(np.ones((1, size, size, 1)), requires_grad=True)
    y = fn(x)
    g = np.zeros(y.shape)
    g[0, i, j, 0] = 1
    y.backward(g)
    rows, cols = np.nonzero(x.grad[0, :, :, 0])
    return (rows.min(), rows.max()), (cols.min(), cols.max()), np.count_nonzero(x.grad)


def expected_box(field, jump, offset, i, size):
    lo = offset + i * jump
    return max(lo, 0), min(lo + field - 1, size - 1)


def test_receptive_field_of_a_hand_built_net_matches_the_gradient():
    # all-ones kernels on an all-ones input: every pixel inside the field gets a positive gradient, none outside
    ops = [(3, 1, 1), (2, 2, 0), (3, 2, 0), (5, 1, 2)]          # conv 3 same, avg pool 2, conv 3/2 valid, conv 5

    def net(x):
        x = F.conv2d(x, np.ones((3, 3, 1, 1)), padding=1)
        x = F.avg_pool2d(x, 2)
        x = F.conv2d(x, np.ones((3, 3, 1, 1)), stride=2)
        return F.conv2d(x, np.ones((5, 5, 1, 1)), padding=2)

    size = 30
    field, jump, offset = receptive_field(ops)
    assert (field, jump, offset) == (1 + 2 + 1 + 2 * 2 + 4 * 4, 4, -1 - 0 - 0 - 2 * 4)
    out = net(Tensor(np.ones((1, size, size, 1)))).shape[1]
    for i in range(out):
        for j in range(out):
            rows, cols, count = gradient_support(net, size, i, j)
            assert rows == expected_box(field, jump, offset, i, size)
            assert cols == expected_box(field, jump, offset, j, size)
            assert count == (rows[1] - rows[0] + 1) * (cols[1] - cols[0] + 1)


@pytest.fixture(scope="module")
def positive_vgg():
    """VGG16's architecture with average pooling and positive random kernels: every unit depends on its whole
    field, so the gradient shows the field exactly (max pooling would pick one cell of each window)."""
    net = VGG("vgg16", pooling="avg")
    for name, p in net.named_parameters().items():
        p.data = np.abs(p.data) if name.endswith("kernel") else np.zeros_like(p.data)
        p.requires_grad = False
    return net


@pytest.mark.parametrize("layer", ["block1_conv2", "block2_conv1", "block3_conv1"])
def test_receptive_field_of_vgg_layers_matches_the_gradient(positive_vgg, layer, monkeypatch):
    """The gradient of one unit is nonzero exactly on its receptive field. Through the reference convolution
    (im2col): Winograd's tile transforms leave rounding-level values (1e-8 to 3e-8 of the largest) on the other cells
    of a tile, so the exact support of a gradient shows only on the exact path."""
    monkeypatch.setattr(F, "CONV_ALGORITHM", "im2col")
    size = 36
    field, jump, offset = receptive_field(layer_geometry(positive_vgg, layer, size))
    for i, j in [(0, 0), (1, 2), (3, 3)]:
        x = Tensor(np.ones((1, size, size, 3), np.float32), requires_grad=True)
        y = positive_vgg.features(x, [layer])[layer]
        g = np.zeros(y.shape, np.float32)
        g[0, i, j, 0] = 1
        y.backward(g)
        rows, cols = np.nonzero(np.abs(x.grad[0]).sum(axis=-1))
        assert (rows.min(), rows.max()) == expected_box(field, jump, offset, i, size)
        assert (cols.min(), cols.max()) == expected_box(field, jump, offset, j, size)
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)   # a full box


@pytest.fixture(scope="module")
def random_vgg():
    """VGG16's architecture with its random initial weights (kernels of both signs)."""
    return VGG("vgg16")


@pytest.mark.parametrize("layer", ["block1_conv1", "block1_conv2", "block2_conv1"])
def test_pre_activation_is_the_layer_before_its_relu(random_vgg, layer):
    x = np.random.default_rng(1).standard_normal((1, 12, 12, 3)).astype(np.float32) * 50
    z = pre_activation(random_vgg, x, layer).data
    assert (z < 0).any() and (z > 0).any()
    np.testing.assert_allclose(np.maximum(z, 0), random_vgg.features(x, [layer])[layer].data, rtol=1e-6)


def test_crop_patch_fills_outside_with_grey():
    rgb = np.arange(5 * 5 * 3, dtype=np.uint8).reshape(5, 5, 3)
    patch = crop_patch(rgb, -1, 3, 3)
    assert patch.shape == (3, 3, 3)
    assert (patch[0] == GREY).all() and (patch[:, 2] == GREY).all()
    np.testing.assert_array_equal(patch[1:, :2], rgb[0:2, 3:5])


@pytest.fixture
def brightness_net():
    """VGG16's shape with unit 0 of block1_conv1 summing the 3x3 window's (BGR-centred) pixels, unit 1 its
    negative; other weights random."""
    net = VGG("vgg16")
    conv = net.convs[0]
    conv.kernel.data[..., 0] = 1.0
    conv.kernel.data[..., 1] = -1.0
    conv.bias.data[:] = 0
    for p in net.parameters():
        p.requires_grad = False
    return net


def test_top_patches_finds_the_brightest_spot_of_the_brightest_images(brightness_net):
    size, images, spots = 16, [], [(4, 5), (9, 2), (11, 12)]
    for level, (r, c) in zip((150, 250, 200), spots):
        rgb = np.zeros((size, size, 3), np.uint8)
        rgb[r - 1:r + 2, c - 1:c + 2] = level                   # a 3x3 bright square centred on (r, c)
        images.append(rgb)
    result = top_patches(brightness_net, "block1_conv1", [0], images, top=2, progress=False)[0]
    assert [index for _, index, _ in result] == [1, 2]           # the brightest two images, strongest first
    assert result[0][0] > result[1][0]
    for _, index, patch in result:
        r, c = spots[index]
        np.testing.assert_array_equal(patch, images[index][r - 1:r + 2, c - 1:c + 2])


def test_activation_maximisation_raises_the_units_activation(brightness_net):
    units = [0, 1]
    x = maximise_activation(brightness_net, "block1_conv1", units, size=12, steps=0, progress=False)
    y = maximise_activation(brightness_net, "block1_conv1", units, size=12, steps=5, jitter=1, progress=False)
    assert x.shape == y.shape == (2, 12, 12, 3)

    def mean_activation(z):
        a = brightness_net.features(z, ["block1_conv1"])["block1_conv1"].data
        return [a[u, :, :, unit].mean() for u, unit in enumerate(units)]
    assert all(after > before for before, after in zip(mean_activation(x), mean_activation(y)))
    brightness = [brightness_net.deprocess(y[u:u + 1]).mean() for u in range(2)]
    assert brightness[0] > brightness[1]           # unit 0 wants bright pixels, unit 1 dark ones
    rgb = pictures(brightness_net, y)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 12, 12, 3)


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


@pytest.mark.parametrize("args, message", [
    (["block9_conv1"], "no layer 'block9_conv1'"),
    (["block1_conv1", "--units", "64"], "unit 64 is out of range: block1_conv1 has 64 units (0..63)"),
    (["block1_conv1", "-o", "{tmp}/no/such/folder/out.png"], "does not exist"),
    (["block1_conv1", "--images", "{tmp}/missing"], "missing: no such folder"),
    (["block1_conv1", "--images", "{tmp}/empty"], "empty: no images in this folder"),
    (["block1_conv1", "--images", "{tmp}/broken"], "bad.jpg: not a readable image"),
    (["block1_conv1", "-o", "{tmp}/out.gif"], "must be a .png or .jpg"),
])
def test_command_errors_are_one_line(tmp_path, image_folder, capsys, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "bad.jpg").write_bytes(b"not a jpeg")
    argv = [a.format(tmp=tmp_path) for a in args]
    if "--images" not in argv:
        argv += ["--images", str(image_folder)]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "out.png")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--units", "-1"], "argument --units: expected an integer >= 0, got '-1'"),
    (["--steps", "-3"], "argument --steps: expected an integer >= 0"),
    (["--step-size", "nan"], "argument --step-size: expected a finite number"),
    (["--size", "4"], "argument --size: must be at least 8"),
    (["--top", "0"], "argument --top: expected a positive integer"),
])
def test_bad_numbers_are_usage_errors(tmp_path, image_folder, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        main(["block1_conv1", *args, "--images", str(image_folder), "-o", str(tmp_path / "out.png")])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_command_writes_the_picture(tmp_path, image_folder, capsys, weights_file):
    weights_file("vgg16")
    out = tmp_path / "units.png"
    assert main(["block2_conv1", "--units", "3", "7", "--images", str(image_folder), "--size", "20",
                 "--top", "2", "--ascent-size", "16", "--steps", "2", "--cell", "24", "-o", str(out)]) == 0
    with Image.open(out) as im:
        assert im.size == (64 + 2 * 26 + 12 + 24, 22 + 2 * 26)    # label, 2 patches, gap, ascent; title, 2 rows
    assert "wrote" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no temporary file left
