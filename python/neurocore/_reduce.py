"""Reductions and softmax (``nc.max``, ``x.argmax(dim=1)``, ``nc.softmax``, ...)."""
import collections

from . import _core
from ._core import Tensor

__all__ = ["max", "min", "amax", "amin", "argmax", "argmin", "var", "std", "logsumexp", "softmax", "log_softmax",
           "all", "any", "gather", "scatter_add", "scatter", "sort", "argsort", "topk", "cumsum", "cumprod",
           "unique", "bincount"]

# torch.return_types.max / min: a tuple with .values and .indices
max_result = collections.namedtuple("max", ["values", "indices"])
min_result = collections.namedtuple("min", ["values", "indices"])


def _extreme(input, dim, keepdim, is_max, result):
    if isinstance(dim, Tensor):  # nc.max(a, b): elementwise, as torch.max(input, other)
        return _core.maximum(input, dim) if is_max else _core.minimum(input, dim)
    if dim is None:
        if keepdim:
            raise TypeError("[max] keepdim needs a dim")
        return _core._amax(input, None, False, is_max)
    values, indices = _core._max_dim(input, dim, keepdim, is_max)
    return result(values, indices)


def max(input, dim=None, keepdim=False):  # noqa: A001 - PyTorch's name
    return _extreme(input, dim, keepdim, True, max_result)


def min(input, dim=None, keepdim=False):  # noqa: A001
    return _extreme(input, dim, keepdim, False, min_result)


def amax(input, dim=(), keepdim=False):
    return _core._amax(input, None if dim == () else dim, keepdim, True)


def amin(input, dim=(), keepdim=False):
    return _core._amax(input, None if dim == () else dim, keepdim, False)


def argmax(input, dim=None, keepdim=False):
    return _core._argmax(input, dim, keepdim, True)


def argmin(input, dim=None, keepdim=False):
    return _core._argmax(input, dim, keepdim, False)


def _correction(unbiased, correction):
    if correction is not None:
        return float(correction)
    return 1.0 if unbiased is None or unbiased else 0.0


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, bool):  # var(x, False): the old (input, unbiased) overload
        dim, unbiased = None, dim
    return _core._var(input, dim, _correction(unbiased, correction), keepdim, False)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return _core._var(input, dim, _correction(unbiased, correction), keepdim, True)


def logsumexp(input, dim, keepdim=False):
    return _core._logsumexp(input, dim, keepdim)


def _softmax_dim(ndim):
    # PyTorch's legacy choice when dim is not given.
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, dtype=None, _stacklevel=3):
    if dtype is not None:
        input = input.to(dtype)
    return _core._softmax(input, _softmax_dim(input.ndim) if dim is None else dim)


def log_softmax(input, dim=None, dtype=None, _stacklevel=3):
    if dtype is not None:
        input = input.to(dtype)
    return _core._log_softmax(input, _softmax_dim(input.ndim) if dim is None else dim)


def all(input, dim=None, keepdim=False):  # noqa: A001
    return _core._all(input, dim, keepdim)


def any(input, dim=None, keepdim=False):  # noqa: A001
    return _core._any(input, dim, keepdim)


gather = _core.gather

sort_result = collections.namedtuple("sort", ["values", "indices"])
topk_result = collections.namedtuple("topk", ["values", "indices"])


def _check_tensor(x, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"[{op}] expected a Tensor, got {type(x).__name__}")


def sort(input, dim=-1, descending=False, stable=False):
    """Values and indices of input sorted along dim. Always stable (equal elements keep their
    order, which stable=False allows too); NaN sorts above every number, as in PyTorch."""
    _check_tensor(input, "sort")
    return sort_result(*_core._sort(input, dim, bool(descending)))


def argsort(input, dim=-1, descending=False, stable=False):
    _check_tensor(input, "argsort")
    return _core._argsort(input, dim, bool(descending))


def topk(input, k, dim=-1, largest=True, sorted=True):  # noqa: A002 - PyTorch's argument name
    """The k largest (smallest with largest=False) elements along dim and their indices, always
    in sorted order (sorted=False leaves the order unspecified in PyTorch)."""
    _check_tensor(input, "topk")
    return topk_result(*_core._topk(input, int(k), dim, bool(largest)))


def _scan_input(input, dtype, op):
    _check_tensor(input, op)
    if dtype is not None:
        return input.to(dtype)
    if not input.dtype.is_floating_point:  # integers and bools accumulate as int64, as in PyTorch
        return input.to(_core.dtype.int64)
    return input


def cumsum(input, dim, *, dtype=None):
    """Cumulative sum along dim (float32 accumulates in double, integers and bools as int64)."""
    return _core._cumsum(_scan_input(input, dtype, "cumsum"), dim)


def cumprod(input, dim, *, dtype=None):
    """Cumulative product along dim; its gradient is exact where input has zeros."""
    return _core._cumprod(_scan_input(input, dtype, "cumprod"), dim)


def _reduce_arg(reduce):
    if reduce is not None and reduce not in ("add", "multiply"):
        raise ValueError(f"[scatter] reduce argument must be either 'add' or 'multiply', got {reduce!r}")
    return reduce


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    """A copy of input with src (a tensor, or a number written everywhere) put at index along dim;
    reduce='add' / 'multiply' combines with the values there instead (repeats accumulate)."""
    _check_tensor(input, "scatter")
    if src is None:
        src = value
    if src is None:
        raise TypeError("[scatter] expected src (a tensor) or value (a number)")
    return _core._scatter(input, dim, index, src, _reduce_arg(reduce), "scatter")


def scatter_add(input, dim, index, src):
    """input + (src scattered along dim at index, repeated indices accumulating)."""
    _check_tensor(input, "scatter_add")
    return _core._scatter(input, dim, index, src, "add", "scatter_add")


def _inplace_from(fn):
    def method(self, *args, **kwargs):
        src = self.clone() if (_core.is_grad_enabled() and self.requires_grad) else self
        return self.copy_(fn(src, *args, **kwargs))
    method.__name__ = fn.__name__ + "_"
    return method


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
    """The distinct values of input (sorted; with dim, the distinct slices along dim), and on request
    the index of each input element's value in them and how often each occurs."""
    import numpy as np
    from ._tensor import tensor
    _check_tensor(input, "unique")
    arr = input.detach().numpy()
    if dim is not None:
        nd = input.ndim or 1
        if not -nd <= dim < nd:
            raise IndexError(f"[unique] dimension out of range (expected to be in range of [{-nd}, {nd - 1}], "
                             f"but got {dim})")
        values, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True, axis=dim % nd)
        inverse = inverse.reshape(-1)
    else:
        values, inverse, counts = np.unique(arr.reshape(-1), return_inverse=True, return_counts=True)
        inverse = inverse.reshape(arr.shape)
    out = [tensor(values, dtype=input.dtype)]
    if return_inverse:
        out.append(tensor(inverse.astype(np.int64)))
    if return_counts:
        out.append(tensor(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def bincount(input, weights=None, minlength=0):
    """Counts of each value 0 .. max(input) of a 1-D non-negative int64 tensor (sums of weights
    with weights: float32 weights give float32, other weights float64, as in PyTorch)."""
    import numpy as np
    from ._tensor import tensor
    _check_tensor(input, "bincount")
    if input.dtype not in (_core.dtype.int64, _core.dtype.bool) or input.ndim != 1:
        raise RuntimeError(f"[bincount] only supports 1-d non-negative integral inputs, got shape "
                           f"{tuple(input.shape)} {input.dtype}")
    if minlength < 0:
        raise RuntimeError(f"[bincount] minlength should be >= 0, got {minlength}")
    arr = input.numpy().astype(np.int64)
    if arr.size and arr.min() < 0:
        raise RuntimeError("[bincount] bincount only supports 1-d non-negative integral inputs")
    if weights is None:
        return tensor(np.bincount(arr, minlength=minlength).astype(np.int64))
    if tuple(weights.shape) != tuple(input.shape):
        raise RuntimeError(f"[bincount] weights should be 1-d and have the same length as input "
                           f"(input shape {tuple(input.shape)}, weights shape {tuple(weights.shape)})")
    w = weights.detach().numpy()
    out_dtype = _core.dtype.float32 if weights.dtype == _core.dtype.float32 else _core.dtype.float64
    return tensor(np.bincount(arr, weights=w.astype(np.float64), minlength=minlength), dtype=out_dtype)


_METHODS = {
    "max": max, "min": min, "amax": amax, "amin": amin, "argmax": argmax, "argmin": argmin, "var": var, "std": std,
    "logsumexp": logsumexp, "softmax": lambda self, dim, dtype=None: softmax(self, dim, dtype),
    "log_softmax": lambda self, dim, dtype=None: log_softmax(self, dim, dtype), "all": all, "any": any,
    "gather": lambda self, dim, index: _core.gather(self, dim, index), "scatter_add": scatter_add,
    "scatter": scatter, "sort": sort, "argsort": argsort, "topk": topk, "unique": unique, "bincount": bincount,
    "cumsum": lambda self, dim, *, dtype=None: cumsum(self, dim, dtype=dtype),
    "cumprod": lambda self, dim, *, dtype=None: cumprod(self, dim, dtype=dtype),
}
_METHODS["scatter_"] = _inplace_from(scatter)
_METHODS["scatter_add_"] = _inplace_from(scatter_add)
_METHODS["cumsum_"] = _inplace_from(cumsum)
_METHODS["cumprod_"] = _inplace_from(cumprod)
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)
