"""Gradient clipping and parameter/vector conversion (re-exported by ``neurocore.nn.utils``)."""
import math

import numpy as np

from ... import _core
from ..._core import Tensor
from ..._tensor import no_grad, tensor


def _grads(parameters, op):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = []
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"[{op}] expected tensors, got {type(p).__name__}")
        if p.grad is not None:
            grads.append(p.grad)
    return grads


def _vector_norm(t, p):
    if p == math.inf:
        return t.abs().amax()
    if p == -math.inf:
        return t.abs().amin()
    if p == 0:
        return (t != 0).sum().to(t.dtype)
    return (t.abs() ** p).sum() ** (1.0 / p)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scales all gradients in place so that their joint norm is at most max_norm; returns the
    norm before clipping (a 0-dim tensor). As in PyTorch, the joint norm is the norm of the
    per-gradient norms, and the scale is min(1, max_norm / (norm + 1e-6))."""
    grads = _grads(parameters, "clip_grad_norm_")
    norm_type = float(norm_type)
    if not grads:
        return tensor(0.0)
    with no_grad():
        norms = [_vector_norm(g, norm_type).to(grads[0].dtype) for g in grads]
        total = _vector_norm(_core.cat([n.reshape(1) for n in norms], 0), norm_type)
        if error_if_nonfinite and not bool(_core.isfinite(total).item()):
            raise RuntimeError(f"[clip_grad_norm_] The total norm of order {norm_type} for gradients from "
                               "`parameters` is non-finite, so it cannot be clipped. To disable this error and "
                               "scale the gradients by the non-finite norm anyway, set "
                               "`error_if_nonfinite=False`")
        coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.to(g.dtype))
    return total


clip_grad_norm = clip_grad_norm_


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamps every gradient element to [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters, "clip_grad_value_"):
            g.copy_(_core.clamp(g, -clip_value, clip_value))


def parameters_to_vector(parameters):
    """All parameters flattened into one 1-D tensor (a copy)."""
    return tensor(np.concatenate([p.detach().numpy().reshape(-1) for p in parameters]))


def vector_to_parameters(vec, parameters):
    offset = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(tensor(vec.detach().numpy()[offset:offset + n].reshape(tuple(p.shape))))
            offset += n
