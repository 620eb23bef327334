"""Adamax (Adam with the infinity norm), as ``torch.optim.Adamax``."""
import numpy as np

from .optimizer import _check, _check_lr
from ._array import ArrayOptimizer, lerp_


class Adamax(ArrayOptimizer):
    """Adamax: exp_avg as in Adam, exp_inf = max(beta2 * exp_inf, |grad| + eps), step
    lr / (1 - beta1^t) * exp_avg / exp_inf.

    Args:
        lr: Default: ``2e-3``. betas: Default: ``(0.9, 0.999)``. eps: Default: ``1e-8``.
        weight_decay: L2 penalty. Default: ``0``. maximize: Default: ``False``.
        foreach, capturable, differentiable: accepted.
    """

    _state_keys = ("exp_avg", "exp_inf")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        _check_lr(lr)
        _check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        _check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        _check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable, capturable=capturable))

    def _update(self, group, param, x, grad, states, step):
        exp_avg, exp_inf = states
        (beta1, beta2), lr, eps, wd = group["betas"], group["lr"], group["eps"], group["weight_decay"]
        if wd != 0:
            grad = grad + wd * x
        lerp_(exp_avg, grad, 1 - beta1)
        exp_inf *= beta2
        np.maximum(exp_inf, np.abs(grad) + eps, out=exp_inf)
        clr = lr / (1 - beta1 ** step)
        x += -clr * (exp_avg / exp_inf)
