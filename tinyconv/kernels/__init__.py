"""Numba/BLAS kernels over plain NumPy arrays (NHWC activations, HWIO kernels): no Tensor logic here.

tensor-free building blocks for tinyconv.functional: every function takes and returns ndarrays, dtype float32 or
float64 (the output follows the input), with stride (sh, sw) and padding ((top, bottom), (left, right)) already
resolved by the caller.
"""
from tinyconv.kernels.conv import conv2d_forward, conv2d_grad_input, conv2d_grad_weight
from tinyconv.kernels.pool import (avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward,
                                   max_pool2d_forward)

__all__ = ["conv2d_forward", "conv2d_grad_input", "conv2d_grad_weight", "max_pool2d_forward",
           "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward"]
