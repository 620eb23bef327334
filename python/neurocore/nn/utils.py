"""``neurocore.nn.utils``: gradient clipping and parameter/vector conversion."""
import numpy as np

from .. import _core
from .._core import Tensor
from .._tensor import no_grad, tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scales all gradients in place so that their joint norm is at most max_norm; returns the
    norm before clipping (a 0-dim tensor), as PyTorch does."""
    grads = _grads(parameters)
    if not grads:
        return tensor(0.0)
    norm_type = float(norm_type)
    with no_grad():
        if norm_type == float("inf"):
            norms = [g.abs().amax() for g in grads]
            total = _max_all(norms)
        else:
            total = sum(((g.abs() ** norm_type).sum() for g in grads), tensor(0.0, dtype=grads[0].dtype))
            total = total ** (1.0 / norm_type)
        if error_if_nonfinite and not bool(_core.isfinite(total).item()):
            raise RuntimeError(f"[clip_grad_norm_] the total norm of order {norm_type} of the gradients is non-finite, "
                               "so it cannot be clipped; set error_if_nonfinite=False to skip this check")
        coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.to(g.dtype))
    return total


def _max_all(values):
    out = values[0]
    for v in values[1:]:
        out = _core.maximum(out, v)
    return out


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamps every gradient element to [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
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
