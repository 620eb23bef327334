"""``neurocore.autograd``: gradients of outputs with respect to inputs (``autograd.grad``)."""
from . import _core
from ._tensor import no_grad, enable_grad, set_grad_enabled  # noqa: F401


def _as_list(x):
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Returns the gradients of `outputs` with respect to `inputs` without touching ``.grad``."""
    outputs, inputs = _as_list(outputs), _as_list(inputs)
    grads = _as_list(grad_outputs) or [None] * len(outputs)
    retain = create_graph if retain_graph is None else retain_graph
    return tuple(_core._autograd_grad(outputs, inputs, grads, retain, create_graph, allow_unused))


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
    tensors = _as_list(tensors)
    grads = _as_list(grad_tensors) or [None] * len(tensors)
    retain = create_graph if retain_graph is None else retain_graph
    _core._autograd_backward(tensors, grads, retain, create_graph)


# --- anomaly detection ------------------------------------------------------------------------------
# While enabled, every op that records history checks its outputs, and every backward function its
# gradients, for NaN/Inf values that none of its inputs had; the first such op raises a
# RuntimeError naming it ("Function 'DivBackward' returned nan values in its 0th output") and the
# module whose forward called it (nn.Module.__call__ records the module path while it is on).
# The checks scan every tensor, so it is a debugging mode, as in PyTorch.

_anomaly_enabled = [False]  # mirrored here so Module.__call__ tests a Python list, not a C++ call


def set_detect_anomaly(mode, check_nan=True):
    """Turns anomaly detection on or off (process-wide, as in PyTorch)."""
    _anomaly_enabled[0] = bool(mode) and bool(check_nan)
    _core._set_anomaly_enabled(_anomaly_enabled[0])


def is_anomaly_enabled():
    return _core._is_anomaly_enabled()


def is_anomaly_check_nan_enabled():
    return _core._is_anomaly_enabled()


class detect_anomaly:
    """Context manager and decorator that enables anomaly detection inside it."""

    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def __enter__(self):
        self._prev = is_anomaly_enabled()
        set_detect_anomaly(True, self.check_nan)
        return self

    def __exit__(self, *exc):
        set_detect_anomaly(self._prev)
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)
        return wrapper
