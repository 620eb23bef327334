"""Reductions and softmax (``nc.max``, ``x.argmax(dim=1)``, ``nc.softmax``, ...)."""
import collections

from . import _core
from ._core import Tensor

__all__ = ["max", "min", "amax", "amin", "argmax", "argmin", "var", "std", "logsumexp", "softmax", "log_softmax",
           "all", "any", "gather", "scatter_add"]

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


def scatter_add(input, dim, index, src):
    """input + (src scattered along dim at index, repeated indices accumulating)."""
    return input + _core._scatter_add_new(input.shape, dim, index, src)


_METHODS = {
    "max": max, "min": min, "amax": amax, "amin": amin, "argmax": argmax, "argmin": argmin, "var": var, "std": std,
    "logsumexp": logsumexp, "softmax": lambda self, dim, dtype=None: softmax(self, dim, dtype),
    "log_softmax": lambda self, dim, dtype=None: log_softmax(self, dim, dtype), "all": all, "any": any,
    "gather": lambda self, dim, index: _core.gather(self, dim, index), "scatter_add": scatter_add,
}
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)
