"""MTCNN's three networks (Zhang et al., IEEE SPL 2016): P-Net proposes faces, R-Net refines, O-Net outputs
boxes and 5 landmarks. The cascade that runs them is `tinyconv.faces.detect`.

Every convolution has stride 1 and no padding; every activation is a PReLU (one slope per channel). Layers carry
the weights file's names, `<net>_<layer>`: `pnet_conv1` ... `onet_landmarks` (see tinyconv/weights/onnx_mtcnn.py
for the original Keras names). Inputs are RGB images scaled by `scale_pixels`: (pixel - 127.5) * 0.0078125.

Transposition convention: these weights come from MATLAB (column-major), so the networks were trained on images
with x and y swapped. We keep the weights exactly as published (as Sandberg's and the ONNX pipelines do) and
transpose the image inside each `forward`: the callers pass ordinary (N, H, W, 3) images and get P-Net's maps back
in image orientation (N, h, w). The box and landmark outputs are (x, y) in image coordinates either way.
'SAME' pooling pads at the end only for every size these networks meet, which is TensorFlow's 'same' rule here.
"""
import numpy as np

import tinyconv.functional as F
from tinyconv import nn, weights


def scale_pixels(rgb):
    """RGB pixels 0..255 (any shape, any dtype) -> float32 (pixel - 127.5) * 0.0078125, in -1..1."""
    return (np.asarray(rgb, dtype=np.float32) - np.float32(127.5)) * np.float32(0.0078125)


def _image_to_net(x):
    """(N, H, W, C) image -> (N, W, H, C): what the networks see (x and y swapped)."""
    return F.transpose(x, (0, 2, 1, 3))


def _conv_prelu(conv, prelu, x):
    """prelu(conv(x)), the convolution's bias added in the PReLU's pass: one pass less over its output."""
    return F.prelu(F.conv2d(x, conv.kernel, None, conv.stride, conv.padding), prelu.alpha, conv.bias)


class PNet(nn.Module):
    """Proposal net, fully convolutional: (N, H, W, 3) with H, W >= 12 -> face probability (N, h, w) and box
    regression (N, h, w, 4) as (dx1, dy1, dx2, dy2) per cell; cell (i, j) sees the 12x12 window at (2i, 2j)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3, name="pnet_conv1"), nn.PReLU(10, name="pnet_prelu1")
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3, name="pnet_conv2"), nn.PReLU(16, name="pnet_prelu2")
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3, name="pnet_conv3"), nn.PReLU(32, name="pnet_prelu3")
        self.score = nn.Conv2d(32, 2, 1, name="pnet_score")
        self.box = nn.Conv2d(32, 4, 1, name="pnet_box")

    def forward(self, x):
        x = _conv_prelu(self.conv1, self.prelu1, _image_to_net(x))
        x = F.max_pool2d(x, 2, 2, padding="same")
        x = _conv_prelu(self.conv2, self.prelu2, x)
        x = _conv_prelu(self.conv3, self.prelu3, x)
        # both heads in one 1x1 convolution (32 -> 2 + 4); the softmax of the two scores, taken for the second,
        # is the sigmoid of their difference: one pass instead of reductions over a 2-wide axis
        heads = F.conv2d(x, F.concat([self.score.kernel, self.box.kernel]), F.concat([self.score.bias, self.box.bias]))
        probability = F.sigmoid(heads[..., 1] - heads[..., 0])
        return F.transpose(probability, (0, 2, 1)), _image_to_net(heads[..., 2:])


class RNet(nn.Module):
    """Refine net: (N, 24, 24, 3) crops -> face probability (N,) and box regression (N, 4)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3, name="rnet_conv1"), nn.PReLU(28, name="rnet_prelu1")
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3, name="rnet_conv2"), nn.PReLU(48, name="rnet_prelu2")
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2, name="rnet_conv3"), nn.PReLU(64, name="rnet_prelu3")
        self.dense4, self.prelu4 = nn.Linear(576, 128, name="rnet_dense4"), nn.PReLU(128, name="rnet_prelu4")
        self.score = nn.Linear(128, 2, name="rnet_score")
        self.box = nn.Linear(128, 4, name="rnet_box")

    def forward(self, x):
        x = _conv_prelu(self.conv1, self.prelu1, _image_to_net(x))    # 22x22x28
        x = F.max_pool2d(x, 3, 2, padding="same")                     # 11x11
        x = _conv_prelu(self.conv2, self.prelu2, x)                   # 9x9x48
        x = F.max_pool2d(x, 3, 2)                                     # 4x4
        x = _conv_prelu(self.conv3, self.prelu3, x)                   # 3x3x64
        x = self.prelu4(self.dense4(F.reshape(x, (x.shape[0], -1))))   # flattened in NHWC order: 576
        return F.softmax(self.score(x))[:, 1], self.box(x)


class ONet(nn.Module):
    """Output net: (N, 48, 48, 3) crops -> face probability (N,), box regression (N, 4) and landmarks (N, 10) as
    [x1..x5, y1..y5] in the crop's unit coordinates (left eye, right eye, nose, left and right mouth corners)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3, name="onet_conv1"), nn.PReLU(32, name="onet_prelu1")
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3, name="onet_conv2"), nn.PReLU(64, name="onet_prelu2")
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3, name="onet_conv3"), nn.PReLU(64, name="onet_prelu3")
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2, name="onet_conv4"), nn.PReLU(128, name="onet_prelu4")
        self.dense5, self.prelu5 = nn.Linear(1152, 256, name="onet_dense5"), nn.PReLU(256, name="onet_prelu5")
        self.score = nn.Linear(256, 2, name="onet_score")
        self.box = nn.Linear(256, 4, name="onet_box")
        self.landmarks = nn.Linear(256, 10, name="onet_landmarks")

    def forward(self, x):
        x = _conv_prelu(self.conv1, self.prelu1, _image_to_net(x))    # 46x46x32
        x = F.max_pool2d(x, 3, 2, padding="same")                     # 23x23
        x = _conv_prelu(self.conv2, self.prelu2, x)                   # 21x21x64
        x = F.max_pool2d(x, 3, 2)                                     # 10x10
        x = _conv_prelu(self.conv3, self.prelu3, x)                   # 8x8x64
        x = F.max_pool2d(x, 2, 2, padding="same")                     # 4x4
        x = _conv_prelu(self.conv4, self.prelu4, x)                   # 3x3x128
        x = self.prelu5(self.dense5(F.reshape(x, (x.shape[0], -1))))   # flattened in NHWC order: 1152
        return F.softmax(self.score(x))[:, 1], self.box(x), self.landmarks(x)


class MTCNN(nn.Module):
    """The three networks together, as they are stored in one weights file."""
    architecture = "mtcnn"

    def __init__(self):
        super().__init__()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()


def mtcnn(path=None):
    """The pretrained MTCNN (frozen, inference mode); `path` is another tinyconv weights file of it.

    Without `path` the default weights are fetched and converted once (`tinyconv.weights.ensure('mtcnn')`).
    """
    model = MTCNN()
    weights.load(weights.ensure("mtcnn") if path is None else path, model)
    for p in model.parameters():
        p.requires_grad = False
    return model.eval()
