"""Indexing, slicing, joining and splitting (``x[:, -1]``, ``nc.cat``, ``x.split(2)``, ...).

Basic indexing (ints, slices, None, ...) returns a view sharing storage. Indexing with tensors,
lists or bool masks follows NumPy/PyTorch advanced-indexing rules: the element positions are
worked out once with NumPy on an index grid, and the C++ core gathers (or, for assignment,
scatters) them, with gradients.
"""
import numbers

import numpy as np

from . import _core
from ._core import Tensor
from ._tensor import tensor

__all__ = ["cat", "concat", "concatenate", "stack", "split", "chunk", "unbind", "narrow", "select", "index_select",
           "flip", "hstack", "vstack", "take"]


def _is_int(k):
    return isinstance(k, numbers.Integral) and not isinstance(k, bool)


def _is_advanced(k):
    if isinstance(k, Tensor):
        return not (k.ndim == 0 and k.dtype == _core.dtype.int64)
    return isinstance(k, (list, np.ndarray)) or isinstance(k, bool)


def _normalize_key(key):
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for k in key:
        if isinstance(k, Tensor) and k.ndim == 0 and k.dtype == _core.dtype.int64:
            k = int(k.item())
        out.append(k)
    return tuple(out)


def _consumed(k):
    if k is None or k is Ellipsis:
        return 0
    if isinstance(k, Tensor) and k.dtype == _core.dtype.bool:
        return max(k.ndim, 1)
    if isinstance(k, np.ndarray) and k.dtype == np.bool_:
        return max(k.ndim, 1)
    return 1


def _expand_ellipsis(key, ndim):
    n_ell = sum(1 for k in key if k is Ellipsis)
    if n_ell > 1:
        raise IndexError("[index] an index can only have a single ellipsis ('...')")
    used = sum(_consumed(k) for k in key)
    if used > ndim:
        raise IndexError(f"[index] too many indices for tensor of dimension {ndim} (got {used})")
    if n_ell == 0:
        return key + (slice(None),) * (ndim - used)
    i = key.index(Ellipsis)
    return key[:i] + (slice(None),) * (ndim - used) + key[i + 1:]


def _basic(x, key):
    dims, new_axes, out_dim, d = [], [], 0, 0
    shape = x.shape
    for k in key:
        if k is None:
            new_axes.append(out_dim)
            out_dim += 1
        elif _is_int(k):
            size = shape[d]
            if not -size <= k < size:
                raise IndexError(f"[index] index {k} is out of bounds for dimension {d} with size {size}")
            dims.append((k % size, 1, 1, False))
            d += 1
        elif isinstance(k, slice):
            if k.step is not None and k.step <= 0:
                raise ValueError("[index] step must be greater than zero")
            start, stop, step = k.indices(shape[d])
            dims.append((start, step, len(range(start, stop, step)), True))
            d += 1
            out_dim += 1
        else:
            raise TypeError(f"[index] unsupported index type {type(k).__name__}; use ints, slices, None, ..., "
                            "int64/bool tensors or lists of ints")
    return _core._basic_index(x, dims, new_axes)


def _numpy_key(key):
    out = []
    for k in key:
        if isinstance(k, Tensor):
            if k.dtype not in (_core.dtype.int64, _core.dtype.bool):
                raise IndexError(f"[index] tensors used as indices must be int64 or bool, got {k.dtype}")
            out.append(k.detach().numpy())
        elif isinstance(k, slice) and k.step is not None and k.step <= 0:
            raise ValueError("[index] step must be greater than zero")
        elif isinstance(k, list):
            arr = np.asarray(k)
            if arr.size and arr.dtype.kind not in "iub":
                raise IndexError(f"[index] lists used as indices must hold ints or bools, got {arr.dtype}")
            out.append(arr.astype(np.int64) if arr.dtype.kind in "iu" or arr.size == 0 else arr)
        else:
            out.append(k)
    return tuple(out)


def _positions(x, key):
    """Row-major positions in x of the elements selected by `key` (NumPy indexing semantics)."""
    grid = np.arange(x.numel(), dtype=np.int64).reshape(tuple(x.shape))
    try:
        pos = grid[_numpy_key(key)]
    except IndexError as e:
        raise IndexError(f"[index] {e} (tensor shape {tuple(x.shape)})") from None
    return tensor(np.ascontiguousarray(pos, dtype=np.int64))


def _getitem(self, key):
    key = _normalize_key(key)
    if any(_is_advanced(k) for k in key):
        return _core._take(self, _positions(self, key))
    if self.ndim == 0 and key in ((), (Ellipsis,)):
        return _core._basic_index(self, [], [])
    return _basic(self, _expand_ellipsis(key, self.ndim))


def _setitem(self, key, value):
    key = _normalize_key(key)
    if not isinstance(value, (Tensor, numbers.Number)):
        value = tensor(value, dtype=self.dtype)
    _core._put_(self, _positions(self, key), value)


def _iter(self):
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (self[i] for i in range(self.shape[0]))


Tensor.__getitem__ = _getitem
Tensor.__setitem__ = _setitem
Tensor.__iter__ = _iter


def cat(tensors, dim=0):
    tensors = list(tensors)
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"[cat] expected a sequence of Tensors, element {i} is {type(t).__name__}")
    return _core.cat(tensors, dim)


concat = concatenate = cat


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("[stack] expected a non-empty list of tensors")
    shape = tuple(tensors[0].shape)
    for i, t in enumerate(tensors):
        if tuple(t.shape) != shape:
            raise ValueError(f"[stack] stack expects each tensor to be equal size, but got {shape} at entry 0 "
                             f"and {tuple(t.shape)} at entry {i}")
    nd = len(shape) + 1
    if not -nd <= dim < nd:
        raise IndexError(f"[stack] dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dim})")
    return _core.cat([_core.unsqueeze(t, dim % nd) for t in tensors], dim % nd)


def hstack(tensors):
    tensors = list(tensors)
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([t.reshape(1, -1) if t.ndim == 1 else t for t in tensors], 0)


def split(tensor_, split_size_or_sections, dim=0):
    size = tensor_.shape[dim]
    if _is_int(split_size_or_sections):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"[split] split_size must be positive, got {step}")
        sizes = [min(step, size - s) for s in range(0, size, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != size:
            raise ValueError(f"[split] split sizes {sizes} must sum to the size of dimension {dim} ({size})")
    out, start = [], 0
    for s in sizes:
        out.append(_core.narrow(tensor_, dim, start, s))
        start += s
    return tuple(out)


def chunk(input, chunks, dim=0):
    if chunks <= 0:
        raise ValueError(f"[chunk] chunks must be positive, got {chunks}")
    if input.ndim == 0:
        raise RuntimeError("[chunk] chunk expects at least a 1-dimensional tensor")
    size = input.size(dim)
    if size == 0:  # PyTorch gives `chunks` empty pieces
        return tuple(_core.narrow(input, dim, 0, 0) for _ in range(chunks))
    return split(input, -(-size // chunks), dim)


def unbind(input, dim=0):
    return tuple(_core.select(input, dim, i) for i in range(input.shape[dim]))


narrow = _core.narrow
select = _core.select


def index_select(input, dim, index):
    if not isinstance(index, Tensor) or index.dtype != _core.dtype.int64 or index.ndim > 1:
        raise TypeError("[index_select] index must be a 0-D or 1-D int64 tensor")
    nd = max(input.ndim, 1)
    if not -nd <= dim < nd:
        raise IndexError(f"[index_select] dimension out of range (expected to be in range of [{-nd}, {nd - 1}], "
                         f"but got {dim})")
    idx = index.numpy().reshape(-1)
    size = input.shape[dim] if input.ndim else 1
    if idx.size and (idx.min() < 0 or idx.max() >= size):  # no negative indices, as in PyTorch
        bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
        raise IndexError(f"[index_select] index {bad} is out of range for dimension {dim} with size {size} "
                         f"(input shape {tuple(input.shape)})")
    if input.ndim == 0:  # a scalar gives a scalar
        if idx.size != 1:
            raise IndexError(f"[index_select] index to a 0-d tensor can have only 1 value, got {idx.size}")
        return _core._take(input, tensor(np.zeros((), np.int64)))
    grid = np.arange(input.numel(), dtype=np.int64).reshape(tuple(input.shape))
    return _core._take(input, tensor(np.ascontiguousarray(np.take(grid, idx, axis=dim))))


def take(input, index):
    return _core._take(input, index)


def flip(input, dims):
    dims = (dims,) if _is_int(dims) else tuple(dims)
    nd = max(input.ndim, 1)
    for d in dims:
        if not _is_int(d) or not -nd <= d < nd:
            raise IndexError(f"[flip] dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {d})")
    wrapped = [d % nd for d in dims]
    if len(set(wrapped)) != len(wrapped):
        raise RuntimeError(f"[flip] dims has a dimension more than once: {dims}")
    grid = np.arange(input.numel(), dtype=np.int64).reshape(tuple(input.shape))
    if input.ndim:  # a 0-d tensor flips to itself
        grid = np.flip(grid, tuple(wrapped))
    return _core._take(input, tensor(np.array(grid, order="C")))  # (ascontiguousarray makes 0-d 1-d)


def _repeat(self, *sizes):
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    if not sizes and self.ndim == 0:
        raise TypeError("[repeat] missing the repeats argument")
    if len(sizes) < self.ndim:
        raise ValueError(f"[repeat] number of repeat dims ({len(sizes)}) can not be smaller than the number of "
                         f"dimensions of the tensor ({self.ndim})")
    x = self.reshape((1,) * (len(sizes) - self.ndim) + tuple(self.shape))
    inter, target = [], []
    for r, s in zip(sizes, x.shape):
        inter += [1, s]
        target += [r, s]
    out = x.reshape(inter).expand(target)
    return out.reshape([r * s for r, s in zip(sizes, x.shape)])


_METHODS = {
    "split": split, "chunk": chunk, "unbind": unbind, "narrow": lambda self, dim, start, length: _core.narrow(self, dim, start, length),
    "select": lambda self, dim, index: _core.select(self, dim, index), "index_select": index_select,
    "flip": lambda self, *dims: flip(self, dims[0] if len(dims) == 1 else dims), "repeat": _repeat, "take": take,
}
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)
