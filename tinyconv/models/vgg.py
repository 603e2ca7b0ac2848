"""VGG16 and VGG19 (Simonyan & Zisserman 2015) as feature extractors for style transfer: the convolutional part only.

Five blocks of 3x3 convolutions (stride 1, padding 1: "same"), each followed by ReLU; 2x2 pooling (max, or average
as Gatys et al. suggest) before the first convolution of blocks 2-5. The widths and depths of the blocks are those
of `tinyconv.weights.architectures` (which checks the files). Layers carry the weights file's names:
`block1_conv1` ... `block5_conv3` (VGG19: up to `block5_conv4`), each with a `kernel` (3, 3, in, out) and a `bias`.
Inputs follow the convention recorded in the weights file: x = (rgb[..., order] - pixel_mean) * pixel_scale, e.g.
"caffe" (BGR, 0..255 minus the BGR mean 103.939, 116.779, 123.68) for the Keras/ONNX weights, RGB minus the RGB
mean for MatConvNet's. A model without loaded weights uses its architecture's default (caffe).
"""
import re

import numpy as np

import tinyconv.functional as F
from tinyconv import nn, weights
from tinyconv.tensor import Tensor
from tinyconv.weights.architectures import ARCHITECTURES, VGG_DEPTHS, VGG_WIDTHS


class VGG(nn.Module):
    """The convolutional layers of VGG16 or VGG19. `features(x, layers)` returns the activations asked for."""

    def __init__(self, architecture="vgg16", pooling="max"):
        super().__init__()
        if architecture not in VGG_DEPTHS:
            raise ValueError(f"VGG: unknown architecture {architecture!r} (known: {', '.join(VGG_DEPTHS)})")
        if pooling not in ("max", "avg"):
            raise ValueError(f"VGG: pooling must be 'max' or 'avg', got {pooling!r}")
        self.architecture, self.pooling = architecture, pooling
        self.convs, self.pooled, channels = [], set(), 3
        for block, (width, depth) in enumerate(zip(VGG_WIDTHS, VGG_DEPTHS[architecture]), 1):
            for i in range(1, depth + 1):
                self.convs.append(nn.Conv2d(channels, width, 3, padding=1, name=f"block{block}_conv{i}"))
                channels = width
            if block > 1:
                self.pooled.add(f"block{block}_conv1")      # the layers whose input is pooled first
        self.layer_names = [conv.name for conv in self.convs]
        self.set_preprocessing(ARCHITECTURES[architecture])

    def set_preprocessing(self, attrs):
        """Take the input convention from a weights file's attributes: channel_order, pixel_mean, pixel_scale."""
        order = attrs["channel_order"]
        if order not in ("RGB", "BGR"):
            raise ValueError(f"{self.architecture}: channel_order must be RGB or BGR, got {order!r}")
        self.channel_order = order
        self.pixel_mean = np.asarray(attrs["pixel_mean"], dtype=np.float32).reshape(3)   # float32, as the weights
        self.pixel_scale = float(attrs["pixel_scale"])

    def load_weights(self, path):
        """Load a tinyconv weights file of this architecture, with its input convention, and freeze it (gradients
        go to the image only)."""
        self.set_preprocessing(weights.load(path, self))
        for p in self.parameters():
            p.requires_grad = False
        self.eval()
        return self

    def layer_name(self, name):
        """The weights-file name of a layer: 'block4_conv2' as is; 'conv4_2' or 'relu4_2' (the paper's) mapped."""
        match = re.fullmatch(r"(?:conv|relu)(\d)_(\d)", name)
        full = f"block{match[1]}_conv{match[2]}" if match else name
        if full not in self.layer_names:
            raise ValueError(f"{self.architecture}: no layer {name!r} (layers: {', '.join(self.layer_names)})")
        return full

    def convs_to(self, layer):
        """The convolutions from the input up to `layer` (its name as in `layer_name`), in order."""
        return self.convs[:self.layer_names.index(self.layer_name(layer)) + 1]

    def pool(self, x):
        """The 2x2 pooling (max or average) that comes before each layer in `self.pooled`."""
        return (F.max_pool2d if self.pooling == "max" else F.avg_pool2d)(x, 2)

    def features(self, x, layers):
        """dict layer name -> activation (1, h, w, C) after ReLU, for x (1, H, W, 3) preprocessed.

        Runs only as deep as the deepest layer in `layers` (names as in `layer_name`; the dict uses the names given).
        """
        wanted = {self.layer_name(name): name for name in layers}
        _, acts = self.run(x, self.convs_to(max(wanted, key=self.layer_names.index)), wanted)
        return {wanted[name]: a for name, a in acts.items()}

    def run(self, x, convs, layers=()):
        """(output, {name: activation}) of x through consecutive `convs` (each after the pooling of `self.pooled`),
        with the activations (after ReLU) of those named in `layers` (weights-file names)."""
        acts = {}
        for conv in convs:
            if conv.name in self.pooled:
                x = self.pool(x)
            x = F.conv2d_relu(x, conv.kernel, conv.bias, conv.stride, conv.padding)   # = F.relu(conv(x))
            if conv.name in layers:
                acts[conv.name] = x
        return x, acts

    def segments(self, layers):
        """The convolutions up to the deepest of `layers`, cut before each pooling: one list per block."""
        runs = []
        for conv in self.convs_to(max(map(self.layer_name, layers), key=self.layer_names.index)):
            if conv.name in self.pooled or not runs:
                runs.append([])
            runs[-1].append(conv)
        return runs

    def preprocess(self, rgb):
        """(H, W, 3) RGB in 0..255 -> (1, H, W, 3) array of the model's dtype: (channels reordered - mean) * scale."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"{self.architecture}.preprocess: expected an (H, W, 3) RGB image, got shape {rgb.shape}")
        dtype = self.convs[0].kernel.dtype
        ordered = rgb[None, :, :, ::-1] if self.channel_order == "BGR" else rgb[None]
        return ((ordered.astype(dtype) - self.pixel_mean.astype(dtype)) * dtype.type(self.pixel_scale)).copy()

    def deprocess(self, x):
        """The inverse of `preprocess`: (1, H, W, 3) (array or Tensor) -> (H, W, 3) float RGB, 0..255 if in range."""
        x = x.data if isinstance(x, Tensor) else np.asarray(x)
        pixels = x[0] / x.dtype.type(self.pixel_scale) + self.pixel_mean.astype(x.dtype)
        return pixels[:, :, ::-1] if self.channel_order == "BGR" else pixels

    def activation_shapes(self, height, width, deepest):
        """[(name, (1, h, w, C)), ...] of every conv layer up to `deepest`, for an input of height x width."""
        shapes = []
        for conv in self.convs_to(deepest):
            if conv.name in self.pooled:
                height, width = height // 2, width // 2
            shapes.append((conv.name, (1, height, width, conv.kernel.shape[3])))
        return shapes


def vgg16(path=None, pooling="max"):
    """VGG16 with the ImageNet weights (`tinyconv.weights.ensure('vgg16')` fetches them the first time)."""
    return VGG("vgg16", pooling).load_weights(weights.ensure("vgg16") if path is None else path)


def vgg19(path=None, pooling="max"):
    """VGG19 from a converted weights file; by default the course's network as fetched once by
    `tinyconv.weights.ensure('vgg19')`: an 8-bit quantised, lossy copy (see tinyconv/weights/sources.py)."""
    return VGG("vgg19", pooling).load_weights(weights.ensure("vgg19") if path is None else path)
