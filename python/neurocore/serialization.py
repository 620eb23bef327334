"""``nc.save`` / ``nc.load``: pickle-based, like ``torch.save``; tensors are stored as NumPy arrays.

Tensors (and subclasses such as ``nn.Parameter``) pickle by value, so ``copy.deepcopy(model)``,
``pickle`` and multiprocessing work too. Views are saved as their own contiguous data.
"""
import io
import os
import pickle

import numpy as np

from . import _core
from ._tensor import Tensor, tensor


def _rebuild_tensor(cls, array, requires_grad):
    t = tensor(array)
    if cls is not Tensor:
        return cls(t, requires_grad)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _reduce_ex(self, protocol):
    if not self.is_leaf:
        raise RuntimeError("[save] only leaf tensors can be pickled (a tensor with history has shape "
                           f"{tuple(self.shape)}); call .detach() first")
    return _rebuild_tensor, (type(self), np.ascontiguousarray(self._numpy_unchecked()), self.requires_grad)


def _deepcopy(self, memo):
    if id(self) in memo:
        return memo[id(self)]
    fn, args = _reduce_ex(self, 2)
    copy = fn(*args)
    memo[id(self)] = copy
    return copy


Tensor.__reduce_ex__ = _reduce_ex
Tensor.__deepcopy__ = _deepcopy


def save(obj, f):
    """Saves `obj` (a tensor, a state_dict, any picklable structure of tensors) to a path or file.

    Writes to a temporary file first and renames it, so an interrupted save never truncates an
    earlier file at the same path.
    """
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    else:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)


class _Unpickler(pickle.Unpickler):
    """Loads only neurocore, NumPy and builtin containers unless weights_only=False."""

    _ALLOWED = {("neurocore.serialization", "_rebuild_tensor"), ("collections", "OrderedDict"),
                ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
                ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                ("neurocore._core", "Tensor"), ("builtins", "set"), ("builtins", "frozenset"),
                ("builtins", "slice"), ("builtins", "complex"), ("numpy._core.numeric", "_frombuffer"),
                ("numpy.core.numeric", "_frombuffer")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED or module.startswith("neurocore.nn.parameter") or \
                (module.startswith("numpy") and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"[load] refusing to load {module}.{name} with weights_only=True; "
                                     "pass weights_only=False for files you trust")


def load(f, weights_only=True):
    """Loads an object written by :func:`save` from a path or file."""
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            return load(fh, weights_only)
    if weights_only:
        return _Unpickler(f).load()
    return pickle.load(f)
