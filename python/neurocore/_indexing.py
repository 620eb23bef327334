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
           "flip", "hstack", "vstack", "take", "tril", "triu", "roll", "nonzero", "index_fill", "masked_scatter",
           "argwhere"]


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


def _grid(input):
    """The row-major position of every element of input, as a NumPy int64 array of input's shape."""
    return np.arange(input.numel(), dtype=np.int64).reshape(tuple(input.shape))


def _triangle(input, diagonal, lower, op):
    if not isinstance(input, Tensor):
        raise TypeError(f"[{op}] expected a Tensor, got {type(input).__name__}")
    if input.ndim < 2:
        raise RuntimeError(f"[{op}] input tensor must have at least 2 dimensions (got shape {tuple(input.shape)})")
    rows, cols = input.shape[-2:]
    keep = np.tri(rows, cols, int(diagonal), dtype=bool)
    if not lower:
        keep = ~np.tri(rows, cols, int(diagonal) - 1, dtype=bool)
    return _core.where(tensor(keep), input, _core._full((), 0, input.dtype))


def tril(input, diagonal=0):
    """input with the elements above the diagonal-th diagonal of the last two dims set to 0."""
    return _triangle(input, diagonal, True, "tril")


def triu(input, diagonal=0):
    """input with the elements below the diagonal-th diagonal of the last two dims set to 0."""
    return _triangle(input, diagonal, False, "triu")


def _check_dims(input, dims, op):
    nd = max(input.ndim, 1)
    for d in dims:
        if not _is_int(d) or not -nd <= d < nd:
            raise IndexError(f"[{op}] dimension out of range (expected to be in range of [{-nd}, {nd - 1}], "
                             f"but got {d})")
    return [d % nd for d in dims]


def roll(input, shifts, dims=None):
    """Elements shifted along dims (circularly); without dims, along the flattened tensor."""
    shifts = (shifts,) if _is_int(shifts) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"[roll] shifts and dimensions must align: got {len(shifts)} shifts and no dims")
        grid = np.roll(_grid(input).reshape(-1), shifts[0]).reshape(tuple(input.shape))
    else:
        dims = (dims,) if _is_int(dims) else tuple(dims)
        if len(shifts) != len(dims):
            raise RuntimeError(f"[roll] shifts and dimensions must align: shifts {len(shifts)}, dims {len(dims)}")
        grid = np.roll(_grid(input), shifts, tuple(_check_dims(input, dims, "roll")))
    return _core._take(input, tensor(np.array(grid, order="C")))


def nonzero(input, *, as_tuple=False):
    """Indices of the non-zero elements: an int64 (count, ndim) tensor, or with as_tuple=True one
    1-D tensor per dimension."""
    arr = input.detach().numpy()
    if as_tuple:
        if arr.ndim == 0:
            return (tensor(np.nonzero(arr.reshape(1))[0].astype(np.int64)),)
        return tuple(tensor(i.astype(np.int64)) for i in np.nonzero(arr))
    return tensor(np.argwhere(arr).astype(np.int64).reshape(-1, arr.ndim))


def argwhere(input):
    return nonzero(input)


def _index_fill_(self, dim, index, value):
    """self with value written at every position whose coordinate along dim is in index."""
    if not isinstance(index, Tensor) or index.dtype != _core.dtype.int64 or index.ndim > 1:
        raise IndexError("[index_fill_] index must be a 0-D or 1-D int64 tensor")
    (d,) = _check_dims(self, [dim], "index_fill_")
    size = self.shape[d] if self.ndim else 1
    idx = index.numpy().reshape(-1)
    if idx.size and (idx.min() < -size or idx.max() >= size):
        bad = int(idx.min()) if idx.min() < -size else int(idx.max())
        raise IndexError(f"[index_fill_] index {bad} is out of range for dimension {dim} with size {size} "
                         f"(input shape {tuple(self.shape)})")
    if isinstance(value, Tensor) and value.ndim != 0:
        raise RuntimeError(f"[index_fill_] only supports a 0-dimensional value tensor, but got one with "
                           f"{value.ndim} dimension(s)")
    grid = _grid(self).reshape(-1) if self.ndim == 0 else np.take(_grid(self), idx % size, axis=d)
    _core._put_(self, tensor(np.ascontiguousarray(grid).reshape(-1)), value)
    return self


def index_fill(input, dim, index, value):
    return _index_fill_(input.clone(), dim, index, value)


def _masked_scatter_(self, mask, source):
    """Copies source's elements, in order, to the positions where mask (broadcast to self) is True."""
    if not isinstance(mask, Tensor) or mask.dtype != _core.dtype.bool:
        raise TypeError("[masked_scatter_] mask must be a bool tensor")
    try:
        m = np.broadcast_to(mask.numpy(), tuple(self.shape))
    except ValueError:
        raise RuntimeError(f"[masked_scatter_] mask of shape {tuple(mask.shape)} is not broadcastable to "
                           f"the input shape {tuple(self.shape)}") from None
    positions = _grid(self)[m]
    if positions.size > source.numel():
        raise RuntimeError(f"[masked_scatter_] number of elements in source ({source.numel()}) < number of ones "
                           f"in mask ({positions.size})")
    if source.dtype != self.dtype:
        raise RuntimeError(f"[masked_scatter_] expected source to have the input's dtype {self.dtype}, "
                           f"got {source.dtype}")
    values = _core.narrow(source.reshape(-1), 0, 0, int(positions.size))
    _core._put_(self, tensor(positions.astype(np.int64)), values)
    return self


def masked_scatter(input, mask, source):
    return _masked_scatter_(input.clone(), mask, source)


_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(input, pad, mode="constant", value=None):
    """PyTorch's F.pad: pad = (left, right) of the last dim, then of the one before, ...;
    mode 'constant' (negative sizes crop), 'reflect', 'replicate' or 'circular'. Differentiable."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError(f"[pad] padding length must be divisible by 2, got {len(pad)}")
    n = len(pad) // 2
    if n > input.ndim:
        raise ValueError(f"[pad] padding length {len(pad)} is too large for an input of {input.ndim} dims")
    pairs = [(input.ndim - 1 - i, pad[2 * i], pad[2 * i + 1]) for i in range(n)]
    if mode == "constant":
        out = input
        fill = 0 if value is None else value
        for d, lo, hi in pairs:
            if lo < 0 or hi < 0:
                size = out.shape[d]
                start, stop = max(-lo, 0), size - max(-hi, 0)
                if stop < start:
                    raise RuntimeError(f"[pad] the padding {pad} makes dimension {d} of input shape "
                                       f"{tuple(input.shape)} negative")
                out = _core.narrow(out, d, start, stop - start)
            parts = []
            for p in (max(lo, 0), None, max(hi, 0)):
                if p is None:
                    parts.append(out)
                elif p:
                    shape = list(out.shape)
                    shape[d] = p
                    parts.append(_core._full(tuple(shape), fill, out.dtype))
            out = _core.cat(parts, d) if len(parts) > 1 else out
        return out
    if value is not None and value != 0:
        raise ValueError(f"[pad] padding mode {mode!r} doesn't take in value argument")
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"[pad] unknown padding mode {mode!r}; use 'constant', 'reflect', 'replicate' "
                                  "or 'circular'")
    if not n + 1 <= input.ndim <= n + 2 or n > 3:
        raise NotImplementedError(f"[pad] {mode} padding of {n} dims needs an input of {n + 1} or {n + 2} dims "
                                  f"(batch and channel first), got shape {tuple(input.shape)}")
    for d, lo, hi in pairs:
        size = input.shape[d]
        if lo < 0 or hi < 0:
            raise RuntimeError(f"[pad] negative padding {pad} is only supported in mode 'constant'")
        if mode == "reflect" and (lo >= size or hi >= size):
            raise RuntimeError(f"[pad] padding size should be less than the corresponding input dimension, but "
                               f"got: padding ({lo}, {hi}) at dimension {d} of input {tuple(input.shape)}")
        if mode == "circular" and (lo > size or hi > size):
            raise RuntimeError(f"[pad] padding value causes wrapping around more than once: padding ({lo}, {hi}) "
                               f"at dimension {d} of input {tuple(input.shape)}")
        if mode == "replicate" and size == 0 and (lo or hi):
            raise RuntimeError(f"[pad] can't replicate-pad the empty dimension {d} of input {tuple(input.shape)}")
    widths = [(0, 0)] * input.ndim
    for d, lo, hi in pairs:
        widths[d] = (lo, hi)
    return _core._take(input, tensor(np.ascontiguousarray(np.pad(_grid(input), widths, mode=_PAD_MODES[mode]))))


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
    "tril": tril, "triu": triu, "roll": roll, "nonzero": nonzero, "argwhere": argwhere,
    "index_fill_": _index_fill_, "index_fill": index_fill, "masked_scatter_": _masked_scatter_,
    "masked_scatter": masked_scatter,
}


def _triangle_(fn):
    def method(self, diagonal=0):
        src = self.clone() if (_core.is_grad_enabled() and self.requires_grad) else self
        return self.copy_(fn(src, diagonal))
    method.__name__ = fn.__name__ + "_"
    return method


_METHODS["tril_"] = _triangle_(tril)
_METHODS["triu_"] = _triangle_(triu)
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)
