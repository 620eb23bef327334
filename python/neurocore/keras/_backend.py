"""Shared state and conversions of neurocore.keras: layer names, the training flag that fit/evaluate
set, NumPy <-> Tensor conversion, and the logits that a softmax/sigmoid output remembers so that a
cross-entropy on probabilities is computed from logits (as Keras on TensorFlow does)."""
import collections
import contextlib
import re
import weakref

import numpy as np

from .. import _core
from .._tensor import from_numpy, float32

_NAME_COUNTS = collections.defaultdict(int)
_STATE = {"training": False, "track_logits": False, "symbolic": False}
_LOGITS = {}  # id(probabilities) -> (probabilities, logits, "softmax" | "sigmoid") while tracking
_MASKS = {}  # id(tensor) -> (weak reference to the tensor, its Keras mask): entries die with the tensor


def snake_case(name):
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def unique_name(base):
    """'dense', 'dense_1', 'dense_2', ... as Keras numbers auto-named layers and models."""
    n = _NAME_COUNTS[base]
    _NAME_COUNTS[base] += 1
    return base if n == 0 else f"{base}_{n}"


def clear_session():
    """Resets the automatic layer names (keras.backend.clear_session / keras.utils.clear_session)."""
    _NAME_COUNTS.clear()
    _LOGITS.clear()


def in_training():
    return _STATE["training"]


@contextlib.contextmanager
def phase(training, track_logits=False):
    """Sets the training flag layers read when no `training` argument is given."""
    saved = dict(_STATE)
    _STATE["training"], _STATE["track_logits"] = training, track_logits
    try:
        yield
    finally:
        _STATE.update(saved)
        if not track_logits:
            _LOGITS.clear()


@contextlib.contextmanager
def symbolic():
    """Marks the dry runs on zero batches that infer output shapes (layers keep no state from them)."""
    saved = _STATE["symbolic"]
    _STATE["symbolic"] = True
    try:
        yield
    finally:
        _STATE["symbolic"] = saved


def in_symbolic():
    return _STATE["symbolic"]


def remember_logits(probs, logits, kind):
    if _STATE["track_logits"]:
        _LOGITS[id(probs)] = (probs, logits, kind)
    return probs


def logits_of(probs, kind):
    entry = _LOGITS.get(id(probs))
    if entry is not None and entry[0] is probs and entry[2] == kind:
        return entry[1]
    return None


def to_tensor(x, dtype=None):
    """A Tensor from a NumPy array / list / Tensor; floats become float32 (Keras's default)."""
    if isinstance(x, _core.Tensor):
        return x
    arr = np.asarray(x)
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif arr.dtype.kind == "f":
        arr = arr.astype(np.float32, copy=False)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64, copy=False)
    elif arr.dtype.kind == "b":
        pass
    else:
        raise TypeError(f"[keras] cannot convert an array of dtype {arr.dtype} to a tensor")
    return from_numpy(np.ascontiguousarray(arr))


def to_numpy(t):
    return t.detach().numpy() if isinstance(t, _core.Tensor) else np.asarray(t)


def float_tensor(x):
    t = to_tensor(x)
    return t if t.dtype == float32 else t.to(float32)


def set_mask(t, mask):
    """Attaches a Keras mask (a bool tensor of the leading dims, True = step takes part) to `t`, as
    Keras 3 sets `t._keras_mask`; held through a weak reference, so it lives as long as `t`."""
    key = id(t)
    if mask is None:
        _MASKS.pop(key, None)
        return t
    _MASKS[key] = (weakref.ref(t, lambda _, k=key: _MASKS.pop(k, None)), mask)
    return t


def mask_of(t):
    """The Keras mask attached to `t` by set_mask, or None."""
    entry = _MASKS.get(id(t))
    if entry is not None and entry[0]() is t:
        return entry[1]
    return None
