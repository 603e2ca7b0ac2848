"""Convolution, pooling and PReLU kernels over plain NumPy arrays (Numba loops + BLAS), and the face detector's
non-maximum suppression and crop-and-resize; no Tensor logic here.

Activations are NHWC (N, H, W, C), kernels HWIO (kh, kw, C, O); dtype float32 or float64 (outputs follow the
input); stride (sh, sw) and padding ((top, bottom), (left, right)) arrive already resolved by tinyconv.functional.
"""
from tinyconv.kernels.activation import prelu_forward
from tinyconv.kernels.conv import conv2d_forward, conv2d_grad_input, conv2d_grad_weight
from tinyconv.kernels.nms import nms
from tinyconv.kernels.pool import (avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward,
                                   max_pool2d_forward)
from tinyconv.kernels.resize import crop_resize

__all__ = ["conv2d_forward", "conv2d_grad_input", "conv2d_grad_weight", "max_pool2d_forward",
           "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward", "nms", "crop_resize", "prelu_forward"]
