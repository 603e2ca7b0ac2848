"""`Tensor`: an ndarray that remembers how it was made, and `backward`, which walks that record in reverse.

Every differentiable operation (in `tinyconv.functional`) computes its result with NumPy and then calls
`Tensor.from_op(data, parents, vjp)`. When gradients are wanted, the new tensor keeps its parents and `vjp`, the
operation's vector-Jacobian product: given dL/d(out) it returns dL/d(parent) for every parent. `backward` orders the
graph topologically (iteratively, so a 400-layer network cannot hit Python's recursion limit) and runs each `vjp` once,
summing the gradients that reach a node along different paths.

After a backward pass the graph is freed (each node drops its `vjp` and the arrays it captured) unless
`retain_graph=True`; walking a freed graph again raises a clear error instead of returning wrong numbers.
"""
import contextlib

import numpy as np

_grad_enabled = True


@contextlib.contextmanager
def no_grad():
    """Inside this block operations record no graph: results have no parents and no gradient (inference mode)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


def as_array(value, dtype=None):
    """The float ndarray behind `value` (Tensor, ndarray, number, list): a float64 or float32 ndarray keeps its
    dtype; everything else (lists, numbers, integer arrays) becomes float32."""
    if isinstance(value, Tensor):
        return value.data
    array = np.asarray(value)
    if dtype is not None:
        return array.astype(dtype, copy=False)
    if isinstance(value, (np.ndarray, np.floating)) and array.dtype in (np.float64, np.float32):
        return array
    if array.dtype.kind in "biuf":
        return array.astype(np.float32)
    raise TypeError(f"Tensor: cannot make a tensor from an array of dtype {array.dtype}")


class Tensor:
    """An n-dimensional float array with an optional gradient.

    data: the ndarray (float32 by default; float64 input stays float64, for gradient checks).
    requires_grad: whether gradients should flow to this tensor; leaves that require grad collect `.grad`.
    grad: after `backward`, an ndarray of the same shape: dL/d(this tensor), accumulated across calls.
    """

    __array_priority__ = 100  # so that `ndarray + Tensor` calls Tensor.__radd__

    def __init__(self, data, requires_grad=False):
        self.data = as_array(data)
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._parents = ()
        self._vjp = None
        self._freed = False
        self.op = None  # name of the operation that produced this tensor (None for a leaf)

    @classmethod
    def from_op(cls, data, parents, vjp, op):
        """Result of an operation: `vjp(g)` maps dL/d(out) to a tuple of dL/d(parent) (None where not needed)."""
        out = cls(data)
        if _grad_enabled and any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._parents = parents
            out._vjp = vjp
            out.op = op
        return out

    # ----- plain properties -------------------------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = f", op={self.op}" if self.op else (", requires_grad=True" if self.requires_grad else "")
        return f"Tensor(shape={self.shape}, dtype={self.dtype}{grad})"

    def numpy(self):
        """The data as an ndarray (not a copy)."""
        return self.data

    def item(self):
        return self.data.item()

    def detach(self):
        """A new leaf tensor sharing the data, cut from the graph."""
        return Tensor(self.data)

    def zero_grad(self):
        self.grad = None

    @property
    def is_leaf(self):
        return self._vjp is None and not self._freed

    # ----- reverse mode -----------------------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate dL/d(leaf) into `.grad` of every leaf that requires grad; L is this tensor.

        grad: dL/d(this tensor), an ndarray or Tensor of this shape; may be omitted for a single-element tensor.
        retain_graph: keep the graph so that backward can be called on it again.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input had requires_grad=True, "
                               "or it was computed under no_grad())")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: grad must be given for a non-scalar output of shape {self.shape}")
            grad = np.ones_like(self.data)
        grad = as_array(grad, self.data.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"backward: grad has shape {grad.shape}, the tensor has shape {self.shape}")

        order = self._topological_order()
        grads = {id(self): grad}
        summed = set()  # ids whose gradient is a sum made here, so it may be added to in place
        for node in order:
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._vjp is None:  # a leaf
                node.grad = g.copy() if node.grad is None else node.grad + g
                continue
            parent_grads = node._vjp(g)
            if len(parent_grads) != len(node._parents):
                raise RuntimeError(f"backward: the VJP of {node.op} returned {len(parent_grads)} gradients for "
                                   f"{len(node._parents)} inputs")
            for i, (parent, pg) in enumerate(zip(node._parents, parent_grads)):
                if pg is None or not parent.requires_grad:
                    continue
                _check_grad(node.op, i, parent, pg)
                key = id(parent)
                if key not in grads:
                    grads[key] = pg
                elif key in summed:
                    grads[key] += pg
                else:  # a second path reaches the parent: sum the gradients of both
                    grads[key] = grads[key] + pg
                    summed.add(key)
            if not retain_graph:
                node._vjp, node._parents, node._freed = None, (), True

    def _topological_order(self):
        """Nodes reachable from self, each after every node that uses it (iterative depth-first search)."""
        order, visited = [], set()
        stack = [(self, False)]
        while stack:
            node, children_done = stack.pop()
            if children_done:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            if node._freed:
                raise RuntimeError(
                    "backward: this graph was already freed by an earlier backward(); "
                    "call backward(retain_graph=True) the first time to walk it twice")
            visited.add(id(node))
            stack.append((node, True))
            for parent in node._parents:
                if id(parent) not in visited and parent.requires_grad:
                    stack.append((parent, False))
        order.reverse()
        return order


def _check_grad(op, i, parent, grad):
    """A VJP must return, for each input, an array of exactly that input's shape and dtype (as HIPS/autograd's
    assert_vspace_match checks): a float64 gradient for a float32 input, or a broadcast shape, is a bug in `op`."""
    shape, dtype = np.shape(grad), getattr(grad, "dtype", type(grad))
    if shape != parent.shape or dtype != parent.dtype:
        raise RuntimeError(f"backward: the VJP of {op} returned a gradient of shape {shape} and dtype {dtype} for "
                           f"input {i} of shape {parent.shape} and dtype {parent.dtype}")
