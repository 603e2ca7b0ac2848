"""Read the convolutional layers of a VGG network exported to ONNX (e.g. by tf2onnx from a Keras VGG16).

Every `Conv` node names its kernel initializer (layout out, in, kh, kw), e.g.
`functional_1/block1_conv1_1/convolution/ReadVariableOp:0`, and its bias initializer, e.g.
`functional_1/block1_conv1_1/Squeeze:0`; the Keras layer name `block<B>_conv<C>` is taken from the kernel's name.
Kernels are transposed to our HWIO layout (kh, kw, in, out). Dense layers and the rest of the graph are ignored.
Needs the `onnx` package, at conversion time only.
"""
import re

import numpy as np

LAYER = re.compile(r"(block\d+_conv\d+)")


def read_onnx_graph(path):
    """(graph, {initializer name: ndarray}) of an ONNX file; ValueError naming the file if it cannot be read."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ValueError(f"{path}: reading ONNX needs the onnx package (python -m pip install onnx)") from None
    try:
        graph = onnx.load(str(path)).graph
    except Exception as e:  # protobuf raises its own DecodeError, onnx its own errors
        raise ValueError(f"{path}: not a readable ONNX file ({e.__class__.__name__}: {e})") from None
    return graph, {t.name: numpy_helper.to_array(t) for t in graph.initializer}


def read_onnx_vgg(path):
    """{"block1_conv1/kernel": (3, 3, 3, 64) float32, "block1_conv1/bias": (64,), ...} of an ONNX VGG file."""
    graph, arrays = read_onnx_graph(path)
    state = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        if len(node.input) != 3 or node.input[1] not in arrays or node.input[2] not in arrays:
            raise ValueError(f"{path}: Conv node {node.name} has no kernel and bias initializers")
        match = LAYER.search(node.input[1])
        if match is None:
            raise ValueError(f"{path}: Conv node {node.name}: no block<B>_conv<C> in {node.input[1]!r}")
        name = match.group(1)
        attrs = {a.name: list(a.ints) or a.i for a in node.attribute}
        if attrs.get("strides", [1, 1]) != [1, 1] or attrs.get("group", 1) != 1 or \
                attrs.get("dilations", [1, 1]) != [1, 1] or attrs.get("pads", [1] * 4) != [1] * 4:
            raise ValueError(f"{path}: layer {name}: a VGG convolution has stride 1, padding 1, one group; "
                             f"found {attrs}")
        kernel, bias = arrays[node.input[1]], arrays[node.input[2]]
        if kernel.ndim != 4 or bias.shape != (kernel.shape[0],):
            raise ValueError(f"{path}: layer {name}: kernel {kernel.shape} (out, in, kh, kw) does not match "
                             f"bias {bias.shape}")
        state[f"{name}/kernel"] = np.ascontiguousarray(kernel.transpose(2, 3, 1, 0), dtype=np.float32)
        state[f"{name}/bias"] = bias.astype(np.float32)
    if not state:
        raise ValueError(f"{path}: no convolution layers found in the ONNX graph")
    return state
