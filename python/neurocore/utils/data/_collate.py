"""``default_collate`` and ``default_convert`` with PyTorch's rules: tensors and NumPy arrays are
stacked along a new first dim, Python floats become float64 tensors and ints int64 tensors, strings
stay lists, dicts / namedtuples / sequences are collated field by field (tuples become lists)."""
import collections.abc

import numpy as np

from ... import _core
from ..._indexing import stack
from ..._tensor import Tensor, tensor, as_tensor

_ERR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def _is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _stack(batch):
    shape = tuple(batch[0].shape)
    for i, t in enumerate(batch):
        if tuple(t.shape) != shape:
            raise RuntimeError(f"[default_collate] stack expects each tensor to be equal size, but got {list(shape)} at "
                               f"entry 0 and {list(t.shape)} at entry {i}")
    if any(t.requires_grad for t in batch):
        return stack(list(batch), 0)
    return tensor(np.stack([t.detach().numpy() for t in batch]), dtype=batch[0].dtype)


def default_collate(batch):
    """Puts each data field of a list of samples into a tensor with a leading batch dimension."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack(batch)
    if isinstance(elem, (np.ndarray, np.generic)) and not isinstance(elem, (np.str_, np.bytes_)):
        if elem.dtype.kind in "OSUV":
            raise TypeError(_ERR.format(elem.dtype))
        if isinstance(elem, np.ndarray) and elem.ndim > 0:
            return _stack([as_tensor(np.asarray(b)) for b in batch])
        return as_tensor(np.asarray(batch))
    if isinstance(elem, float):
        return tensor(batch, dtype=_core.dtype.float64)
    if isinstance(elem, int):  # bool included: a bool list gives a bool tensor, as in PyTorch
        return tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(collated)
        except TypeError:
            return collated
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(samples) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(e) != len(elem) for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = [default_collate(samples) for samples in zip(*batch)]
        if isinstance(elem, tuple):
            return transposed  # PyTorch returns a list for tuples
        try:
            return type(elem)(transposed)
        except TypeError:
            return transposed
    raise TypeError(_ERR.format(type(elem)))


def default_convert(data):
    """Turns NumPy arrays (also inside dicts, namedtuples and sequences) into tensors; the collate
    function of a DataLoader with ``batch_size=None``."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray) and data.dtype.kind not in "OSUV":
        return as_tensor(data)
    if isinstance(data, np.generic) and data.dtype.kind not in "OSUV":
        return as_tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        converted = {key: default_convert(v) for key, v in data.items()}
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data
