"""Layers: `Module` (parameters, buffers, train/eval, state dicts) and `Conv2d`, `BatchNorm2d`, `Linear`, `PReLU`,
`Sequential`.

A layer is named at construction, with the name its weights have in the weights file (`block1_conv1`,
`Conv2d_1a_3x3_BatchNorm`, ...). `named_parameters()` returns `"<layer>/<param>"` keys, e.g. `"block1_conv1/kernel"`,
which are exactly the dataset paths of tinyconv's HDF5 weights files. Sub-modules are found through attributes
(a Module, or a list/tuple of Modules); an unnamed layer is named by its attribute path.
"""
import math

import numpy as np

from . import functional as F
from .tensor import Tensor


class Module:
    def __init__(self, name=None):
        self.name = name
        self.training = True
        self._params = {}   # own parameters: 'kernel' -> Tensor
        self._buffers = {}  # own non-trained state: 'moving_mean' -> ndarray

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def add_parameter(self, key, array):
        """Register a trainable array; returns its Tensor (requires_grad=True)."""
        self._params[key] = Tensor(array, requires_grad=True)
        return self._params[key]

    def add_buffer(self, key, array):
        self._buffers[key] = np.asarray(array, dtype=np.float32)
        return self._buffers[key]

    # ----- the tree of modules ------------------------------------------------------------------------------------
    def children(self):
        """(attribute path, module) of the direct sub-modules, in definition order."""
        for attr, value in vars(self).items():
            if isinstance(value, Module):
                yield attr, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{attr}.{i}", item

    def named_modules(self, prefix=""):
        """(name, module) for this module and every module below it; a module's own name wins over its path."""
        name = self.name or prefix
        yield name, self
        for attr, child in self.children():
            yield from child.named_modules(f"{prefix}.{attr}" if prefix else attr)

    def named_parameters(self):
        """dict "<layer>/<param>" -> Tensor, e.g. "block1_conv1/kernel"."""
        return {_join(layer, key): t for layer, m in self.named_modules() for key, t in m._params.items()}

    def named_buffers(self):
        """dict "<layer>/<buffer>" -> ndarray, e.g. "Conv2d_1a_3x3_BatchNorm/moving_mean"."""
        return {_join(layer, key): a for layer, m in self.named_modules() for key, a in m._buffers.items()}

    def parameters(self):
        return list(self.named_parameters().values())

    def state_dict(self):
        """Every parameter and buffer as an ndarray, keyed as in the weights file."""
        state = {k: t.data for k, t in self.named_parameters().items()}
        state.update(self.named_buffers())
        return state

    def load_state_dict(self, state):
        """Copy arrays into the parameters and buffers; every key must be present with its exact shape."""
        params, buffers = self.named_parameters(), self.named_buffers()
        missing = sorted((set(params) | set(buffers)) - set(state))
        unexpected = sorted(set(state) - set(params) - set(buffers))
        if missing or unexpected:
            raise ValueError(f"load_state_dict: missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
                             f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        for key, value in state.items():
            target = params[key].data if key in params else buffers[key]
            value = np.asarray(value)
            if value.shape != target.shape:
                raise ValueError(f"load_state_dict: layer {key.rsplit('/', 1)[0]}: {key} expected shape "
                                 f"{target.shape}, found {value.shape}")
            target[...] = value
        return self

    # ----- modes and housekeeping ---------------------------------------------------------------------------------
    def train(self, mode=True):
        for _, m in self.named_modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze (True) every parameter of this module and the modules below it; returns self.

        A frozen parameter gets no gradient: backward neither computes nor accumulates one, and
        `trainable_parameters()` leaves it out.
        """
        for p in self.parameters():
            p.requires_grad = requires_grad
            p.grad = None
        return self

    def trainable_parameters(self):
        """The parameters that require grad (what an optimiser should update)."""
        return [p for p in self.parameters() if p.requires_grad]

    def astype(self, dtype):
        """Cast every parameter and buffer (e.g. to np.float64 for a gradient check); returns self."""
        for _, m in self.named_modules():
            for t in m._params.values():
                t.data = t.data.astype(dtype)
            for key, a in m._buffers.items():
                m._buffers[key] = a.astype(dtype)
        return self

    def num_parameters(self):
        return sum(p.size for p in self.parameters())


def _join(layer, key):
    """"<layer>/<key>", or just the key for a lone unnamed layer."""
    return f"{layer}/{key}" if layer else key


def _glorot_uniform(shape, fan_in, fan_out):
    """Keras's default initialisation: uniform in +-sqrt(6 / (fan_in + fan_out))."""
    limit = math.sqrt(6 / (fan_in + fan_out))
    return np.random.uniform(-limit, limit, shape).astype(np.float32)


class Conv2d(Module):
    """y = conv2d(x, kernel) + bias. x (N, H, W, in) -> (N, Ho, Wo, out); kernel (kh, kw, in, out)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding="valid", bias=True, name=None):
        super().__init__(name)
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.stride, self.padding = stride, padding
        self.kernel = self.add_parameter(
            "kernel", _glorot_uniform((kh, kw, in_channels, out_channels), kh * kw * in_channels,
                                      kh * kw * out_channels))
        self.bias = self.add_parameter("bias", np.zeros(out_channels, np.float32)) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.kernel, self.bias, self.stride, self.padding)


class BatchNorm2d(Module):
    """Batch normalisation over the last axis (channels), with Keras's parameter names and momentum convention.

    scale=False drops gamma and center=False drops beta (as in FaceNet, which has beta only).
    In training mode it normalises with the batch's statistics and updates its buffers moving_mean and
    moving_variance: running = momentum * running + (1 - momentum) * batch, with the unbiased batch variance
    (Keras's convention). In inference mode it uses the buffers. (`F.batch_norm` itself is pure.)
    """

    def __init__(self, num_features, eps=1e-3, momentum=0.99, center=True, scale=True, name=None):
        super().__init__(name)
        self.eps, self.momentum = eps, momentum
        self.gamma = self.add_parameter("gamma", np.ones(num_features, np.float32)) if scale else None
        self.beta = self.add_parameter("beta", np.zeros(num_features, np.float32)) if center else None
        self.add_buffer("moving_mean", np.zeros(num_features))
        self.add_buffer("moving_variance", np.ones(num_features))

    def forward(self, x):
        mean, var = self._buffers["moving_mean"], self._buffers["moving_variance"]
        if not self.training:
            return F.batch_norm(x, mean, var, self.gamma, self.beta, self.eps)
        data = F.tensor(x).data
        mu, sigma2 = F.batch_moments(data)
        count = data.size // data.shape[-1]
        mean *= self.momentum
        mean += (1 - self.momentum) * mu
        var *= self.momentum
        var += (1 - self.momentum) * sigma2 * (count / (count - 1) if count > 1 else 1.0)
        return F.batch_norm(x, None, None, self.gamma, self.beta, self.eps, training=True)

    def affine(self, dtype=np.float32):
        """(scale, shift), each (C,): the inference batch norm as y = x * scale + shift, with
        scale = gamma / sqrt(moving_variance + eps) and shift = beta - moving_mean * scale (gamma 1, beta 0 when
        absent). Computed in float64 from the current values, then cast to `dtype`. A convolution before it can take
        it in: conv(x, w) * scale + shift = conv(x, w * scale) + shift ("folding" the batch norm)."""
        mean, var = self._buffers["moving_mean"], self._buffers["moving_variance"]
        scale = 1 / np.sqrt(var.astype(np.float64) + self.eps)
        if self.gamma is not None:
            scale = scale * self.gamma.data
        shift = -mean * scale
        if self.beta is not None:
            shift = shift + self.beta.data
        return scale.astype(dtype), shift.astype(dtype)


class Linear(Module):
    """y = x @ kernel + bias. x (..., in) -> (..., out); kernel (in, out) as in Keras's Dense."""

    def __init__(self, in_features, out_features, bias=True, name=None):
        super().__init__(name)
        self.kernel = self.add_parameter("kernel", _glorot_uniform((in_features, out_features), in_features,
                                                                   out_features))
        self.bias = self.add_parameter("bias", np.zeros(out_features, np.float32)) if bias else None

    def forward(self, x):
        return F.linear(x, self.kernel, self.bias)


class PReLU(Module):
    """y = x where x > 0, alpha * x elsewhere; `alpha` (C,) is one learned slope per channel (the last axis), named
    as Keras names it."""

    def __init__(self, num_features, init=0.25, name=None):
        super().__init__(name)
        self.alpha = self.add_parameter("alpha", np.full(num_features, init, np.float32))

    def forward(self, x):
        return F.prelu(x, self.alpha)


class Sequential(Module):
    """Apply modules (or plain functions such as F.relu) one after another."""

    def __init__(self, *layers, name=None):
        super().__init__(name)
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
