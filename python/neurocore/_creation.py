"""Tensor factories with PyTorch signatures (``nc.zeros(2, 3)``, ``nc.randn((4,), dtype=...)``)."""
import math

from . import _core
from ._core import Tensor
from ._tensor import _check_device, _check_dtype, get_default_dtype, int64, float32, bool_

__all__ = ["zeros", "ones", "full", "empty", "zeros_like", "ones_like", "full_like", "empty_like", "rand",
           "randn", "randint", "rand_like", "randn_like", "randint_like", "arange", "linspace", "eye", "normal",
           "scalar_tensor"]


def _size(size, op):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, int) and not hasattr(s, "__index__"):
            raise TypeError(f"[{op}] size must be a sequence of ints, got {size!r}")
    return tuple(int(s) for s in size)


def _finish(t, requires_grad):
    if requires_grad:
        t.requires_grad_(True)
    return t


def _float_dtype(dtype, op):
    dtype = _check_dtype(dtype, op) or get_default_dtype()
    return dtype


def full(size, fill_value, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "full")
    if dtype is None:
        dtype = bool_ if isinstance(fill_value, bool) else int64 if isinstance(fill_value, int) else get_default_dtype()
    return _finish(_core._full(_size((size,), "full"), fill_value, _check_dtype(dtype, "full")), requires_grad)


def zeros(*size, dtype=None, requires_grad=False, device=None):
    _check_device(device, "zeros")
    return _finish(_core._full(_size(size, "zeros"), 0, _float_dtype(dtype, "zeros")), requires_grad)


def ones(*size, dtype=None, requires_grad=False, device=None):
    _check_device(device, "ones")
    return _finish(_core._full(_size(size, "ones"), 1, _float_dtype(dtype, "ones")), requires_grad)


def empty(*size, dtype=None, requires_grad=False, device=None):
    _check_device(device, "empty")
    return _finish(_core._empty(_size(size, "empty"), _float_dtype(dtype, "empty")), requires_grad)


def scalar_tensor(s, dtype=None, device=None, requires_grad=False):
    _check_device(device, "scalar_tensor")
    return _finish(full((), s, dtype=dtype or get_default_dtype()), requires_grad)


def _like(t, dtype):
    return tuple(t.shape), _check_dtype(dtype, "like") or t.dtype


def zeros_like(input, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "zeros_like")
    shape, dt = _like(input, dtype)
    return _finish(_core._full(shape, 0, dt), requires_grad)


def ones_like(input, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "ones_like")
    shape, dt = _like(input, dtype)
    return _finish(_core._full(shape, 1, dt), requires_grad)


def full_like(input, fill_value, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "full_like")
    shape, dt = _like(input, dtype)
    return _finish(_core._full(shape, fill_value, dt), requires_grad)


def empty_like(input, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "empty_like")
    shape, dt = _like(input, dtype)
    return _finish(_core._empty(shape, dt), requires_grad)


def rand(*size, dtype=None, requires_grad=False, generator=None, device=None):
    _check_device(device, "rand")
    t = _core._empty(_size(size, "rand"), _float_dtype(dtype, "rand"))
    return _finish(_core._uniform_(t, 0.0, 1.0), requires_grad)


def randn(*size, dtype=None, requires_grad=False, generator=None, device=None):
    _check_device(device, "randn")
    t = _core._empty(_size(size, "randn"), _float_dtype(dtype, "randn"))
    return _finish(_core._normal_(t, 0.0, 1.0), requires_grad)


def randint(low=0, high=None, size=None, *, dtype=None, generator=None, requires_grad=False, device=None):
    _check_device(device, "randint")
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    if high is None or size is None:
        raise TypeError("[randint] expected randint(high, size) or randint(low, high, size)")
    t = _core._empty(_size((size,), "randint"), _check_dtype(dtype, "randint") or int64)
    return _finish(_core._random_int_(t, int(low), int(high)), requires_grad)


def rand_like(input, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "rand_like")
    return rand(tuple(input.shape), dtype=dtype or input.dtype, requires_grad=requires_grad)


def randn_like(input, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "randn_like")
    return randn(tuple(input.shape), dtype=dtype or input.dtype, requires_grad=requires_grad)


def randint_like(input, low=0, high=None, *, dtype=None, device=None):
    _check_device(device, "randint_like")
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype)


def normal(mean, std, size, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "normal")
    t = _core._empty(_size((size,), "normal"), _float_dtype(dtype, "normal"))
    return _finish(_core._normal_(t, float(mean), float(std)), requires_grad)


def arange(start=0, end=None, step=1, *, dtype=None, requires_grad=False, device=None):
    """Values start, start+step, ... < end. Integer arguments give int64, floats the default dtype."""
    _check_device(device, "arange")
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("[arange] step must be nonzero")
    length = max(0, math.ceil((end - start) / step))
    if dtype is None:
        is_int = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end, step))
        dtype = int64 if is_int else get_default_dtype()
    dtype = _check_dtype(dtype, "arange")
    import numpy as np
    values = start + step * np.arange(length, dtype=np.float64 if dtype != int64 else np.int64)
    from ._tensor import tensor
    return tensor(values, dtype=dtype, requires_grad=requires_grad)


def linspace(start, end, steps, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "linspace")
    import numpy as np
    from ._tensor import tensor
    if steps < 0:
        raise ValueError(f"[linspace] number of steps must be non-negative, got {steps}")
    # One step is just `start` (NumPy would compute it as start + 0 * (end - start), NaN for an infinite end).
    values = np.array([start], dtype=np.float64) if steps == 1 else np.linspace(start, end, steps)
    return tensor(values, dtype=_float_dtype(dtype, "linspace"), requires_grad=requires_grad)


def eye(n, m=None, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "eye")
    import numpy as np
    from ._tensor import tensor
    return tensor(np.eye(n, n if m is None else m), dtype=_float_dtype(dtype, "eye"), requires_grad=requires_grad)


def _uniform_(self, a=0.0, b=1.0):
    _core._uniform_(self, float(a), float(b))
    return self


def _normal_(self, mean=0.0, std=1.0):
    _core._normal_(self, float(mean), float(std))
    return self


Tensor.uniform_ = _uniform_
Tensor.normal_ = _normal_
Tensor.new_zeros = lambda self, *size, dtype=None, device=None, requires_grad=False: zeros(
    *size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)
Tensor.new_ones = lambda self, *size, dtype=None, device=None, requires_grad=False: ones(
    *size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)
Tensor.new_full = lambda self, size, fill_value, dtype=None, device=None, requires_grad=False: full(
    size, fill_value, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)
Tensor.new_empty = lambda self, *size, dtype=None, device=None, requires_grad=False: empty(
    *size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)
