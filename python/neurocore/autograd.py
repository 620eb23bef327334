"""``neurocore.autograd``: gradients of outputs with respect to inputs (``autograd.grad``), tensor hooks and
custom differentiable functions (``autograd.Function``)."""
from . import _core
from ._creation import zeros_like
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


# --------------------------------------------------------------------------------------------- hooks

class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` (or leaving a ``with`` block) removes the hook."""

    def __init__(self, tensor, hook_id):
        self._tensor, self.id = tensor, hook_id

    def remove(self):
        if self._tensor is not None:
            self._tensor._remove_hook(self.id)
            self._tensor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _register_hook(self, hook):
    """Calls ``hook(grad)`` with the gradient of this tensor each time one is computed; a returned
    tensor replaces the gradient (PyTorch's ``Tensor.register_hook``)."""
    def checked(grad):
        out = hook(grad)
        if out is not None and (not isinstance(out, _core.Tensor) or tuple(out.shape) != tuple(grad.shape)):
            got = tuple(out.shape) if isinstance(out, _core.Tensor) else type(out).__name__
            raise RuntimeError(f"[register_hook] the hook returned {got}; expected None or a tensor of the "
                               f"gradient's shape {tuple(grad.shape)}")
        return out
    return RemovableHandle(self, self._register_hook(checked))


def _register_post_accumulate_grad_hook(self, hook):
    """Calls ``hook(tensor)`` after the gradient of this leaf was accumulated into ``.grad``."""
    return RemovableHandle(self, self._register_post_accumulate_grad_hook(hook))


_core.Tensor.register_hook = _register_hook
_core.Tensor.register_post_accumulate_grad_hook = _register_post_accumulate_grad_hook


def queue_callback(fn):
    """Runs ``fn()`` once the backward pass now running finishes (PyTorch's
    ``Variable._execution_engine.queue_callback``); only valid inside a hook during backward."""
    _core._queue_callback(fn)


# --------------------------------------------------------------------------------------------- custom functions

class FunctionCtx:
    """The ``ctx`` of a custom ``Function``: ``save_for_backward``, ``saved_tensors``, ``needs_input_grad``,
    ``mark_non_differentiable``, ``set_materialize_grads``; any other attribute may be stored on it."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self._saved = ()
        self._non_differentiable = []
        self._materialize_grads = True

    def save_for_backward(self, *tensors):
        self._saved = tensors

    @property
    def saved_tensors(self):
        return self._saved

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable.extend(tensors)

    def set_materialize_grads(self, value):
        self._materialize_grads = bool(value)

    def mark_dirty(self, *tensors):
        raise NotImplementedError("[Function] in-place custom functions (ctx.mark_dirty) are not supported; "
                                  "return a new tensor instead")


class Function:
    """A differentiable operation written in Python, as ``torch.autograd.Function``::

        class Exp(Function):
            @staticmethod
            def forward(ctx, x):
                y = x.exp()
                ctx.save_for_backward(y)
                return y

            @staticmethod
            def backward(ctx, grad):
                (y,) = ctx.saved_tensors
                return grad * y

        y = Exp.apply(x)

    ``forward`` runs without recording history; ``backward`` receives one gradient per output and
    returns one per input of ``forward`` (None for non-tensor inputs or inputs that need none). The
    ``forward(*args)`` + ``setup_context(ctx, inputs, output)`` form is accepted too.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("[Function] subclasses must implement forward")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("[Function] subclasses must implement backward")

    @classmethod
    def apply(cls, *args, **kwargs):
        Tensor = _core.Tensor
        ctx = FunctionCtx(tuple(isinstance(a, Tensor) and a.requires_grad for a in args))
        separate_setup = "setup_context" in cls.__dict__ or any(
            "setup_context" in vars(base) for base in cls.__mro__[1:] if base is not Function)
        with no_grad():
            out = cls.forward(*args, **kwargs) if separate_setup else cls.forward(ctx, *args, **kwargs)
        if separate_setup:
            cls.setup_context(ctx, args, out)
        outs = out if isinstance(out, tuple) else (out,)
        if not all(isinstance(o, Tensor) for o in outs):
            raise TypeError(f"[{cls.__name__}] forward must return a Tensor or a tuple of Tensors")
        # An output that is one of the inputs becomes a new view, so that recording history on it
        # does not rewrite the input's.
        outs = tuple(o.view_as(o) if any(o._is_same(a) for a in args if isinstance(a, Tensor)) else o
                     for o in outs)
        differentiable = [o.dtype.is_floating_point and not any(o._is_same(n) for n in ctx._non_differentiable)
                          for o in outs]
        tensor_positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        recorded = [o for o, d in zip(outs, differentiable) if d]

        def backward(*grads):
            it = iter(grads)
            full = []
            for o, d in zip(outs, differentiable):
                g = next(it) if d else None
                if g is None and ctx._materialize_grads:
                    g = zeros_like(o)
                full.append(g)
            res = cls.backward(ctx, *full)
            res = res if isinstance(res, tuple) else (res,)
            if len(res) != len(args):
                raise RuntimeError(f"[{cls.__name__}.backward] returned {len(res)} gradients, expected "
                                   f"{len(args)} (one per input of forward)")
            picked = []
            for i in tensor_positions:
                g, a = res[i], args[i]
                if g is not None and tuple(g.shape) != tuple(a.shape):
                    raise RuntimeError(f"[{cls.__name__}.backward] gradient {i} has shape {tuple(g.shape)}, "
                                       f"but input {i} has shape {tuple(a.shape)}")
                picked.append(g if g is None or g.dtype == a.dtype else g.to(a.dtype))
            return tuple(picked)

        if recorded:
            _core._record_function(cls.__name__, [args[i] for i in tensor_positions], recorded, backward)
        return outs if isinstance(out, tuple) else outs[0]
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


from ._gradcheck import gradcheck, gradgradcheck, GradcheckError  # noqa: E402,F401 - needs this module loaded
