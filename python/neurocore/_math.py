"""Elementwise math, comparisons and activation functions (``nc.exp``, ``x.relu()``, ...)."""
import numpy as np

from . import _core
from ._core import Tensor
from ._tensor import _check_dtype

_UNARY = ["exp", "log", "sqrt", "rsqrt", "abs", "sign", "sin", "cos", "tanh", "sigmoid", "square",
          "reciprocal", "log1p", "expm1", "erf", "floor", "ceil", "round", "relu", "logical_not",
          "isnan", "isinf", "isfinite"]
_BINARY = ["pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
           "logical_xor"]

__all__ = _UNARY + _BINARY + ["where", "clamp", "clip", "clamp_min", "clamp_max", "leaky_relu", "elu", "selu",
                              "gelu", "silu", "softplus", "hardtanh", "relu6", "dropout", "negative", "absolute",
                              "greater", "less", "equal", "masked_fill", "bmm", "baddbmm", "addmm", "einsum"]

globals().update({name: getattr(_core, name) for name in _UNARY + _BINARY})
where = _core.where
negative = _core.neg
absolute = _core.abs
greater, less = _core.gt, _core.lt


def equal(input, other):
    """True if both tensors have the same shape and elements."""
    return tuple(input.shape) == tuple(other.shape) and bool(_core.eq(input, other).numpy().all())


def clamp(input, min=None, max=None):  # noqa: A002 - PyTorch's argument names
    return _core.clamp(input, min, max)


clip = clamp


def clamp_min(input, min):  # noqa: A002
    return _core.clamp(input, min, None)


def clamp_max(input, max):  # noqa: A002
    return _core.clamp(input, None, max)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _maybe_inplace(input, inplace, lambda x: _core.leaky_relu(x, negative_slope))


def elu(input, alpha=1.0, inplace=False):
    return _maybe_inplace(input, inplace, lambda x: _core.elu(x, alpha))


def selu(input, inplace=False):
    return _maybe_inplace(input, inplace, _core.selu)


def gelu(input, approximate="none"):
    return _core.gelu(input, approximate)


def silu(input, inplace=False):
    return _maybe_inplace(input, inplace, _core.silu)


def mish(input, inplace=False):
    """x * tanh(softplus(x)) (``torch.nn.functional.mish``; not exported as ``nc.mish``, as in torch)."""
    return _maybe_inplace(input, inplace, _core.mish)


def softplus(input, beta=1.0, threshold=20.0):
    return _core.softplus(input, beta, threshold)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return _maybe_inplace(input, inplace, lambda x: _core.hardtanh(x, min_val, max_val))


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


def dropout(input, p=0.5, training=True, inplace=False):
    if (not training or p == 0.0) and isinstance(input, Tensor):
        # The identity returns the very same tensor, as PyTorch does; answered here because every
        # Dropout layer of a model in eval mode passes through this.
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"[dropout] p must be in [0, 1], got {p}")
        return input
    return _maybe_inplace(input, inplace, lambda x: _core.dropout(x, p, training))


def _maybe_inplace(x, inplace, fn):
    return _inplace(fn)(x) if inplace else fn(x)


def _inplace(fn, name=None):
    """In-place form of an out-of-place function: computes fn on a recorded copy when autograd
    needs the old value (so tensors saved for backward stay intact), then copies into self."""
    def method(self, *args, **kwargs):
        src = self.clone() if (_core.is_grad_enabled() and self.requires_grad) else self
        result = fn(src, *args, **kwargs)
        if _CATEGORY[result.dtype] > _CATEGORY[self.dtype]:  # sqrt_ of int64: PyTorch refuses to truncate
            raise RuntimeError(f"[{name or getattr(fn, '__name__', 'inplace')}_] result type {result.dtype} can't be cast "
                               f"to the desired output type {self.dtype}")
        return self.copy_(result)
    return method


_CATEGORY = {d: 2 if d.is_floating_point else 0 if d == _core.dtype.bool else 1 for d in _core.dtype.__members__.values()}


def _masked_fill(self, mask, value):
    """self with `value` where mask is True; the result keeps self's dtype, as in PyTorch."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"[masked_fill] only supports a 0-dimensional value tensor, but got one with "
                               f"{value.ndim} dimension(s)")
        value = value.to(self.dtype)
    else:
        value = _core._full((), value, self.dtype)
    return _core.where(mask, value, self)


masked_fill = _masked_fill


def _check_batch_matrices(op, *mats):
    for name, m in mats:
        if not isinstance(m, Tensor):
            raise TypeError(f"[{op}] {name} must be a Tensor, got {type(m).__name__}")
        if m.ndim != 3:
            raise RuntimeError(f"[{op}] {name} must be a 3D tensor, got shape {tuple(m.shape)}")


def bmm(input, mat2):
    """Batched matrix product of (b, n, m) and (b, m, p) tensors (no broadcasting, as in PyTorch)."""
    _check_batch_matrices("bmm", ("batch1", input), ("batch2", mat2))
    if input.shape[0] != mat2.shape[0] or input.shape[2] != mat2.shape[1]:
        raise RuntimeError(f"[bmm] expected size for first two dimensions of batch2 tensor to be "
                           f"({input.shape[0]}, {input.shape[2]}) but got ({mat2.shape[0]}, {mat2.shape[1]}) "
                           f"(shapes {tuple(input.shape)} and {tuple(mat2.shape)})")
    return _core.matmul(input, mat2)


def _scaled_sum(input, product, beta, alpha):
    """beta * input + alpha * product, where beta = 0 ignores input (NaN and inf in it too)."""
    if alpha != 1:
        product = product * alpha
    if beta == 0:  # the gradient into input is 0, as in PyTorch, and NaN/inf in input don't show
        return product + _core.where(_core.isfinite(input), input, _core._full((), 0, input.dtype)) * 0
    return product + (input if beta == 1 else input * beta)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * bmm(batch1, batch2) (input broadcasts to the product's shape)."""
    return _scaled_sum(input, bmm(batch1, batch2), beta, alpha)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2) for 2-D mat1 and mat2."""
    if mat1.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"[addmm] mat1 and mat2 must be matrices, got shapes {tuple(mat1.shape)} and "
                           f"{tuple(mat2.shape)}")
    return _scaled_sum(input, _core.matmul(mat1, mat2), beta, alpha)


from ._einsum import einsum  # noqa: E402


def _method(fn):
    def method(self, *args, **kwargs):
        return fn(self, *args, **kwargs)
    method.__name__ = fn.__name__
    return method


# Unary methods and pow are bound in C++ (x.exp(), x.pow(2)); the rest go through Python.
_METHODS = {name: _method(getattr(_core, name)) for name in _BINARY if name != "pow"}
_METHODS.update({
    "clamp": clamp, "clip": clamp, "clamp_min": clamp_min, "clamp_max": clamp_max,
    "where": lambda self, condition, other: _core.where(condition, self, other),
    "masked_fill": _masked_fill, "bmm": bmm, "baddbmm": baddbmm, "addmm": addmm,
    "greater": _method(_core.gt), "less": _method(_core.lt), "greater_equal": _method(_core.ge),
    "less_equal": _method(_core.le), "not_equal": _method(_core.ne), "equal": equal,
})
for _name in ["exp", "log", "sqrt", "abs", "sigmoid", "tanh", "relu", "clamp", "pow", "square", "sin", "cos",
              "reciprocal", "floor", "ceil", "round", "sign", "rsqrt", "log1p", "expm1", "clamp_min", "clamp_max",
              "masked_fill"]:
    _METHODS[_name + "_"] = _inplace(_METHODS.get(_name) or getattr(Tensor, _name), _name)
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|input - other| <= atol + rtol * |other| elementwise (NaNs equal only with equal_nan)."""
    other = other if isinstance(other, Tensor) else _core.full((), other, input.dtype)
    diff = _core.abs(input - other)
    close = _core.logical_and(_core.le(diff, atol + rtol * _core.abs(other)), _core.isfinite(diff))
    close = _core.logical_or(close, _core.eq(input, other))  # equal infinities
    if equal_nan:
        close = _core.logical_or(close, _core.logical_and(_core.isnan(input), _core.isnan(other)))
    return close


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(isclose(input, other, rtol, atol, equal_nan).numpy().all())


def norm(input, p="fro", dim=None, keepdim=False):
    """Vector p-norm over dim (all elements by default); 'fro' is the 2-norm."""
    p = 2.0 if p == "fro" else float(p)
    a = _core.abs(input)
    if p == float("inf"):
        return _core._amax(a, dim, keepdim, True)
    if p == float("-inf"):
        return _core._amax(a, dim, keepdim, False)
    if p == 0:
        return _core.sum(_core.ne(input, 0).to(input.dtype), dim, keepdim)
    if p == 2.0:
        return _core.sqrt(_core.sum(input * input, dim, keepdim))
    return _core.sum(a ** p, dim, keepdim) ** (1.0 / p)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """input with NaN, +inf and -inf replaced by nan, posinf and neginf (by default the dtype's
    largest and lowest finite values); the gradient is 0 at the replaced elements."""
    if not input.dtype.is_floating_point:
        return input.clone()
    info = np.finfo(np.float64 if input.dtype == _core.dtype.float64 else np.float32)
    posinf = float(info.max) if posinf is None else posinf
    neginf = float(info.min) if neginf is None else neginf
    out = _core.where(_core.isnan(input), _core._full((), nan, input.dtype), input)
    out = _core.where(_core.eq(input, float("inf")), _core._full((), posinf, input.dtype), out)
    return _core.where(_core.eq(input, float("-inf")), _core._full((), neginf, input.dtype), out)


def addcmul(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 * tensor2 (broadcast; evaluated in that order, as PyTorch's kernel)."""
    return input + (tensor1 if value == 1 else tensor1 * value) * tensor2


def addcdiv(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 / tensor2 (broadcast; integer division is refused, as in PyTorch)."""
    for t in (tensor1, tensor2):
        if isinstance(t, Tensor) and not t.dtype.is_floating_point:
            raise RuntimeError(f"[addcdiv] integer division with addcdiv is no longer supported; got tensor1 "
                               f"{tensor1.dtype} and tensor2 {tensor2.dtype}. Use addcmul(input, tensor1, 1 / tensor2)")
    return input + (tensor1 if value == 1 else tensor1 * value) / tensor2


def lerp(input, end, weight):
    """input + weight * (end - input), with PyTorch's two-sided formula (end - (end - input) * (1 - weight)
    for weight >= 0.5) so that weight = 1 gives exactly end."""
    diff = end - input
    if isinstance(weight, Tensor):
        return _core.where(_core.lt(_core.abs(weight), 0.5), input + weight * diff, end - diff * (1 - weight))
    return input + weight * diff if -0.5 < weight < 0.5 else end - diff * (1 - weight)  # (abs is _core.abs here)


__all__ += ["isclose", "allclose", "norm", "nan_to_num", "addcmul", "addcdiv", "lerp"]
for _name in ["nan_to_num", "addcmul", "addcdiv", "lerp"]:
    setattr(Tensor, _name, globals()[_name])
    setattr(Tensor, _name + "_", _inplace(globals()[_name], _name))
Tensor.isclose = isclose
Tensor.allclose = allclose
Tensor.norm = norm
Tensor.type = lambda self, dtype=None: str(self.dtype) if dtype is None else self.to(_check_dtype(dtype, "type"))
