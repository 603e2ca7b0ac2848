"""tinyconv: a readable pure-NumPy CNN library — Tensor with reverse-mode autograd, Numba conv/pool kernels,
FaceNet face recognition and Gatys neural style transfer.

Import order matters for speed on few cores: OpenBLAS's and Numba's worker threads otherwise keep spinning after
each call and starve each other (see benchmarks/). These defaults only apply if numpy has not been imported yet
and the user has not set them.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .tensor import Tensor, no_grad, is_grad_enabled  # noqa: E402
from . import functional  # noqa: E402  (binds Tensor's operators)
from .gradcheck import gradcheck  # noqa: E402
from . import nn, optim  # noqa: E402

__all__ = ["Tensor", "no_grad", "is_grad_enabled", "functional", "gradcheck", "nn", "optim"]
__version__ = "0.1.0"
