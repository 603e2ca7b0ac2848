"""Every differentiable operation of tinyconv: the forward computation and, right below it, its backward.

Each operation follows the same pattern:

    def op(x, ...):
        out = <forward with NumPy or a Numba kernel>
        def vjp(g):                       # g = dL/d(out)
            return (<dL/dx>, ...)         # one entry per input, with the formula in a comment
        return Tensor.from_op(out, (x, ...), vjp, "op")

`vjp` is the vector-Jacobian product: it turns the gradient of the loss with respect to the output into the
gradients with respect to the inputs. `Tensor.backward` calls them in reverse order (see tensor.py).
Images are NHWC (batch, height, width, channels); convolution kernels are HWIO (kh, kw, in, out).
At the bottom, Tensor's operators (+, -, *, /, **, @, [], .sum(), ...) are bound to these functions.
"""
import builtins
import functools
import math
import numbers

import numpy as np

from .kernels import activation as activation_kernels
from .kernels import conv as conv_kernels
from .kernels import dot as dot_kernels
from .kernels import geometry
from .kernels import pool as pool_kernels
from .kernels import winograd as winograd_kernels
from .kernels import winograd_rows
from .kernels.geometry import resolve_padding  # noqa: F401  (part of this module's interface: F.resolve_padding)
from .tensor import Tensor, as_array, is_grad_enabled


# ----- helpers ------------------------------------------------------------------------------------------------------
def tensor(x, dtype=None):
    """`x` as a Tensor: arrays and numbers become leaves, cast to `dtype` if given; a Tensor is returned as it is,
    or cast differentiably (`astype`) when `dtype` is given and differs."""
    if isinstance(x, Tensor):
        return x if dtype is None else astype(x, dtype)
    return Tensor(as_array(x, dtype))


def _pair(a, b):
    """Both operands as Tensors of one dtype. A constant (number or array) takes the dtype of the tensor it meets;
    of two tensors of different dtypes, the narrower one is cast (differentiably) to the wider one."""
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype != b.dtype:
        wide = np.result_type(a.dtype, b.dtype)
        return astype(a, wide), astype(b, wide)
    if isinstance(a, Tensor):
        return a, tensor(b, a.dtype)
    if isinstance(b, Tensor):
        return tensor(a, b.dtype), b
    return tensor(a), tensor(b)


def astype(x, dtype):
    """x cast to `dtype` (float32 or float64); the gradient is cast back to x's dtype."""
    x = tensor(x)
    if x.dtype == dtype:
        return x
    return Tensor.from_op(x.data.astype(dtype), (x,), lambda g: (g.astype(x.dtype),), "astype")  # dx = g


def unbroadcast(g, shape):
    """Sum `g` down to `shape`: the gradient of NumPy broadcasting (a copied value collects every copy's gradient)."""
    if g.shape == tuple(shape):
        return g
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _check_broadcast(name, a, b):
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None


# ----- arithmetic ---------------------------------------------------------------------------------------------------
def add(a, b):
    a, b = _pair(a, b)
    _check_broadcast("add", a, b)

    def vjp(g):  # d(a+b)/da = 1, d(a+b)/db = 1
        return unbroadcast(g, a.shape), unbroadcast(g, b.shape)
    return Tensor.from_op(a.data + b.data, (a, b), vjp, "add")


def sub(a, b):
    a, b = _pair(a, b)
    _check_broadcast("sub", a, b)

    def vjp(g):  # d(a-b)/da = 1, d(a-b)/db = -1
        return unbroadcast(g, a.shape), unbroadcast(-g, b.shape)
    return Tensor.from_op(a.data - b.data, (a, b), vjp, "sub")


def mul(a, b):
    a, b = _pair(a, b)
    _check_broadcast("mul", a, b)

    def vjp(g):  # d(ab)/da = b, d(ab)/db = a
        return unbroadcast(g * b.data, a.shape), unbroadcast(g * a.data, b.shape)
    return Tensor.from_op(a.data * b.data, (a, b), vjp, "mul")


def div(a, b):
    a, b = _pair(a, b)
    _check_broadcast("div", a, b)

    def vjp(g):  # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
        return unbroadcast(g / b.data, a.shape), unbroadcast(-g * a.data / (b.data * b.data), b.shape)
    return Tensor.from_op(a.data / b.data, (a, b), vjp, "div")


def neg(x):
    x = tensor(x)
    return Tensor.from_op(-x.data, (x,), lambda g: (-g,), "neg")  # d(-x)/dx = -1


def pow(x, p):
    """x ** p, elementwise; p a number or a tensor (then d/dp = x^p log x, defined for x > 0)."""
    x, p = _pair(x, p)
    _check_broadcast("pow", x, p)
    out = x.data ** p.data

    def vjp(g):  # d(x^p)/dx = p x^(p-1), d(x^p)/dp = x^p log(x)
        gx = unbroadcast(g * p.data * x.data ** (p.data - 1), x.shape)
        gp = unbroadcast(g * out * np.log(np.where(x.data > 0, x.data, 1)), p.shape) if p.requires_grad else None
        return gx, gp
    return Tensor.from_op(out, (x, p), vjp, "pow")


def exp(x):
    x = tensor(x)
    out = np.exp(x.data)
    return Tensor.from_op(out, (x,), lambda g: (g * out,), "exp")  # d e^x/dx = e^x


def log(x):
    x = tensor(x)
    return Tensor.from_op(np.log(x.data), (x,), lambda g: (g / x.data,), "log")  # d log x/dx = 1/x


def sqrt(x):
    x = tensor(x)
    out = np.sqrt(x.data)
    return Tensor.from_op(out, (x,), lambda g: (g / (2 * out),), "sqrt")  # d sqrt(x)/dx = 1/(2 sqrt(x))


def relu(x):
    x = tensor(x)
    out = np.maximum(x.data, 0)
    return Tensor.from_op(out, (x,), lambda g: (g * (out > 0),), "relu")  # d relu/dx = 1[x>0] = 1[relu(x)>0]


def add_relu(x, y, scale=1.0, bias=None):
    """relu(x + scale * (y + bias)) in one pass, without the intermediate arrays: the residual connection of
    Inception-ResNet (x the block's input, y its up-projection without its bias, scale a number, bias (C,) over the
    last axis or None). x and y of one shape."""
    x, y = _pair(x, y)
    if x.shape != y.shape:
        raise ValueError(f"add_relu: shapes {x.shape} and {y.shape} differ")
    channels = x.shape[-1] if x.ndim else 1
    bias = None if bias is None else tensor(bias, x.dtype)
    if bias is not None and bias.shape != (channels,):
        raise ValueError(f"add_relu: bias must have shape ({channels},) (the last axis), got {bias.shape}")
    scale = x.dtype.type(scale)
    out = activation_kernels.add_relu(np.ascontiguousarray(x.data), np.ascontiguousarray(y.data), scale,
                                      np.zeros(channels, x.dtype) if bias is None else bias.data,
                                      np.empty(x.shape, x.dtype))

    def vjp(g):  # z = x + s (y + b), out = relu(z):  dx = g 1[z > 0],  dy = s g 1[z > 0],  db = dy summed per
        gz = g * (out > 0)                                 # channel   (1[z > 0] = 1[out > 0])
        gy = scale * gz
        if bias is None:
            return gz, gy
        return gz, gy, gy.reshape(-1, channels).sum(axis=0) if bias.requires_grad else None
    return Tensor.from_op(out, (x, y) if bias is None else (x, y, bias), vjp, "add_relu")


def maximum(a, b):
    """Elementwise max; where a == b the gradient is split half and half."""
    a, b = _pair(a, b)
    _check_broadcast("maximum", a, b)
    a_wins = ((a.data > b.data) + 0.5 * (a.data == b.data)).astype(a.dtype)   # 1, 1/2 or 0, in the inputs' dtype

    def vjp(g):  # d max(a,b)/da = 1[a>b], d/db = 1[b>a]
        return unbroadcast(g * a_wins, a.shape), unbroadcast(g * (1 - a_wins), b.shape)
    return Tensor.from_op(np.maximum(a.data, b.data), (a, b), vjp, "maximum")


def sigmoid(x):
    x = tensor(x)
    out = 0.5 * (1 + np.tanh(0.5 * x.data))  # = 1/(1+e^-x) without overflow
    return Tensor.from_op(out, (x,), lambda g: (g * out * (1 - out),), "sigmoid")  # s' = s(1-s)


def tanh(x):
    x = tensor(x)
    out = np.tanh(x.data)
    return Tensor.from_op(out, (x,), lambda g: (g * (1 - out * out),), "tanh")  # tanh' = 1 - tanh^2


def prelu(x, slope, bias=None):
    """Parametric ReLU of z = x + bias: z where z > 0, slope * z elsewhere; `slope` (C,) holds one learned slope per
    channel (the last axis of x). `bias` (C,), optional, is added in the same pass: give it the bias of the
    convolution before (called without its bias) and the convolution's output is walked once instead of twice."""
    x, slope = _pair(x, slope)
    if slope.ndim != 1 or x.ndim == 0 or slope.shape[0] != x.shape[-1]:
        raise ValueError(f"prelu: slope must have shape ({x.shape[-1] if x.ndim else '?'},) (one per channel, "
                         f"the last axis), got {slope.shape} for input {x.shape}")
    bias = None if bias is None else tensor(bias, x.dtype)
    if bias is not None and bias.shape != slope.shape:
        raise ValueError(f"prelu: bias must have shape {slope.shape} (one per channel), got {bias.shape}")
    shift = np.zeros(slope.shape, x.dtype) if bias is None else bias.data
    out = activation_kernels.prelu_forward(np.ascontiguousarray(x.data), slope.data.astype(x.dtype, copy=False),
                                           shift)

    def vjp(g):  # y = z (z > 0), a z (z <= 0), z = x + b:  dy/dx = dy/dz = 1[z>0] + a 1[z<=0],
        #          dy/db = dy/dz summed per channel,  dy/da = z 1[z<=0] summed per channel
        z = x.data if bias is None else x.data + shift
        positive = z > 0
        gx = np.where(positive, g, g * slope.data)
        ga = np.where(positive, 0, g * z).reshape(-1, slope.shape[0]).sum(axis=0) if slope.requires_grad else None
        if bias is None:
            return gx, ga
        return gx, ga, gx.reshape(-1, slope.shape[0]).sum(axis=0) if bias.requires_grad else None
    return Tensor.from_op(out, (x, slope) if bias is None else (x, slope, bias), vjp, "prelu")


def softmax(x, axis=-1):
    """e^x / sum(e^x) along `axis` (computed as e^(x - max) so that large values do not overflow)."""
    x = tensor(x)
    e = np.exp(x.data - x.data.max(axis=axis, keepdims=True))
    out = e / e.sum(axis=axis, keepdims=True)

    def vjp(g):  # y = softmax(x):  dy_i/dx_j = y_i (1[i=j] - y_j),  so dx = y (g - <g, y>)
        return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)
    return Tensor.from_op(out, (x,), vjp, "softmax")


def clip(x, low, high):
    """Values limited to [low, high]; the gradient passes only where x was inside."""
    x = tensor(x)
    inside = (x.data >= low) & (x.data <= high)
    return Tensor.from_op(np.clip(x.data, low, high), (x,), lambda g: (g * inside,), "clip")


# ----- reductions ---------------------------------------------------------------------------------------------------
def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    return tuple(a % ndim for a in axes)


def _expand(g, shape, axes):
    """Re-insert the reduced axes into g (as size 1) so that it broadcasts against the input."""
    return g.reshape([1 if i in axes else n for i, n in enumerate(shape)])


def sum(x, axis=None, keepdims=False):
    x = tensor(x)
    axes = _axes(axis, x.ndim)

    def vjp(g):  # every summed element gets the output's gradient
        return (np.broadcast_to(_expand(g, x.shape, axes), x.shape),)
    return Tensor.from_op(x.data.sum(axis=axes, keepdims=keepdims), (x,), vjp, "sum")


def mean(x, axis=None, keepdims=False):
    x = tensor(x)
    axes = _axes(axis, x.ndim)
    count = math.prod(x.shape[a] for a in axes)

    def vjp(g):  # d mean/dx_i = 1/count
        return (np.broadcast_to(_expand(g, x.shape, axes) / count, x.shape),)
    return Tensor.from_op(x.data.mean(axis=axes, keepdims=keepdims), (x,), vjp, "mean")


def max(x, axis=None, keepdims=False):
    """Largest value over `axis`; when several elements tie for the max, the gradient is shared equally."""
    x = tensor(x)
    axes = _axes(axis, x.ndim)
    top = x.data.max(axis=axes, keepdims=True)

    def vjp(g):  # d max/dx_i = 1[x_i is the max] / (number of maxima)
        winners = (x.data == top).astype(x.dtype)
        return (_expand(g, x.shape, axes) * winners / winners.sum(axis=axes, keepdims=True),)
    return Tensor.from_op(top if keepdims else top.squeeze(axes), (x,), vjp, "max")


# ----- linear algebra and shapes ------------------------------------------------------------------------------------
def matmul(a, b):
    """a @ b with NumPy's rules (1-D operands, batched stacks with broadcasting)."""
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not fit (inner dimensions differ)")
    a2 = a.data[None, :] if a.ndim == 1 else a.data
    b2 = b.data[:, None] if b.ndim == 1 else b.data
    out = a2 @ b2
    full_shape = out.shape

    def vjp(g):  # C = A B:  dA = dC B^T,  dB = A^T dC
        g2 = g.reshape(full_shape)
        ga = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        gb = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return Tensor.from_op(out, (a, b), vjp, "matmul")


def gram(a):
    """G = A A^T for A (n, m): the (n, n) inner products of A's rows (used for the style of a layer)."""
    a = tensor(a)
    if a.ndim != 2:
        raise ValueError(f"gram: A must be a matrix (n, m), got shape {a.shape}")

    def vjp(g):  # G = A A^T:  dA = (dG + dG^T) A   (one matrix product, where matmul's rule takes two)
        return ((g + g.T) @ a.data,)
    return Tensor.from_op(a.data @ a.data.T, (a,), vjp, "gram")


def reshape(x, *shape):
    x = tensor(x)
    shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], numbers.Integral) else shape
    try:
        out = x.data.reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape shape {x.shape} into {tuple(shape)}") from None
    return Tensor.from_op(out, (x,), lambda g: (g.reshape(x.shape),), "reshape")


def transpose(x, *axes):
    """Permute axes (reverse them when none are given)."""
    x = tensor(x)
    axes = axes[0] if len(axes) == 1 and not isinstance(axes[0], numbers.Integral) else axes
    axes = tuple(axes) or tuple(reversed(range(x.ndim)))
    inverse = tuple(np.argsort(axes))
    return Tensor.from_op(x.data.transpose(axes), (x,), lambda g: (g.transpose(inverse),), "transpose")


def concat(tensors, axis=-1):
    """Join tensors along `axis` (all other sizes equal); each input gets back its own slice of the gradient."""
    tensors = [tensor(t) for t in tensors]
    try:
        out = np.concatenate([t.data for t in tensors], axis=axis)
    except ValueError:
        raise ValueError(f"concat: shapes {[t.shape for t in tensors]} do not fit along axis {axis}") from None
    bounds = np.cumsum([t.shape[axis] for t in tensors])[:-1]
    return Tensor.from_op(out, tuple(tensors), lambda g: tuple(np.split(g, bounds, axis=axis)), "concat")


def _is_basic_index(index):
    index = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (slice, numbers.Integral, type(None), type(Ellipsis))) for i in index)


def getitem(x, index):
    """x[index] (slices, integers, arrays, masks); the gradient is scattered back to the selected places."""
    x = tensor(x)
    index = index.data if isinstance(index, Tensor) else index

    def vjp(g):
        gx = np.zeros_like(x.data)
        if _is_basic_index(index):
            gx[index] = g                # a view: every element selected once
        else:
            np.add.at(gx, index, g)      # fancy indexing may select an element several times
        return (gx,)
    return Tensor.from_op(x.data[index], (x,), vjp, "getitem")


def pad(x, pad_width, value=0.0):
    """Pad with a constant; pad_width as in np.pad ((before, after) per axis). The gradient is the inner slice."""
    x = tensor(x)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (x.ndim, 2))
    out = np.pad(x.data, widths, constant_values=value)
    inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
    return Tensor.from_op(out, (x,), lambda g: (g[inner],), "pad")


def l2_normalize(x, axis=-1, eps=1e-10):
    """x / sqrt(max(sum(x^2), eps)) along `axis` (TensorFlow's rule): unit vectors, as FaceNet's encodings."""
    x = tensor(x)
    squared = (x.data * x.data).sum(axis=axis, keepdims=True)
    clipped = squared < eps
    norm = np.sqrt(np.maximum(squared, eps))
    out = x.data / norm

    def vjp(g):  # y = x/|x|:  dx = (g - y <g, y>) / |x|   (just g/sqrt(eps) where the norm was clipped)
        along = np.where(clipped, 0, (g * out).sum(axis=axis, keepdims=True))
        return ((g - out * along) / norm,)
    return Tensor.from_op(out, (x,), vjp, "l2_normalize")


# ----- convolution and pooling --------------------------------------------------------------------------------------
CONV_ALGORITHM = "auto"   # "auto" or a CONV_PATHS name: see conv_algorithm (tests set it to force one path)
CONV_PATHS = {            # name -> (forward, grad_input) kernels, conv.conv2d_forward's signatures
    "im2col": (conv_kernels.conv2d_forward, conv_kernels.conv2d_grad_input),
    "winograd2": (functools.partial(winograd_kernels.conv2d_forward, m=2),
                  functools.partial(winograd_kernels.conv2d_grad_input, m=2)),
    "winograd4": (functools.partial(winograd_kernels.conv2d_forward, m=4),
                  functools.partial(winograd_kernels.conv2d_grad_input, m=4)),
    "winograd4_rows": (functools.partial(winograd_rows.conv2d_forward, m=4),
                       functools.partial(winograd_kernels.conv2d_grad_input, m=4)),
}
ROWS_MAX_C = 80           # winograd4_rows takes 3x3 layers with up to this many input channels (conv_algorithm)


def conv_algorithm(x_shape, w_shape, stride, pads):
    """The name of the CONV_PATHS entry conv2d uses for the forward pass and the input gradient of this shape.

    "auto", for 3x3 stride-1 kernels (every other kernel takes im2col), by the channel counts and the output size
    per image, never by the batch size (an image gets the same arithmetic alone or in a batch), in this order.
    Measured forward times in process on 2 cores (ms):
    - Winograd F(4x4, 3x3) by rows of tiles in one Numba pass (winograd_rows.py) when the kernel has at most
      ROWS_MAX_C input channels and at least 16 on both sides, on outputs of 16x16 or more: BLAS runs those thin
      products badly, and the register-blocked products and row-long transforms beat it up to 80 input channels.
      FaceNet at batch 32: 77x77 32->64 48-50 (BLAS F(2x2) 177-187, im2col 147-174), 38x38 80->192 54 (BLAS
      F(2x2) 93, im2col 111; batch 1: 2.1, 3.1, 3.6); VGG at 224 px: conv1_2 23.5 (BLAS F(4x4) 28.6, F(2x2)
      35.9), conv2_1 9.5 (10.7, 15.2); 40x40 64->64 1.0 (BLAS F(2x2) 1.1), 20x20 64->128 0.50 (0.70). With 128
      input channels the two are even (56x56 5.4 against BLAS F(4x4) 5.5, 18x18 1.1 against F(2x2) 0.9), with
      192 BLAS wins (17x17 at batch 32: 43 against 37). Each tile is computed on its own, so these layers give an
      image the same bits alone and in a batch, F(4x4)'s error included.
    - Winograd F(4x4, 3x3) through BLAS when both channel counts are at least 64 and the output at least 48x48: the
      fewest multiplications. VGG conv3_1 at 224 px 12.2 (F(2x2) 12.5, im2col 19.0); at 512 px (style transfer)
      conv2_2 to conv4_3 1.6-3.6x im2col's speed, 1.3-1.9x F(2x2)'s. Its float32 error is 5x F(2x2)'s
      (winograd.py): harmless for style transfer; through BLAS it once moved a FaceNet face's distance between
      its encoding in a batch and alone from 6e-7 to 1.2e-6 (the course's check is 1e-6). No FaceNet layer at
      160 px takes it (tests/test_facenet.py checks).
    - Winograd F(2x2, 3x3) through BLAS when both channel counts are at least 16 and the output at least 16x16
      (256 pixels, so that image_tiles keeps each image's products apart): VGG conv4_2 at 224 px 25 (im2col 31;
      F(4x4)'s kernel transform, 4x the kernel, costs more than it saves on 28x28), 16x16 512->512 7.4 (im2col
      9.3), 20x20 256->256 3.3 (4.5); FaceNet's 17x17 192->192 at batch 32 37 (im2col 61), batch 1 1.5-2.0
      (1.9).
    - im2col (kernels/conv.py) otherwise: small images, few channels, RGB inputs. It is the general case and the
      reference. It also holds the direct kernel that convolutions with at most conv.DIRECT_MAX_C input
      channels take, checked first: faster than Winograd there (MTCNN P-Net's 16 -> 32 at 381x285: 19.8 against
      34.6). CONV_ALGORITHM = "im2col", "winograd2", "winograd4" or "winograd4_rows" forces that
      path (Winograd only where it applies). The kernel gradient always uses conv.conv2d_grad_weight.
    """
    if CONV_ALGORITHM == "im2col" or not winograd_kernels.supports(w_shape, stride, pads):
        return "im2col"
    if CONV_ALGORITHM != "auto":
        return CONV_ALGORITHM
    if w_shape[2] <= conv_kernels.DIRECT_MAX_C:
        return "im2col"     # conv2d_forward's direct kernel: faster on few input channels (MTCNN P-Net's 16 -> 32)
    channels = builtins.min(w_shape[2:])
    side = builtins.min(x_shape[1] + builtins.sum(pads[0]) - 2, x_shape[2] + builtins.sum(pads[1]) - 2)
    if channels >= 16 and side >= 16 and w_shape[2] <= ROWS_MAX_C:
        return "winograd4_rows"
    if channels >= 64 and side >= 48:
        return "winograd4"
    if channels >= 16 and side >= 16:
        return "winograd2"
    return "im2col"


def conv2d(x, w, b=None, stride=1, padding=0):
    """2-D cross-correlation. x (N, H, W, Cin), w (kh, kw, Cin, Cout), b (Cout,) -> (N, Ho, Wo, Cout).

    stride: int or (sh, sw). padding: int, (ph, pw), ((top, bottom), (left, right)), 'valid' or 'same'.
    """
    out, parents, vjp = _conv2d(x, w, b, stride, padding)
    if b is not None:
        out += parents[2].data
    return Tensor.from_op(out, parents, vjp, "conv2d")


def conv2d_relu(x, w, b=None, stride=1, padding=0, scale=None):
    """relu(conv2d(x, w) * scale + b) as one op that keeps only its output, for the memory of large images.

    scale: None (1) or a constant (Cout,) array, e.g. an inference batch norm folded in (nn.BatchNorm2d.affine:
    conv(x, w) * scale + shift = conv(x, w * scale) + shift, without rewriting the kernel).
    The pair relu(conv2d(...)) keeps the convolution's output, the ReLU's output and its mask until backward; here
    scale, bias and ReLU are one in-place pass over the output (kernels/activation.py) and the mask is read back
    from the output (out > 0 exactly where the convolution was > 0): 4 bytes per float32 value instead of 9.
    """
    out, parents, conv_vjp = _conv2d(x, w, b, stride, padding, scale)
    channels, dtype = out.shape[3], out.dtype
    scale = np.ones(channels, dtype) if scale is None else as_array(scale, dtype)
    activation_kernels.scale_shift_relu(out, scale, np.zeros(channels, dtype) if b is None else parents[2].data)

    def vjp(g):  # d relu(z)/dz = 1[z > 0] = 1[out > 0], then the VJP of z = conv2d(x, w) * scale + b
        return conv_vjp(g * (out > 0))
    return Tensor.from_op(out, parents, vjp, "conv2d_relu")


def _conv2d(x, w, b, stride, padding, scale=None):
    """(conv(x, w) ndarray without scale and bias, parents, VJP of z = conv(x, w) * scale + b): shared by conv2d
    and conv2d_relu, which apply the bias (and the scale) to the output."""
    x, w = tensor(x), tensor(w)
    if w.ndim != 4:
        raise ValueError(f"conv2d: kernel must be (kh, kw, in, out), got shape {w.shape}")
    if x.dtype != w.dtype:
        raise TypeError(f"conv2d: input is {x.dtype} but kernel is {w.dtype}; cast one of them")
    stride, pads, _ = geometry.conv_window(x.shape, w.shape, stride, padding)
    if scale is not None:
        if isinstance(scale, Tensor) and scale.requires_grad:
            raise TypeError("conv2d: the scale is a constant and cannot require grad")
        scale = as_array(scale, x.dtype)
        if scale.shape != (w.shape[3],):
            raise ValueError(f"conv2d: scale must have shape ({w.shape[3]},), got {scale.shape}")
    xd, wd = np.ascontiguousarray(x.data), np.ascontiguousarray(w.data)
    forward, grad_input = CONV_PATHS[conv_algorithm(x.shape, w.shape, stride, pads)]
    out = forward(xd, wd, stride, pads)
    parents = (x, w)
    if b is not None:
        b = tensor(b, x.dtype)
        if b.shape != (w.shape[3],):
            raise ValueError(f"conv2d: bias must have shape ({w.shape[3]},), got {b.shape}")
        parents = (x, w, b)

    def vjp(g):
        # z = (x * w) scale + b, * a correlation:  gc = g scale;  dx = gc correlated with the flipped kernel
        # ("full"), dw = x correlated with gc, db = g summed over batch and positions
        gc = np.ascontiguousarray(g if scale is None else g * scale)
        gx = grad_input(gc, wd, x.shape, stride, pads) if x.requires_grad else None
        gw = conv_kernels.conv2d_grad_weight(xd, gc, w.shape, stride, pads) if w.requires_grad else None
        if b is None:
            return gx, gw
        return gx, gw, g.sum(axis=(0, 1, 2)) if b.requires_grad else None
    return out, parents, vjp


def max_pool2d(x, size, stride=None, padding="valid"):
    """Max over each size[0] x size[1] window. x (N, H, W, C) -> (N, Ho, Wo, C); stride defaults to size.

    Padded cells never win. Ties: the first maximal cell of the window in row-major order gets the gradient.
    """
    x = tensor(x)
    stride, pads, _ = geometry.window("max_pool2d", x.shape, size, size if stride is None else stride, padding, True)
    size = geometry.pair(size, "max_pool2d", "window size")
    out, argmax = pool_kernels.max_pool2d_forward(np.ascontiguousarray(x.data), size, stride, pads,
                                                  argmax=is_grad_enabled() and x.requires_grad)

    def vjp(g):  # the gradient goes to the cell that was the max, nowhere else
        return (pool_kernels.max_pool2d_backward(np.ascontiguousarray(g), argmax, x.shape, size, stride, pads),)
    return Tensor.from_op(out, (x,), vjp, "max_pool2d")


def avg_pool2d(x, size, stride=None, padding="valid"):
    """Mean over each window. Padded cells are not counted: each output averages only the real cells of its
    window (TensorFlow's rule), so border outputs of 'same' pooling are not darkened."""
    x = tensor(x)
    stride, pads, _ = geometry.window("avg_pool2d", x.shape, size, size if stride is None else stride, padding, True)
    size = geometry.pair(size, "avg_pool2d", "window size")
    out = pool_kernels.avg_pool2d_forward(np.ascontiguousarray(x.data), size, stride, pads)

    def vjp(g):  # each real cell of a window gets g / (number of real cells in that window)
        return (pool_kernels.avg_pool2d_backward(np.ascontiguousarray(g), x.shape, size, stride, pads),)
    return Tensor.from_op(out, (x,), vjp, "avg_pool2d")


def global_avg_pool2d(x):
    """(N, H, W, C) -> (N, C): the mean of each channel over all positions."""
    x = tensor(x)
    if x.ndim != 4:
        raise ValueError(f"global_avg_pool2d: input must be NHWC, got shape {x.shape}")
    return mean(x, axis=(1, 2))


# ----- normalisation, regularisation, dense -------------------------------------------------------------------------
def batch_moments(x):
    """(mean, biased variance) of NHWC (or (N, C)) data `x` over every axis but the last: shapes (C,), (C,)."""
    axes = tuple(range(x.ndim - 1))
    return x.mean(axis=axes), x.var(axis=axes)


def batch_norm(x, mean=None, var=None, gamma=None, beta=None, eps=1e-3, training=False):
    """y = gamma * (x - mu) / sqrt(sigma^2 + eps) + beta over the last axis (channels). A pure function.

    Inference (training=False): mu, sigma^2 are the given running `mean` and `var` (constant arrays of shape (C,)).
    Training: mu, sigma^2 are the batch's statistics over all other axes (`batch_moments`) and the gradient flows
    through them; `mean` and `var` must be None. Nothing is updated here: `nn.BatchNorm2d` keeps the running
    statistics and updates them.
    """
    x = tensor(x)
    channels = x.shape[-1]
    for what, arr in (("mean", mean), ("var", var)):
        if training and arr is not None:
            raise ValueError(f"batch_norm: training uses the batch's statistics and updates no running {what} "
                             f"(nn.BatchNorm2d does); pass {what}=None")
        if not training and arr is None:
            raise ValueError(f"batch_norm: inference needs the running {what}")
        if isinstance(arr, Tensor) and arr.requires_grad:
            raise TypeError(f"batch_norm: the running {what} is a constant and cannot require grad")
    for what, arr in (("mean", mean), ("var", var), ("gamma", gamma), ("beta", beta)):
        if arr is not None and as_array(arr).shape != (channels,):
            raise ValueError(f"batch_norm: {what} must have shape ({channels},), got {as_array(arr).shape}")
    axes = tuple(range(x.ndim - 1))
    if training:
        mu, sigma2 = batch_moments(x.data)
    else:
        mu, sigma2 = as_array(mean, x.dtype), as_array(var, x.dtype)
    inv_std = (1 / np.sqrt(sigma2 + eps)).astype(x.dtype)
    xhat = x.data - mu
    xhat *= inv_std
    parents = [x]
    out = xhat
    if gamma is not None:
        gamma = tensor(gamma, x.dtype)
        out = out * gamma.data
        parents.append(gamma)
    if beta is not None:
        beta = tensor(beta, x.dtype)
        if out is xhat and training:   # training's VJP needs xhat itself
            out = out + beta.data
        else:                          # out is ours alone: add in place, no new array
            out += beta.data
        parents.append(beta)

    def vjp(g):
        gxhat = g * gamma.data if gamma is not None else g
        if not x.requires_grad:
            gx = None
        elif training:  # through the batch statistics: dx = (gxhat - mean(gxhat) - xhat mean(gxhat xhat)) / std
            gx = inv_std * (gxhat - gxhat.mean(axis=axes) - xhat * (gxhat * xhat).mean(axis=axes))
        else:           # fixed statistics: dx = gxhat / std
            gx = gxhat * inv_std
        grads = [gx]
        if gamma is not None:  # d/dgamma = sum g xhat (not computed for a frozen gamma)
            grads.append((g * xhat).sum(axis=axes) if gamma.requires_grad else None)
        if beta is not None:   # d/dbeta = sum g
            grads.append(g.sum(axis=axes) if beta.requires_grad else None)
        return tuple(grads)
    return Tensor.from_op(out, tuple(parents), vjp, "batch_norm")


def dropout(x, rate, training, rng=None):
    """Inverted dropout: in training each value is zeroed with probability `rate` and the rest scaled by
    1/(1-rate), so nothing changes at inference (training=False returns x itself)."""
    x = tensor(x)
    if not training or rate == 0:
        return x
    if not 0 <= rate < 1:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate}")
    rng = np.random.default_rng() if rng is None else rng
    keep = (rng.random(x.shape) >= rate).astype(x.dtype) / (1 - rate)
    return Tensor.from_op(x.data * keep, (x,), lambda g: (g * keep,), "dropout")  # dx = g * mask / (1-rate)


def linear(x, w, b=None):
    """Dense layer: x (..., in) @ w (in, out) + b (out,) -> (..., out). w in Keras's (in, out) layout."""
    x, w = _pair(x, w)
    if w.ndim != 2 or x.shape[-1] != w.shape[0]:
        raise ValueError(f"linear: input shape {x.shape} does not fit weight shape {w.shape} (expected (..., "
                         f"{w.shape[0] if w.ndim == 2 else '?'}))")
    out = dot_kernels.dot(x.data.reshape(-1, w.shape[0]), w.data).reshape(*x.shape[:-1], w.shape[1])
    parents = (x, w)
    if b is not None:
        b = tensor(b, x.dtype)
        if b.shape != (w.shape[1],):
            raise ValueError(f"linear: bias must have shape ({w.shape[1]},), got {b.shape}")
        out += b.data
        parents = (x, w, b)

    def vjp(g):  # y = x w + b:  dx = g w^T,  dw = x^T g (over all leading axes),  db = sum g
        x2, g2 = x.data.reshape(-1, w.shape[0]), g.reshape(-1, w.shape[1])
        grads = (g @ w.data.T, x2.T @ g2)
        return grads if b is None else grads + (g2.sum(axis=0),)
    return Tensor.from_op(out, parents, vjp, "linear")


# ----- Tensor's operators and methods, bound to the functions above --------------------------------------------------
Tensor.__add__ = add
Tensor.__radd__ = lambda self, other: add(other, self)
Tensor.__sub__ = sub
Tensor.__rsub__ = lambda self, other: sub(other, self)
Tensor.__mul__ = mul
Tensor.__rmul__ = lambda self, other: mul(other, self)
Tensor.__truediv__ = div
Tensor.__rtruediv__ = lambda self, other: div(other, self)
Tensor.__pow__ = pow
Tensor.__rpow__ = lambda self, other: pow(other, self)
Tensor.__matmul__ = matmul
Tensor.__rmatmul__ = lambda self, other: matmul(other, self)
Tensor.__neg__ = neg
Tensor.__getitem__ = getitem
Tensor.__lt__ = lambda self, other: self.data < as_array(other)
Tensor.__le__ = lambda self, other: self.data <= as_array(other)
Tensor.__gt__ = lambda self, other: self.data > as_array(other)
Tensor.__ge__ = lambda self, other: self.data >= as_array(other)
Tensor.sum = sum
Tensor.mean = mean
Tensor.max = max
Tensor.exp = exp
Tensor.log = log
Tensor.sqrt = sqrt
Tensor.relu = relu
Tensor.reshape = reshape
Tensor.transpose = transpose
