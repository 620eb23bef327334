"""Module-level tensor functions (``nc.matmul``, ``nc.sum``, ...) for the core ops.

Each op family adds its functions in its own module (``_creation.py``, ``_math.py``,
``_reduce.py``, ``_indexing.py``) and they are re-exported here.
"""
from . import _core
from ._core import matmul, linear, neg, contiguous, transpose, unsqueeze, flatten
from ._tensor import _shape_args, _clone

__all__ = ["matmul", "linear", "neg", "contiguous", "clone", "transpose", "unsqueeze", "flatten", "add", "sub",
           "mul", "div", "sum", "mean", "reshape", "permute", "squeeze", "mm", "numel"]


def add(input, other, alpha=1):
    return _core.add(input, other if alpha == 1 else other * alpha)


def sub(input, other, alpha=1):
    return _core.sub(input, other if alpha == 1 else other * alpha)


mul = _core.mul
div = _core.div
mm = matmul


def clone(input, *, memory_format=None):
    return _clone(input, memory_format=memory_format)


def numel(input):
    return input.numel()


_core.Tensor.mm = lambda self, mat2: _core.matmul(self, mat2)  # x.mm(w), used by pytorch/examples regression


def sum(input, dim=None, keepdim=False):  # noqa: A001
    return _core.sum(input, dim, keepdim)


def mean(input, dim=None, keepdim=False):
    return _core.mean(input, dim, keepdim)


def reshape(input, *shape):
    return _core.reshape(input, _shape_args(shape, "reshape"))


def permute(input, *dims):
    return _core.permute(input, _shape_args(dims, "permute"))


def squeeze(input, dim=None):
    return _core.squeeze(input, dim)

from ._creation import *  # noqa: E402,F401,F403
from ._math import *  # noqa: E402,F401,F403
from ._reduce import *  # noqa: E402,F401,F403
from ._indexing import *  # noqa: E402,F401,F403
from . import _creation, _math, _reduce, _indexing  # noqa: E402

__all__ = __all__ + _creation.__all__ + _math.__all__ + _reduce.__all__ + _indexing.__all__
