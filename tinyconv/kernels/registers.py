"""Small arrays on the stack of a Numba kernel, for accumulators that LLVM keeps in registers.

An array made with np.empty inside a kernel lives on the heap (Numba's runtime allocates it) and LLVM keeps it in
memory: each multiply-add of a loop that accumulates into it loads and stores it again. An array on the kernel's
own stack, of a shape fixed at compile time, is different: once the loops over it are unrolled every index is a
constant, LLVM promotes each cell to a register (SROA) and its SLP vectoriser packs the cells into vector registers
(tinyconv/__init__.py turns SLP vectorisation on; Numba leaves it off by default).
"""
import numpy as np
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic


def stack_array(shape):
    """A function make(dtype) for @njit kernels: a new uninitialised C-contiguous array of `shape` (ints, fixed
    here) and dtype (np.float32 or np.float64, e.g. x.dtype) on the stack of the kernel that calls it."""
    shape = tuple(int(s) for s in shape)
    count = int(np.prod(shape))

    @intrinsic
    def alloca(typingctx, dtype):
        def codegen(context, builder, signature, args):
            # in the entry block of the calling function: the array lives as long as that call
            return cgutils.alloca_once(builder, context.get_value_type(dtype.dtype), size=count)
        return types.CPointer(dtype.dtype)(dtype), codegen

    @njit(inline="always")   # inlined by Numba: the alloca lands in the caller's frame, not in a returning one
    def make(dtype):
        return carray(alloca(dtype), shape)
    return make
