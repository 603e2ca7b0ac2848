"""The geometry of a sliding window (convolution, max and average pooling), checked in one place.

    out = (in + pad_before + pad_after - window) // stride + 1          along each of height and width

`window(name, x_shape, window_hw, stride, padding)` reads stride and padding in every form the operations accept,
checks them against the NHWC input, and returns (stride, padding, output size) with padding as
((top, bottom), (left, right)). tinyconv.functional calls it to resolve the arguments, and the kernels call it
again on the resolved values to size their outputs: one set of rules and messages for every operation.
"""
import numbers


def pair(value, name, what):
    """(a, b) from an int or a pair of ints; ValueError naming `what` otherwise."""
    if isinstance(value, numbers.Integral):
        return int(value), int(value)
    try:
        value = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {what} must be an int or a pair of ints, got {value!r}") from None
    if len(value) != 2:
        raise ValueError(f"{name}: {what} must be an int or a pair of ints, got {value}")
    return value


def resolve_padding(padding, in_hw, kernel_hw, stride, name="conv2d"):
    """((top, bottom), (left, right)) from an int, a pair, explicit pairs, 'valid' or 'same'.

    'same' follows TensorFlow: out = ceil(in / stride), total = max((out - 1) * stride + k - in, 0), the smaller
    half of it at the top/left.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            pads = []
            for n, k, s in zip(in_hw, kernel_hw, stride):
                total = max((-(-n // s) - 1) * s + k - n, 0)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(f"{name}: padding must be 'same', 'valid', an int or pairs, got {padding!r}")
    if isinstance(padding, numbers.Integral):
        return (int(padding),) * 2, (int(padding),) * 2
    padding = tuple(padding)
    if len(padding) == 2 and all(isinstance(p, numbers.Integral) for p in padding):
        return (int(padding[0]),) * 2, (int(padding[1]),) * 2
    if len(padding) == 2 and all(len(p) == 2 for p in padding):
        return tuple((int(p[0]), int(p[1])) for p in padding)
    raise ValueError(f"{name}: cannot read padding {padding!r}")


def window(name, x_shape, window_hw, stride, padding, pool=False):
    """Checked (stride, padding, (Ho, Wo)) of a window_hw window sliding over NHWC input of shape `x_shape`.

    stride: int or pair; padding: see resolve_padding. pool=True also requires every padding to be smaller than
    the window (a window of padding only would have nothing to pool). ValueError "<name>: ..." otherwise.
    """
    if len(x_shape) != 4:
        raise ValueError(f"{name}: input must be NHWC with 4 dimensions, got shape {tuple(x_shape)}")
    window_hw = pair(window_hw, name, "window size")
    if min(window_hw) < 1:
        raise ValueError(f"{name}: window size must be positive, got {window_hw}")
    stride = pair(stride, name, "stride")
    if min(stride) < 1:
        raise ValueError(f"{name}: stride must be positive, got {stride}")
    pads = resolve_padding(padding, x_shape[1:3], window_hw, stride, name)
    if min(min(p) for p in pads) < 0:
        raise ValueError(f"{name}: padding must not be negative, got {pads}")
    if pool and any(p >= k for pair_, k in zip(pads, window_hw) for p in pair_):
        raise ValueError(f"{name}: padding {pads} must be smaller than the window {window_hw} "
                         "(a window of padding only has nothing to pool)")
    out_hw = tuple((n + lo + hi - k) // s + 1 for n, (lo, hi), k, s in zip(x_shape[1:3], pads, window_hw, stride))
    if min(out_hw) < 1:
        raise ValueError(f"{name}: window {window_hw} does not fit in input {tuple(x_shape[1:3])} with padding "
                         f"{pads}")
    return stride, pads, out_hw


def conv_window(x_shape, w_shape, stride, padding):
    """`window` for conv2d of NHWC input by an HWIO kernel of shape `w_shape`, whose channels must match."""
    if len(x_shape) == 4 and x_shape[3] != w_shape[2]:
        raise ValueError(f"conv2d: input has {x_shape[3]} channels (shape {tuple(x_shape)}) but the kernel expects "
                         f"{w_shape[2]} (kernel shape {tuple(w_shape)})")
    return window("conv2d", x_shape, w_shape[:2], stride, padding)
