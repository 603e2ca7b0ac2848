"""FaceNet's Inception-ResNet-v1 (Schroff et al. 2015; Szegedy et al. 2016), as in the pretrained Keras file.

Read it next to the Inception-v4 paper (figures 10-15 show these exact blocks). One image goes through

    stem          160x160x3 -> 17x17x256   (Conv2d_1a_3x3 ... Conv2d_4b_3x3)
    Block35 x 5   17x17x256                (residual "Inception-A", scale 0.17)
    Mixed_6a      17x17x256 -> 8x8x896     ("Reduction-A")
    Block17 x 10  8x8x896                  (residual "Inception-B", scale 0.10)
    Mixed_7a      8x8x896 -> 3x3x1792      ("Reduction-B")
    Block8 x 6    3x3x1792                 (residual "Inception-C", scale 0.20; the last: 1.0 and no relu)
    AvgPool       -> 1792, Dropout 0.2, Bottleneck (dense 1792 -> 128, no bias), Bottleneck_BatchNorm

and the 128 numbers out are the face's encoding before L2 normalisation (`tinyconv.faces` normalises them).
The residual scales are read from the weights file (its `residual_scales` attribute, recorded from the Keras
graph's `*_ScaleSum` layers); the values above, the paper's, only serve a network built without a file.
Every layer carries the name it has in the weights file, so `named_parameters()` lists e.g.
`Block35_1_Branch_0_Conv2d_1x1/kernel` exactly as the HDF5 file stores it.

Shapes are NHWC: x is (N, H, W, 3). 160x160 is the trained size; smaller inputs work while every stride-2
"valid" layer still has at least 3 pixels to look at (about 75 px and up), which keeps gradient checks fast.
"""
import tinyconv.functional as F
from tinyconv import is_grad_enabled, nn, weights


class ConvBN(nn.Module):
    """Convolution (no bias) -> batch norm (beta only, eps 1e-3) -> relu: the unit every branch is made of.

    The batch norm layer is named `<name>_BatchNorm`, as in the weights file. In inference mode without gradients
    (encoding faces) the batch norm is folded into the convolution: relu(conv(x, w) * scale + shift), with
    (scale, shift) from `BatchNorm2d.affine`, in one pass over the output instead of four. Anything that needs a
    gradient (training, fine-tuning with frozen statistics, gradient checks) runs the three layers as written.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding="same", *, name):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              bias=False, name=name)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3, momentum=0.995, scale=False, name=f"{name}_BatchNorm")

    def forward(self, x):
        if self.bn.training or is_grad_enabled():
            return F.relu(self.bn(self.conv(x)))
        scale, shift = self.bn.affine(self.conv.kernel.dtype)
        return F.conv2d_relu(x, self.conv.kernel, shift, self.conv.stride, self.conv.padding, scale=scale)


PAPER_SCALES = {"Block35": 0.17, "Block17": 0.10, "Block8": 0.20}   # until a weights file gives its own


class Block35(nn.Module):
    """Inception-ResNet-A, 17x17x256 -> same: x + scale * up(concat(1x1 | 1x1,3x3 | 1x1,3x3,3x3)), then relu."""

    def __init__(self, index):
        super().__init__()
        p = self.prefix = f"Block35_{index}"
        self.scale = PAPER_SCALES["Block35"]
        self.branch_0 = ConvBN(256, 32, 1, name=f"{p}_Branch_0_Conv2d_1x1")
        self.branch_1 = [ConvBN(256, 32, 1, name=f"{p}_Branch_1_Conv2d_0a_1x1"),
                         ConvBN(32, 32, 3, name=f"{p}_Branch_1_Conv2d_0b_3x3")]
        self.branch_2 = [ConvBN(256, 32, 1, name=f"{p}_Branch_2_Conv2d_0a_1x1"),
                         ConvBN(32, 32, 3, name=f"{p}_Branch_2_Conv2d_0b_3x3"),
                         ConvBN(32, 32, 3, name=f"{p}_Branch_2_Conv2d_0c_3x3")]
        self.up = nn.Conv2d(96, 256, 1, padding="same", name=f"{p}_Conv2d_1x1")

    def forward(self, x):
        mixed = F.concat([self.branch_0(x), chain(self.branch_1, x), chain(self.branch_2, x)], axis=-1)
        return residual_relu(x, self.up, mixed, self.scale)


class Block17(nn.Module):
    """Inception-ResNet-B, 8x8x896 -> same: x + scale * up(concat(1x1 | 1x1,1x7,7x1)), then relu."""

    def __init__(self, index):
        super().__init__()
        p = self.prefix = f"Block17_{index}"
        self.scale = PAPER_SCALES["Block17"]
        self.branch_0 = ConvBN(896, 128, 1, name=f"{p}_Branch_0_Conv2d_1x1")
        self.branch_1 = [ConvBN(896, 128, 1, name=f"{p}_Branch_1_Conv2d_0a_1x1"),
                         ConvBN(128, 128, (1, 7), name=f"{p}_Branch_1_Conv2d_0b_1x7"),
                         ConvBN(128, 128, (7, 1), name=f"{p}_Branch_1_Conv2d_0c_7x1")]
        self.up = nn.Conv2d(256, 896, 1, padding="same", name=f"{p}_Conv2d_1x1")

    def forward(self, x):
        mixed = F.concat([self.branch_0(x), chain(self.branch_1, x)], axis=-1)
        return residual_relu(x, self.up, mixed, self.scale)


class Block8(nn.Module):
    """Inception-ResNet-C, 3x3x1792 -> same: x + scale * up(concat(1x1 | 1x1,1x3,3x1)), relu unless the last."""

    def __init__(self, index, scale=PAPER_SCALES["Block8"], activation=True):
        super().__init__()
        p = self.prefix = f"Block8_{index}"
        self.scale, self.activation = scale, activation
        self.branch_0 = ConvBN(1792, 192, 1, name=f"{p}_Branch_0_Conv2d_1x1")
        self.branch_1 = [ConvBN(1792, 192, 1, name=f"{p}_Branch_1_Conv2d_0a_1x1"),
                         ConvBN(192, 192, (1, 3), name=f"{p}_Branch_1_Conv2d_0b_1x3"),
                         ConvBN(192, 192, (3, 1), name=f"{p}_Branch_1_Conv2d_0c_3x1")]
        self.up = nn.Conv2d(384, 1792, 1, padding="same", name=f"{p}_Conv2d_1x1")

    def forward(self, x):
        mixed = F.concat([self.branch_0(x), chain(self.branch_1, x)], axis=-1)
        if self.activation:
            return residual_relu(x, self.up, mixed, self.scale)
        return x + self.scale * self.up(mixed)


class ReductionA(nn.Module):
    """Mixed_6a, 17x17x256 -> 8x8x896: concat(3x3/2 | 1x1,3x3,3x3/2 | max pool 3x3/2)."""

    def __init__(self):
        super().__init__()
        self.branch_0 = ConvBN(256, 384, 3, stride=2, padding="valid", name="Mixed_6a_Branch_0_Conv2d_1a_3x3")
        self.branch_1 = [ConvBN(256, 192, 1, name="Mixed_6a_Branch_1_Conv2d_0a_1x1"),
                         ConvBN(192, 192, 3, name="Mixed_6a_Branch_1_Conv2d_0b_3x3"),
                         ConvBN(192, 256, 3, stride=2, padding="valid", name="Mixed_6a_Branch_1_Conv2d_1a_3x3")]

    def forward(self, x):
        pooled = F.max_pool2d(x, 3, stride=2)  # Mixed_6a_Branch_2_MaxPool_1a_3x3
        return F.concat([self.branch_0(x), chain(self.branch_1, x), pooled], axis=-1)


class ReductionB(nn.Module):
    """Mixed_7a, 8x8x896 -> 3x3x1792: concat(1x1,3x3/2 | 1x1,3x3/2 | 1x1,3x3,3x3/2 | max pool 3x3/2)."""

    def __init__(self):
        super().__init__()
        self.branch_0 = [ConvBN(896, 256, 1, name="Mixed_7a_Branch_0_Conv2d_0a_1x1"),
                         ConvBN(256, 384, 3, stride=2, padding="valid", name="Mixed_7a_Branch_0_Conv2d_1a_3x3")]
        self.branch_1 = [ConvBN(896, 256, 1, name="Mixed_7a_Branch_1_Conv2d_0a_1x1"),
                         ConvBN(256, 256, 3, stride=2, padding="valid", name="Mixed_7a_Branch_1_Conv2d_1a_3x3")]
        self.branch_2 = [ConvBN(896, 256, 1, name="Mixed_7a_Branch_2_Conv2d_0a_1x1"),
                         ConvBN(256, 256, 3, name="Mixed_7a_Branch_2_Conv2d_0b_3x3"),
                         ConvBN(256, 256, 3, stride=2, padding="valid", name="Mixed_7a_Branch_2_Conv2d_1a_3x3")]

    def forward(self, x):
        pooled = F.max_pool2d(x, 3, stride=2)  # Mixed_7a_Branch_3_MaxPool_1a_3x3
        return F.concat([chain(self.branch_0, x), chain(self.branch_1, x), chain(self.branch_2, x), pooled],
                        axis=-1)


def residual_relu(x, up, mixed, scale):
    """relu(x + scale * up(mixed)), the end of a residual block: the 1x1 convolution `up` (nn.Conv2d) without its
    bias, then one pass (F.add_relu) adds the bias, scales, adds x and applies the relu."""
    return F.add_relu(x, F.conv2d(mixed, up.kernel, None, up.stride, up.padding), scale, up.bias)


def chain(layers, x):
    """Apply `layers` one after the other (a branch of an Inception block)."""
    for layer in layers:
        x = layer(x)
    return x


class InceptionResNetV1(nn.Module):
    """The whole network: x (N, H, W, 3) Tensor -> (N, 128) Tensor, the encoding before L2 normalisation."""

    architecture = "facenet"  # checked against the weights file's `architecture` attribute

    def __init__(self):
        super().__init__()
        self.stem = [ConvBN(3, 32, 3, stride=2, padding="valid", name="Conv2d_1a_3x3"),
                     ConvBN(32, 32, 3, padding="valid", name="Conv2d_2a_3x3"),
                     ConvBN(32, 64, 3, padding="same", name="Conv2d_2b_3x3")]
        # then MaxPool_3a_3x3 (3x3, stride 2)
        self.stem_2 = [ConvBN(64, 80, 1, padding="valid", name="Conv2d_3b_1x1"),
                       ConvBN(80, 192, 3, padding="valid", name="Conv2d_4a_3x3"),
                       ConvBN(192, 256, 3, stride=2, padding="valid", name="Conv2d_4b_3x3")]
        self.block35 = [Block35(i) for i in range(1, 6)]
        self.reduction_a = ReductionA()
        self.block17 = [Block17(i) for i in range(1, 11)]
        self.reduction_b = ReductionB()
        self.block8 = [Block8(i) for i in range(1, 6)] + [Block8(6, scale=1.0, activation=False)]
        self.bottleneck = nn.Linear(1792, 128, bias=False, name="Bottleneck")
        self.bottleneck_bn = nn.BatchNorm2d(128, eps=1e-3, momentum=0.995, scale=False,
                                            name="Bottleneck_BatchNorm")

    def residual_blocks(self):
        return [*self.block35, *self.block17, *self.block8]

    def set_residual_scales(self, scales):
        """Take each residual block's scale from {"Block35_1_ScaleSum": 0.17, ...} (a weights file's attribute)."""
        names = {f"{block.prefix}_ScaleSum": block for block in self.residual_blocks()}
        if set(scales) != set(names):
            missing, extra = sorted(set(names) - set(scales)), sorted(set(scales) - set(names))
            raise ValueError(f"facenet: residual_scales must name the {len(names)} residual blocks; missing "
                             f"{missing[:3]}, unexpected {extra[:3]}")
        for name, block in names.items():
            block.scale = float(scales[name])

    def forward(self, x):
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"facenet: expected images of shape (N, H, W, 3), got {tuple(x.shape)}")
        x = chain(self.stem, x)
        x = F.max_pool2d(x, 3, stride=2)  # MaxPool_3a_3x3
        x = chain(self.stem_2, x)
        x = chain(self.block35, x)
        x = self.reduction_a(x)
        x = chain(self.block17, x)
        x = self.reduction_b(x)
        x = chain(self.block8, x)
        x = F.global_avg_pool2d(x)  # AvgPool
        x = F.dropout(x, 0.2, self.training)  # Dropout
        return self.bottleneck_bn(self.bottleneck(x))


def facenet(path=None):
    """The pretrained FaceNet in inference mode; `path` is another tinyconv weights file of the same network.

    Without `path` the default weights are fetched and converted once (`tinyconv.weights.ensure('facenet')`).
    The residual scales come from the file's `residual_scales` attribute (the paper's values if it has none).
    """
    model = InceptionResNetV1()
    attrs = weights.load(weights.ensure("facenet") if path is None else path, model)
    if "residual_scales" in attrs:
        model.set_residual_scales(attrs["residual_scales"])
    return model.eval()
