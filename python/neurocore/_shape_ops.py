"""Tensor functions that pick or build structured index patterns: ``outer``, ``diag``, ``diagonal``,
``trace``, ``meshgrid``, ``repeat_interleave``. Each works out the element positions with NumPy
and gathers them with one differentiable ``_take`` (or a broadcast), as the indexing ops do."""
import numbers
import warnings

import numpy as np

from . import _core
from ._core import Tensor
from ._indexing import _check_dims, _grid
from ._tensor import tensor

__all__ = ["outer", "ger", "diag", "diagonal", "trace", "meshgrid", "repeat_interleave"]


def _require_tensor(op, x, name="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"[{op}] {name} must be a Tensor, got {type(x).__name__}")


def outer(input, vec2):
    """The (n, m) matrix input[i] * vec2[j] of two 1-D tensors."""
    _require_tensor("outer", input)
    _require_tensor("outer", vec2, "vec2")
    if input.ndim != 1 or vec2.ndim != 1:
        raise RuntimeError(f"[outer] expected 1-D tensors, got shapes {tuple(input.shape)} and {tuple(vec2.shape)}")
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


ger = outer


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The offset-th diagonal of the (dim1, dim2) planes, as the last dim of the result (a copy, not
    a view as in PyTorch; gradients flow back to the diagonal)."""
    _require_tensor("diagonal", input)
    return _diagonal_of(input, offset, dim1, dim2)


def _diagonal_of(input, offset, dim1, dim2):
    if input.ndim < 2:
        raise RuntimeError(f"[diagonal] expected a tensor with at least 2 dimensions, got shape {tuple(input.shape)}")
    d1, d2 = _check_dims(input, [dim1, dim2], "diagonal")
    if d1 == d2:
        raise RuntimeError(f"[diagonal] dimensions dim1 and dim2 can't be the same, got {dim1} and {dim2}")
    return _core._take(input, tensor(np.ascontiguousarray(np.diagonal(_grid(input), int(offset), d1, d2))))


def diag(input, diagonal=0):
    """For a 1-D input, the square matrix with input on its diagonal-th diagonal; for a 2-D input,
    its diagonal-th diagonal as a 1-D tensor."""
    _require_tensor("diag", input)
    if input.ndim == 2:
        return _diagonal_of(input, diagonal, 0, 1)
    if input.ndim != 1:
        raise RuntimeError(f"[diag] expected a 1-D or 2-D tensor, got shape {tuple(input.shape)}")
    n, k = input.shape[0], int(diagonal)
    size = n + abs(k)
    # Off-diagonal positions read the appended zero (index n).
    index = np.full((size, size), n, dtype=np.int64)
    i = np.arange(n)
    index[i + max(-k, 0), i + max(k, 0)] = i
    padded = _core.cat([input, _core._full((1,), 0, input.dtype)], 0)
    return _core._take(padded, tensor(index))


def trace(input):
    """The sum of the main diagonal of a 2-D tensor."""
    _require_tensor("trace", input)
    if input.ndim != 2:
        raise RuntimeError(f"[trace] expected a matrix, but got tensor with shape {tuple(input.shape)}")
    return diagonal(input).sum()


def meshgrid(*tensors, indexing=None):
    """Coordinate grids of 1-D (or 0-D) tensors: with indexing='ij' output k varies along dim k;
    with 'xy' the first two dims are swapped (Cartesian, as NumPy). Default 'ij' with PyTorch's warning."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if not tensors:
        raise RuntimeError("[meshgrid] expects a non-empty TensorList")
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the indexing argument.",
                      UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"[meshgrid] indexing must be one of 'xy' or 'ij', got {indexing!r}")
    for t in tensors:
        _require_tensor("meshgrid", t, "each input")
        if t.ndim > 1:
            raise RuntimeError(f"[meshgrid] expects all tensors to be 0- or 1-dimensional, got shape {tuple(t.shape)}")
        if t.dtype != tensors[0].dtype:
            raise RuntimeError(f"[meshgrid] expects all tensors to have the same dtype, got {tensors[0].dtype} "
                               f"and {t.dtype}")
    order = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:
        order[0], order[1] = 1, 0  # input 0 varies along dim 1, input 1 along dim 0
    shape = [0] * len(tensors)
    for k, dim in enumerate(order):
        shape[dim] = tensors[k].numel()
    grids = []
    for k, dim in enumerate(order):
        view = [1] * len(tensors)
        view[dim] = -1
        grids.append(tensors[k].reshape(tuple(view)).expand(*shape))
    return tuple(grids)


def _is_int(x):
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Each element (or each slice along dim) repeated `repeats` times in place: repeats is an int or
    an int64 tensor with one count per slice. Without dim the input is flattened first. With only
    an int64 tensor of counts, the indices 0..n-1 repeated by those counts."""
    if repeats is None:  # repeat_interleave(counts)
        counts = input
        _require_tensor("repeat_interleave", counts, "repeats")
        if counts.ndim != 1 or counts.dtype != _core.dtype.int64:
            raise RuntimeError(f"[repeat_interleave] repeats must be a 1-D int64 tensor, got shape "
                               f"{tuple(counts.shape)} and dtype {counts.dtype}")
        c = counts.numpy()
        if (c < 0).any():
            raise RuntimeError("[repeat_interleave] repeats can not be negative")
        return tensor(np.repeat(np.arange(c.size, dtype=np.int64), c))
    _require_tensor("repeat_interleave", input)
    grid = _grid(input)
    if dim is None:
        grid, axis = grid.reshape(-1), 0
    else:
        (axis,) = _check_dims(input, [dim], "repeat_interleave")
    size = grid.shape[axis] if grid.ndim else 1
    if isinstance(repeats, Tensor):
        if repeats.dtype != _core.dtype.int64 or repeats.ndim > 1:
            raise RuntimeError(f"[repeat_interleave] repeats must be an int or a 0-D/1-D int64 tensor, got shape "
                               f"{tuple(repeats.shape)} and dtype {repeats.dtype}")
        reps = repeats.numpy().reshape(-1)
        if reps.size not in (1, size):
            raise RuntimeError(f"[repeat_interleave] repeats must have the same size as input along dim, but got "
                               f"repeats of size {reps.size} for dimension {axis} of input shape {tuple(input.shape)}")
    elif _is_int(repeats):
        reps = np.array([repeats])
    else:
        raise TypeError(f"[repeat_interleave] repeats must be an int or an int64 tensor, got {type(repeats).__name__}")
    if (reps < 0).any():
        raise RuntimeError("[repeat_interleave] repeats can not be negative")
    if grid.ndim == 0:
        grid = grid.reshape(1)
    index = np.repeat(grid, reps if reps.size == size else int(reps[0]), axis=axis)
    if output_size is not None and index.shape[axis] != output_size:
        raise RuntimeError(f"[repeat_interleave] output_size {output_size} does not match the repeated size "
                           f"{index.shape[axis]}")
    return _core._take(input, tensor(np.ascontiguousarray(index)))


for _name in ["outer", "ger", "diag", "diagonal", "trace", "repeat_interleave"]:
    setattr(Tensor, _name, globals()[_name])
