"""tinyconv: a readable pure-NumPy CNN library — Tensor with reverse-mode autograd, Numba conv/pool kernels,
FaceNet face recognition and Gatys neural style transfer.

Thread pools matter more than kernel tuning on few cores: after each call OpenBLAS's worker threads keep spinning
for a while and starve Numba's (and the other way round). Letting them sleep at once made a conv -> relu -> pool
-> conv -> backward step 1.6x faster on 2 cores (median 36 -> 22.5 ms, benchmarks/bench_threads.py). These
defaults apply only if numpy has not been imported yet, and never override a value the user set.

NUMBA_SLP_VECTORIZE=1 (unless the user set it) turns on LLVM's SLP vectoriser, which Numba leaves off: it packs
the register-blocked accumulators of kernels/dot.py into vector registers (FaceNet's Winograd products: 117-136
GFLOP/s on 2 cores with it, about 5 without). Numba reads that variable once, when it is imported, and its
on-disk cache does not record it, so the setting is also given to Numba's config in case numba came first.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")
os.environ.setdefault("NUMBA_SLP_VECTORIZE", "1")

from numba.core import config as _numba_config  # noqa: E402
_numba_config.SLP_VECTORIZE = os.environ["NUMBA_SLP_VECTORIZE"] != "0"

from .tensor import Tensor, no_grad, is_grad_enabled  # noqa: E402
from . import functional  # noqa: E402  (binds Tensor's operators)
from .gradcheck import gradcheck  # noqa: E402
from . import nn, optim  # noqa: E402

__all__ = ["Tensor", "no_grad", "is_grad_enabled", "functional", "gradcheck", "nn", "optim"]
__version__ = "0.1.0"
