"""``neurocore.utils.checkpoint``: activation checkpointing, as ``torch.utils.checkpoint``.

``checkpoint(fn, *args)`` runs ``fn`` without keeping the tensors its backward would need, and runs
it again, recording history, when the backward pass reaches its output: memory traded for a second
forward. The second run starts from the random-number state of the first (``preserve_rng_state``),
so dropout draws the same masks. The gradients of the parameters ``fn`` uses accumulate during the
second run's backward; those of the tensor arguments flow on to whatever made them.

Both of PyTorch's variants give the same gradients here. ``use_reentrant=False`` also trains the
parameters of a module (``fn`` an ``nn.Module`` or one of its bound methods) when no argument
requires a gradient, as PyTorch's non-reentrant variant does; with ``use_reentrant=True`` such a
call's output has no history, with PyTorch's warning.
"""
import warnings

from .. import _core
from ..autograd import Function, backward as _backward, enable_grad
from ..nn.module import Module

__all__ = ["checkpoint", "checkpoint_sequential"]


def _rng_state():
    import neurocore
    return neurocore.get_rng_state()


def _set_rng_state(state):
    import neurocore
    neurocore.set_rng_state(state)


class _Recompute(Function):
    @staticmethod
    def forward(ctx, run, kwargs, preserve_rng_state, n_args, *args_and_params):
        ctx.run, ctx.kwargs, ctx.n_args = run, kwargs, n_args
        ctx.rng = _rng_state() if preserve_rng_state else None
        ctx.inputs = args_and_params[:n_args]
        out = run(*ctx.inputs, **kwargs)
        if isinstance(out, _core.Tensor):
            return out
        if isinstance(out, tuple) and out and all(isinstance(o, _core.Tensor) for o in out):
            return out
        raise TypeError("[checkpoint] the function must return a Tensor or a tuple of Tensors, got "
                        f"{type(out).__name__}")

    @staticmethod
    def backward(ctx, *grads):
        inputs = [a.detach().requires_grad_(a.requires_grad) if isinstance(a, _core.Tensor) else a
                  for a in ctx.inputs]
        resume = None
        if ctx.rng is not None:
            resume = _rng_state()
            _set_rng_state(ctx.rng)
        try:
            with enable_grad():
                out = ctx.run(*inputs, **ctx.kwargs)
        finally:
            if resume is not None:
                _set_rng_state(resume)
        outs = out if isinstance(out, tuple) else (out,)
        pairs = [(o, g) for o, g in zip(outs, grads) if o.requires_grad and g is not None]
        if pairs:
            _backward([o for o, _ in pairs], [g for _, g in pairs])
        arg_grads = tuple(a.grad if isinstance(a, _core.Tensor) and a.requires_grad else None for a in inputs)
        # The parameters passed along (use_reentrant=False) got their gradients just above.
        extra = len(ctx.needs_input_grad) - 4 - ctx.n_args
        return (None, None, None, None) + arg_grads + (None,) * extra


def _module_params(fn):
    owner = fn if isinstance(fn, Module) else getattr(fn, "__self__", None)
    if not isinstance(owner, Module):
        return []
    return [p for p in owner.parameters() if p.requires_grad]


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check="default", debug=False,
               preserve_rng_state=True, **kwargs):
    if context_fn is not None:
        raise ValueError("[checkpoint] context_fn is not supported")
    import neurocore
    if not neurocore.is_grad_enabled():  # nothing to save memory for
        return function(*args, **kwargs)
    params = [] if use_reentrant in (None, True) else _module_params(function)
    if not params and not any(isinstance(a, _core.Tensor) and a.requires_grad for a in args):
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None")
    return _Recompute.apply(function, kwargs, preserve_rng_state, len(args), *args, *params)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Runs ``functions`` (an ``nn.Sequential`` or a list of modules) in ``segments`` checkpointed
    pieces, the last one as is (its output's backward needs it at once)."""
    functions = list(functions.children()) if isinstance(functions, Module) else list(functions)
    if not 1 <= segments <= max(len(functions), 1):
        raise ValueError(f"[checkpoint_sequential] segments must be in [1, {len(functions)}], got {segments}")
    size = len(functions) // segments

    def run(start, end):
        def forward(x):
            for f in functions[start:end]:
                x = f(x)
            return x
        return forward

    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run(start, end + 1), input, use_reentrant=use_reentrant, **kwargs)
    return run(end + 1, len(functions))(input)
