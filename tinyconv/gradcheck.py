"""Check an analytic gradient against central differences, the way a student would by hand.

For f mapping tensors to a tensor, pick a fixed random direction r of the output's shape and let L = sum(r * f).
backward() gives dL/dx for every input x; central differences give, for each checked coordinate i,
    (L(x + eps e_i) - L(x - eps e_i)) / (2 eps),
with error O(eps^2). Both must agree within atol + rtol * |numerical|. Run in float64: in float32 the rounding
error of L (about 1e-7 |L|) divided by 2 eps swamps the comparison.
"""
import numpy as np

from .tensor import Tensor, no_grad


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3, samples=None, seed=0):
    """True if backward() of `fn(*inputs)` matches central differences; otherwise AssertionError naming the worst entry.

    inputs: Tensors or arrays. Arrays become float64 leaves; a float64 Tensor is used as it is and perturbed in place,
      so parameters of a model that `fn` closes over can be checked too.
    samples: check only this many random coordinates of each input (None: all of them).
    """
    rng = np.random.default_rng(seed)
    tensors = []
    for i, x in enumerate(inputs):
        t = x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float64))
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {t.dtype}; gradient checks need float64 (cast with .astype)")
        t.requires_grad, t.grad = True, None
        tensors.append(t)

    out = fn(*tensors)
    direction = rng.standard_normal(out.shape)
    (out * direction).sum().backward()

    def loss():
        with no_grad():
            return float((fn(*tensors).data * direction).sum())

    for i, t in enumerate(tensors):
        analytic = np.zeros_like(t.data) if t.grad is None else t.grad
        coords = range(t.size) if samples is None or samples >= t.size else \
            rng.choice(t.size, size=samples, replace=False)
        for c in coords:
            # perturb t.data itself at its multi-index (t.data.reshape(-1) would be a copy for a non-contiguous array)
            index = tuple(int(i) for i in np.unravel_index(c, t.shape))
            original = t.data[index]
            t.data[index] = original + eps
            up = loss()
            t.data[index] = original - eps
            down = loss()
            t.data[index] = original
            numerical = (up - down) / (2 * eps)
            exact = analytic[index]
            if abs(exact - numerical) > atol + rtol * abs(numerical):
                raise AssertionError(f"gradcheck: input {i} at {index}: analytic {exact:.8g}, "
                                     f"numerical {numerical:.8g} (difference {abs(exact - numerical):.3g})")
    return True
