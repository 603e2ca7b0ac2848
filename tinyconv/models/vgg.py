"""VGG16 and VGG19 (Simonyan & Zisserman 2015) as feature extractors for style transfer: the convolutional part only.

Five blocks of 3x3 convolutions (stride 1, padding 1: "same"), each followed by ReLU; 2x2 pooling (max, or average
as Gatys et al. suggest) between the blocks. Layers carry the weights file's names: `block1_conv1` ...
`block5_conv3` (VGG19: up to `block5_conv4`), each with a `kernel` (3, 3, in, out) and a `bias` (out,).
Inputs follow the weights' "caffe" convention: (1, H, W, 3), BGR, 0..255 minus the BGR mean
(103.939, 116.779, 123.68).
"""
import re

import numpy as np

import tinyconv.functional as F
from tinyconv import nn, weights
from tinyconv.tensor import Tensor

WIDTHS = (64, 128, 256, 512, 512)
DEPTHS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)


class VGG(nn.Module):
    """The convolutional layers of VGG16 or VGG19. `features(x, layers)` returns the activations asked for."""

    def __init__(self, architecture="vgg16", pooling="max"):
        super().__init__()
        if architecture not in DEPTHS:
            raise ValueError(f"VGG: unknown architecture {architecture!r} (known: {', '.join(DEPTHS)})")
        if pooling not in ("max", "avg"):
            raise ValueError(f"VGG: pooling must be 'max' or 'avg', got {pooling!r}")
        self.architecture, self.pooling = architecture, pooling
        self.convs, channels = [], 3
        for block, (width, depth) in enumerate(zip(WIDTHS, DEPTHS[architecture]), 1):
            for i in range(1, depth + 1):
                self.convs.append(nn.Conv2d(channels, width, 3, padding=1, name=f"block{block}_conv{i}"))
                channels = width
        self.layer_names = [conv.name for conv in self.convs]

    def load_weights(self, path):
        """Load a tinyconv weights file of this architecture and freeze it (gradients go to the image only)."""
        weights.load(path, self)
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

    def features(self, x, layers):
        """dict layer name -> activation (1, h, w, C) after ReLU, for x (1, H, W, 3) preprocessed.

        Runs only as deep as the deepest layer in `layers` (names as in `layer_name`; the dict uses the names given).
        """
        wanted = {self.layer_name(name): name for name in layers}
        deepest = max(self.layer_names.index(name) for name in wanted)
        pool = F.max_pool2d if self.pooling == "max" else F.avg_pool2d
        out = {}
        for conv in self.convs[:deepest + 1]:
            if conv.name.endswith("_conv1") and conv.name != "block1_conv1":
                x = pool(x, 2)
            x = F.relu(conv(x))
            if conv.name in wanted:
                out[wanted[conv.name]] = x
        return out

    def preprocess(self, rgb):
        """(H, W, 3) RGB in 0..255 -> (1, H, W, 3) array of the model's dtype: BGR minus the BGR mean."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"{self.architecture}.preprocess: expected an (H, W, 3) RGB image, got shape {rgb.shape}")
        dtype = self.convs[0].kernel.dtype
        return (rgb[None, :, :, ::-1].astype(dtype) - BGR_MEAN.astype(dtype)).copy()

    def deprocess(self, x):
        """The inverse of `preprocess`: (1, H, W, 3) (array or Tensor) -> (H, W, 3) float RGB, 0..255 if in range."""
        x = x.data if isinstance(x, Tensor) else np.asarray(x)
        return (x[0] + BGR_MEAN.astype(x.dtype))[:, :, ::-1]

    def activation_shapes(self, height, width, deepest):
        """[(name, (1, h, w, C)), ...] of every conv layer up to `deepest`, for an input of height x width."""
        shapes = []
        for conv in self.convs[:self.layer_names.index(self.layer_name(deepest)) + 1]:
            if conv.name.endswith("_conv1") and conv.name != "block1_conv1":
                height, width = height // 2, width // 2
            shapes.append((conv.name, (1, height, width, conv.kernel.shape[3])))
        return shapes


def vgg16(path=None, pooling="max"):
    """VGG16 with the ImageNet weights (`tinyconv.weights.ensure('vgg16')` fetches them the first time)."""
    return VGG("vgg16", pooling).load_weights(weights.ensure("vgg16") if path is None else path)


def vgg19(path, pooling="max"):
    """VGG19 from a converted weights file (`python -m tinyconv.weights convert --from FILE --arch vgg19`)."""
    return VGG("vgg19", pooling).load_weights(path)
