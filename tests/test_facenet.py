"""The FaceNet network: layer names against the weights file, shapes, and gradients through the whole graph."""
import json
import shutil

import h5py
import numpy as np
import pytest

import tinyconv.functional as F
from tinyconv import Tensor, nn, no_grad, weights
from tinyconv.faces.triplet import triplet_loss
from tinyconv.models.facenet import InceptionResNetV1, chain, facenet


def test_layers_as_in_the_paper_and_the_file():
    model = InceptionResNetV1()
    modules = [m for _, m in model.named_modules()]
    assert sum(isinstance(m, nn.Conv2d) for m in modules) == 132
    assert sum(isinstance(m, nn.BatchNorm2d) for m in modules) == 112  # 111 after convolutions + Bottleneck_BatchNorm
    params = model.named_parameters()
    assert params["Conv2d_1a_3x3/kernel"].shape == (3, 3, 3, 32)
    assert "Conv2d_1a_3x3/bias" not in params and "Conv2d_1a_3x3_BatchNorm/gamma" not in params
    assert params["Block35_1_Branch_0_Conv2d_1x1/kernel"].shape == (1, 1, 256, 32)
    assert params["Block17_10_Branch_1_Conv2d_0b_1x7/kernel"].shape == (1, 7, 128, 128)
    assert params["Block8_6_Conv2d_1x1/bias"].shape == (1792,)
    assert params["Bottleneck/kernel"].shape == (1792, 128)
    assert "Bottleneck/bias" not in params
    assert model.named_buffers()["Mixed_7a_Branch_2_Conv2d_1a_3x3_BatchNorm/moving_variance"].shape == (256,)


def test_state_dict_maps_one_to_one_onto_the_weights_file(weights_file):
    state, attrs = weights.read_state(weights_file("facenet"))
    model_state = InceptionResNetV1().state_dict()
    assert attrs["architecture"] == "facenet"
    assert set(model_state) == set(state)
    assert all(model_state[k].shape == state[k].shape for k in state)


def test_pretrained_model_encodes_160px_images(weights_file):
    model = facenet(weights_file("facenet"))
    assert not model.training
    x = np.random.default_rng(0).random((2, 160, 160, 3), dtype=np.float32)
    with no_grad():
        y = model(Tensor(x))
    assert y.shape == (2, 128) and y.dtype == np.float32
    assert not np.allclose(y.data[0], y.data[1])


def test_folded_batch_norm_encodes_as_the_layers_one_by_one(weights_file):
    """Without gradients each ConvBN folds its batch norm into the convolution; with gradients it runs conv, batch
    norm and relu as written. Same encodings within float32 noise, also after weights change in place."""
    model = facenet(weights_file("facenet"))
    x = np.random.default_rng(0).random((2, 96, 96, 3), dtype=np.float32)
    state, encodings = model.state_dict(), []
    for _ in range(2):
        with no_grad():
            folded = model(Tensor(x)).data
        layers = model(Tensor(x)).data
        assert layers.dtype == folded.dtype == np.float32
        np.testing.assert_allclose(folded, layers, rtol=0, atol=1e-5 * np.abs(layers).max())
        encodings.append(folded)
        state["Conv2d_4a_3x3_BatchNorm/moving_variance"] *= 2      # in place, as an optimiser or load_state_dict
        state["Conv2d_4a_3x3_BatchNorm/beta"] += 0.5
        state["Block17_2_Branch_1_Conv2d_0b_1x7/kernel"] *= -1
    assert np.abs(encodings[1] - encodings[0]).max() > 0.01            # the changes were seen


def test_a_face_gets_the_same_bits_alone_and_in_a_batch_up_to_block35():
    """Every layer whose output has conv.IMAGE_MIN_ROWS pixels or more (at 160 px: the stem and the five Block35)
    computes each image on its own, so what reaches Mixed_6a does not depend on the batch, bit for bit. (The
    course's check, encodings alone and in a batch within 1e-6, then rests on the small late layers alone.)"""
    model = InceptionResNetV1().eval()
    x = np.random.default_rng(0).random((3, 160, 160, 3), dtype=np.float32)

    def up_to_block35(images):
        y = chain(model.stem, Tensor(images))
        y = chain(model.stem_2, F.max_pool2d(y, 3, stride=2))
        return chain(model.block35, y).data

    with no_grad():
        batch = up_to_block35(x)
        assert batch.shape == (3, 17, 17, 256) and np.abs(batch).max() > 0
        for i in range(3):
            np.testing.assert_array_equal(up_to_block35(x[i:i + 1])[0], batch[i])


def test_winograd_4x4_only_by_rows_of_tiles(monkeypatch):
    """At 160 px FaceNet's convolutions take im2col, F(2x2) through BLAS, or F(4x4) by rows of tiles in the
    79x79, 77x77 and 38x38 stem layers and Block35's 3x3 32->32 (functional.conv_algorithm): there each tile is
    computed on its own, so F(4x4)'s larger float32 error gives an image the same bits alone and in a batch, and
    no layer takes F(4x4) through BLAS."""
    picked = []
    choose = F.conv_algorithm
    monkeypatch.setattr(F, "conv_algorithm", lambda *shapes: picked.append(choose(*shapes)) or picked[-1])
    with no_grad():
        InceptionResNetV1().eval()(Tensor(np.zeros((2, 160, 160, 3), np.float32)))
    assert len(picked) == 132 and "winograd2" in picked and "winograd4" not in picked
    assert picked.count("winograd4_rows") == 3 + 15    # the 79x79, 77x77 and 38x38 stem layers, Block35's 3x3


def test_residual_scales_come_from_the_weights_file(weights_file, tmp_path):
    """Every residual block takes its scale from the file's residual_scales attribute, not from the code."""
    path = tmp_path / "facenet.h5"
    shutil.copy(weights_file("facenet"), path)
    scales = weights.read_attrs(path)["residual_scales"]
    assert len(scales) == 21 and scales["Block8_6_ScaleSum"] == 1.0
    scales = {name: round(0.01 * i, 2) for i, name in enumerate(sorted(scales), 1)}   # made-up, all different
    with h5py.File(path, "r+") as f:
        f.attrs["residual_scales"] = json.dumps(scales)
    model = facenet(path)
    assert {f"{b.prefix}_ScaleSum": b.scale for b in model.residual_blocks()} == scales
    with pytest.raises(ValueError, match=r"missing \['Block35_1_ScaleSum'\]"):
        model.set_residual_scales({k: v for k, v in scales.items() if k != "Block35_1_ScaleSum"})


def test_bad_input_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expected images of shape \(N, H, W, 3\)"):
        InceptionResNetV1().eval()(Tensor(np.zeros((1, 160, 160), np.float32)))


def test_triplet_loss_gradient_reaches_every_parameter_and_matches_central_differences():
    """float64, 75 px inputs (the smallest size every stride-2 'valid' layer accepts), random weights."""
    np.random.seed(0)
    model = InceptionResNetV1().eval().astype(np.float64)
    rng = np.random.default_rng(1)
    for name, buffer in model.named_buffers().items():  # realistic statistics instead of 0/1
        buffer[...] = rng.uniform(0.5, 1.5, buffer.shape) if name.endswith("variance") else rng.normal(0, .1,
                                                                                                      buffer.shape)
    x = Tensor(rng.random((3, 75, 75, 3)), requires_grad=True)

    def loss():
        e = F.l2_normalize(model(x), axis=-1)
        return triplet_loss(None, (e[0:1], e[1:2], e[2:3]), alpha=4.0)  # alpha 4 > any squared distance: active

    model.zero_grad()
    out = loss()
    out.backward()
    params = model.named_parameters()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in params.values())
    assert all(np.any(p.grad != 0) for p in params.values())

    def numeric(array, index, eps=1e-6):
        saved = array[index]
        array[index] = saved + eps
        with no_grad():
            up = loss().item()
        array[index] = saved - eps
        with no_grad():
            down = loss().item()
        array[index] = saved
        return (up - down) / (2 * eps)

    checks = [("Conv2d_1a_3x3/kernel", (1, 2, 0, 5)), ("Block35_3_Branch_2_Conv2d_0b_3x3/kernel", (2, 0, 7, 3)),
              ("Mixed_6a_Branch_1_Conv2d_0b_3x3_BatchNorm/beta", (11,)), ("Block17_7_Conv2d_1x1/bias", (100,)),
              ("Block8_6_Branch_1_Conv2d_0c_3x1/kernel", (1, 0, 3, 4)), ("Bottleneck/kernel", (17, 9))]
    for name, index in checks:
        p = params[name]
        assert p.grad[index] == pytest.approx(numeric(p.data, index), rel=1e-4, abs=1e-8), name
    for index in [(2, 40, 33, 2)]:
        assert x.grad[index] == pytest.approx(numeric(x.data, index), rel=1e-4, abs=1e-8)
