"""Tensor construction, NumPy interop and the Python-side sugar of the Tensor class.

The C++ core defines `Tensor` and its hot operators; this module adds the methods whose argument
parsing is easier in Python (``x.view(2, 3)`` and ``x.view((2, 3))``), printing, and grad-mode
context managers. Nothing here loops over elements.
"""
import functools

import numpy as np

from . import _core
from ._core import Tensor
from ._device import _check_device, _parse_to

float32 = _core.dtype.float32
float64 = _core.dtype.float64
int64 = _core.dtype.int64
bool_ = _core.dtype.bool
# Storage dtypes: made, converted, copied, viewed, indexed and shared with NumPy; arithmetic, unary
# math, sum/mean and (float16, bfloat16) matmul read them as int64 (integers) or float32 and round
# the result back to the dtype PyTorch gives; other ops (layers, most reductions) ask for a
# .float() / .long() first (a TypeError naming the op and dtype).
uint8 = _core.dtype.uint8
int8 = _core.dtype.int8
int16 = _core.dtype.int16
int32 = _core.dtype.int32
float16 = _core.dtype.float16
bfloat16 = _core.dtype.bfloat16
float = float32  # noqa: A001 - PyTorch's aliases
double = float64
long = int64
half = float16
short = int16
int = int32  # noqa: A001

_default_dtype = [float32]

_NUMPY_TO_DTYPE = {np.dtype(np.float32): float32, np.dtype(np.float64): float64,
                   np.dtype(np.int64): int64, np.dtype(np.bool_): bool_, np.dtype(np.uint8): uint8,
                   np.dtype(np.int8): int8, np.dtype(np.int16): int16, np.dtype(np.int32): int32,
                   np.dtype(np.float16): float16}
# NumPy arrays of these dtypes keep them in tensor(); others widen (int8 .. int32 -> int64,
# float16 -> float32) so that every op has a kernel; from_numpy shares any of _NUMPY_TO_DTYPE.
_INFERRED = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64), np.dtype(np.bool_))
_DTYPE_TO_NUMPY = {float32: np.float32, float64: np.float64, int64: np.int64, bool_: np.bool_, uint8: np.uint8,
                   int8: np.int8, int16: np.int16, int32: np.int32, float16: np.float16}


def set_default_dtype(d):
    if d not in (float32, float64):
        raise TypeError(f"[set_default_dtype] only float32 or float64, got {d}")
    _default_dtype[0] = d


def get_default_dtype():
    return _default_dtype[0]


_NAMES = {"torch.float32": float32, "torch.float": float32, "torch.float64": float64, "torch.double": float64,
          "torch.int64": int64, "torch.long": int64, "torch.bool": bool_, "torch.uint8": uint8, "torch.int8": int8,
          "torch.int16": int16, "torch.short": int16, "torch.int32": int32, "torch.int": int32,
          "torch.float16": float16, "torch.half": float16, "torch.bfloat16": bfloat16,
          "torch.FloatTensor": float32, "torch.DoubleTensor": float64, "torch.LongTensor": int64,
          "torch.IntTensor": int32, "torch.BoolTensor": bool_, "torch.HalfTensor": float16,
          "torch.BFloat16Tensor": bfloat16, "torch.ByteTensor": uint8, "torch.CharTensor": int8,
          "torch.ShortTensor": int16}


def _check_dtype(dtype, op):
    if dtype is None or isinstance(dtype, _core.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.replace("neurocore.", "torch.") in _NAMES:  # x.type("torch.FloatTensor")
        return _NAMES[dtype.replace("neurocore.", "torch.")]
    if isinstance(getattr(dtype, "_dtype", None), _core.dtype):  # nc.FloatTensor and friends
        return dtype._dtype
    try:
        return _NUMPY_TO_DTYPE[np.dtype(dtype)]
    except (TypeError, KeyError):
        raise TypeError(f"[{op}] unsupported dtype {dtype!r}; use a neurocore dtype (float32, float64, int64, bool, "
                        "uint8, int8, int16, int32, float16, bfloat16)") from None


def _to_numpy_array(data, dtype, op):
    """NumPy array for `data` with neurocore's dtype inference (Python floats -> float32)."""
    if isinstance(data, Tensor):
        arr = data.detach().numpy()
    elif isinstance(data, (np.ndarray, np.generic)):  # NumPy keeps its dtype, as in PyTorch
        arr = np.asarray(data)
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
            data = _nested_tensors_to_lists(data)
        arr = np.asarray(data)
        if arr.dtype == np.float64 and dtype is None:
            arr = arr.astype(_DTYPE_TO_NUMPY[_default_dtype[0]])
    if dtype is not None:
        arr = arr.astype(_DTYPE_TO_NUMPY.get(dtype, np.float32), copy=False)  # bfloat16 is converted after
    elif arr.dtype not in _INFERRED:
        if arr.dtype.kind in "iu":
            arr = arr.astype(np.int64)
        elif arr.dtype.kind == "f":
            arr = arr.astype(np.float32 if arr.dtype.itemsize < 8 else np.float64)
        else:
            raise TypeError(f"[{op}] can't convert data of NumPy dtype {arr.dtype} to a tensor")
    return arr


def _flat(seq):
    for x in seq:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


def _nested_tensors_to_lists(data):
    if isinstance(data, Tensor):
        return data.detach().numpy()
    if isinstance(data, (list, tuple)):
        return [_nested_tensors_to_lists(x) for x in data]
    return data


def tensor(data, dtype=None, requires_grad=False, device=None):
    """A new tensor holding a copy of `data` (nested lists, NumPy arrays, numbers, tensors)."""
    _check_device(device, "tensor")
    dtype = _check_dtype(dtype, "tensor")
    arr = _to_numpy_array(data, dtype, "tensor")
    t = _core._from_numpy(arr, True)
    if dtype is not None and t.dtype != dtype:  # bfloat16 (no NumPy dtype): from float32
        t = _core_to(t, dtype)
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data, dtype=None, device=None):
    """Like tensor(), but shares memory with a NumPy array or tensor when no conversion is needed."""
    _check_device(device, "as_tensor")
    dtype = _check_dtype(dtype, "as_tensor")
    if isinstance(data, Tensor):
        return data if dtype is None or data.dtype == dtype else data.to(dtype)
    if isinstance(data, np.ndarray) and data.dtype in _INFERRED and (
            dtype is None or _NUMPY_TO_DTYPE[data.dtype] == dtype):
        return _core._from_numpy(data, False)
    return tensor(data, dtype=dtype)


def from_numpy(arr):
    """A tensor sharing memory with the NumPy array `arr` (writes are visible both ways)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"[from_numpy] expected a numpy.ndarray, got {type(arr).__name__}")
    return _core._from_numpy(arr, False)


# --- grad mode -----------------------------------------------------------------------------------

class _GradModeContext:
    _enabled = None

    def __enter__(self):
        self._prev = _core.is_grad_enabled()
        _core._set_grad_enabled(self._enabled)
        return self

    def __exit__(self, *exc):
        _core._set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradModeContext):
    """Context manager and decorator that disables gradient recording."""
    _enabled = False


class enable_grad(_GradModeContext):
    """Context manager and decorator that enables gradient recording."""
    _enabled = True


class set_grad_enabled(_GradModeContext):
    def __init__(self, mode):
        self._enabled = bool(mode)
        self._prev = _core.is_grad_enabled()
        _core._set_grad_enabled(self._enabled)

    def __enter__(self):
        return self

    def __call__(self, fn):
        raise TypeError("[set_grad_enabled] use it as a function or a context manager")


inference_mode = no_grad


# --- Tensor methods that parse Python arguments ------------------------------------------------

def _shape_args(args, op):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


class Size(tuple):
    """The shape of a tensor: a tuple, printed as in PyTorch."""

    def __repr__(self):
        return f"neurocore.Size([{', '.join(str(s) for s in self)}])"

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n


def _size(self, dim=None):
    shape = Size(self.shape)
    if dim is None:
        return shape
    nd = len(shape)
    if not -max(nd, 1) <= dim < max(nd, 1):
        raise IndexError(f"[size] dimension out of range (expected to be in range of [{-max(nd, 1)}, {max(nd, 1) - 1}], but got {dim})")
    return shape[dim]


def _values(self):
    """A NumPy array of the values (bfloat16, which NumPy lacks, as float32)."""
    if self.dtype == bfloat16:
        return _core_to(self, float32)._numpy_unchecked()
    return self._numpy_unchecked()


def _item(self):
    if self.numel() != 1:
        raise ValueError(f"[item] a Tensor with {self.numel()} elements cannot be converted to a Python number (shape {tuple(self.shape)})")
    return _values(self).reshape(()).item()


def _tolist(self):
    return _values(self).tolist()


def _len(self):
    if self.ndim == 0:
        raise TypeError("len() of a 0-d tensor")
    return self.shape[0]


def _repr(self):
    arr = _values(self)
    prefix = "tensor("
    if arr.dtype.kind == "f":
        # As PyTorch prints: "1., 2." when every value is integral, else 4 fixed decimals
        # (scientific notation when the magnitudes call for it).
        finite = arr[np.isfinite(arr)]
        integral = finite.size == 0 or bool(np.all(finite == np.round(finite)))
        big = finite.size > 0 and (np.abs(finite).max() >= 1e8 or
                                   (np.abs(finite[finite != 0]).min(initial=1.0) < 1e-4))
        body = np.array2string(arr, separator=", ", prefix=prefix, precision=4, threshold=1000, edgeitems=3,
                               floatmode="maxprec_equal" if integral and not big else "fixed",
                               suppress_small=False)
    else:
        body = np.array2string(arr, separator=", ", prefix=prefix, threshold=1000, edgeitems=3)
    extras = []
    if self.dtype != float32 and not (self.dtype == int64 and arr.size > 0) and not (self.dtype == bool_):
        extras.append(f"dtype={self.dtype}")
    if arr.size == 0:
        extras.append(f"size={tuple(self.shape)}")
    if self.grad_fn is not None:
        extras.append(f"grad_fn=<{self.grad_fn}>")
    elif self.requires_grad:
        extras.append("requires_grad=True")
    return prefix + body + "".join(", " + e for e in extras) + ")"


def _array(self, dtype=None):
    arr = self.detach().numpy()
    return arr if dtype is None else arr.astype(dtype)


def _float_conv(self):
    return self.item().__float__()


def _int_conv(self):
    return self.item().__int__()  # `int` is the dtype alias in this module


def _bool_conv(self):
    if self.numel() != 1:
        raise RuntimeError(f"[bool] Boolean value of a tensor with {self.numel()} elements is ambiguous")
    return bool(self.item())


def _data_get(self):
    return self.detach()


def _data_set(self, value):
    self._set_data(value)


def _view(self, *shape):
    return _core.view(self, _shape_args(shape, "view"))


def _reshape(self, *shape):
    return _core.reshape(self, _shape_args(shape, "reshape"))


def _expand(self, *shape):
    return _core.expand(self, _shape_args(shape, "expand"))


def _permute(self, *dims):
    return _core.permute(self, _shape_args(dims, "permute"))


def _to(self, *args, **kwargs):
    dtype, copy = _parse_to(args, kwargs, "to")
    out = self if dtype is None else _to_dtype(self, dtype)
    return out.clone() if copy and out._is_same(self) else out


_core_to = Tensor.to


def _to_dtype(self, dtype):
    return _core_to(self, _check_dtype(dtype, "to"))


def _type_as(self, other):
    return _to_dtype(self, other.dtype)


def _format(self, format_spec):
    """f"{t:.4f}" formats a 0-d tensor's value; other tensors take only an empty spec (str(t)),
    as in PyTorch."""
    if self.ndim == 0 and type(self) is Tensor:
        return self.item().__format__(format_spec)
    return object.__format__(self, format_spec)


class memory_format:
    """The layout clone() / contiguous() are asked for (PyTorch's torch.memory_format)."""

    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return f"neurocore.{self._name}"


contiguous_format = memory_format("contiguous_format")
preserve_format = memory_format("preserve_format")
channels_last = memory_format("channels_last")
_core_clone = Tensor.clone


def _clone(self, *, memory_format=None):
    """A copy with its own storage. contiguous_format and preserve_format give a contiguous copy
    (the same values; PyTorch's preserve_format would keep a dense non-contiguous layout),
    channels_last a 4-D copy laid out as (N, H, W, C) in memory, as in PyTorch."""
    if memory_format is channels_last:
        if self.ndim != 4:
            raise RuntimeError(f"[clone] required rank 4 tensor to use channels_last format, got shape "
                               f"{tuple(self.shape)}")
        return _core.permute(_core.contiguous(_core.permute(self, (0, 2, 3, 1))), (0, 3, 1, 2))
    if memory_format not in (None, contiguous_format, preserve_format):
        raise TypeError(f"[clone] memory_format must be a neurocore memory format, got {memory_format!r}")
    return _core_clone(self)


_METHODS = {
    "size": _size, "item": _item, "tolist": _tolist, "__len__": _len, "__repr__": _repr, "__str__": _repr,
    "__array__": _array, "__float__": _float_conv, "__int__": _int_conv, "__index__": _int_conv,
    "__bool__": _bool_conv,
    "view": _view, "reshape": _reshape, "expand": _expand, "permute": _permute,
    "expand_as": lambda self, other: _core.expand(self, other.shape),
    "view_as": lambda self, other: _core.view(self, other.shape),
    "reshape_as": lambda self, other: _core.reshape(self, other.shape),
    "flatten": lambda self, start_dim=0, end_dim=-1: _core.flatten(self, start_dim, end_dim),
    "transpose": lambda self, dim0, dim1: _core.transpose(self, dim0, dim1),
    "t": lambda self: _core.transpose(self, 0, 1) if self.ndim == 2 else self,
    "squeeze": lambda self, dim=None: _core.squeeze(self, dim),
    "unsqueeze": lambda self, dim: _core.unsqueeze(self, dim),
    "sum": lambda self, dim=None, keepdim=False: _core.sum(self, dim, keepdim),
    "mean": lambda self, dim=None, keepdim=False: _core.mean(self, dim, keepdim),
    "to": _to, "type_as": _type_as,
    "float": lambda self: _to_dtype(self, float32), "double": lambda self: _to_dtype(self, float64),
    "half": lambda self: _to_dtype(self, float16), "bfloat16": lambda self: _to_dtype(self, bfloat16),
    "int": lambda self: _to_dtype(self, int32), "short": lambda self: _to_dtype(self, int16),
    "char": lambda self: _to_dtype(self, int8), "byte": lambda self: _to_dtype(self, uint8),
    "long": lambda self: _to_dtype(self, int64), "bool": lambda self: _to_dtype(self, bool_),
    "cpu": lambda self, memory_format=None: self,
    "is_floating_point": lambda self: self.dtype.is_floating_point,
    "element_size": lambda self: self.dtype.itemsize,
    "new_tensor": lambda self, data, dtype=None, device=None, requires_grad=False: tensor(
        data, dtype or self.dtype, requires_grad, device),
    "__format__": _format, "nelement": lambda self: self.numel(),
}
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)
Tensor.T = property(lambda self: _core.permute(self, tuple(range(self.ndim - 1, -1, -1))))
Tensor.mT = property(lambda self: _core.transpose(self, -2, -1))
Tensor.data = property(_data_get, _data_set)
Tensor.__array_priority__ = 1000  # numpy_array + tensor -> Tensor.__radd__
Tensor.__hash__ = object.__hash__
_core.dtype.__repr__ = lambda d: f"neurocore.{d.name}"
_core.dtype.__str__ = lambda d: f"neurocore.{d.name}"
