"""RAdam (rectified Adam, Liu et al. 2019), as ``torch.optim.RAdam``."""
from .optimizer import _check, _check_lr
from ._array import ArrayOptimizer, lerp_


class RAdam(ArrayOptimizer):
    """RAdam: Adam whose adaptive step is switched on (and rectified) once the variance of the
    adaptive learning rate is tractable (rho_t > 5); before that, SGD with momentum.

    Args:
        lr: Default: ``1e-3``. betas: Default: ``(0.9, 0.999)``. eps: Default: ``1e-8``.
        weight_decay: Default: ``0``. decoupled_weight_decay: AdamW-style decay. Default: ``False``.
        maximize: Default: ``False``. foreach, capturable, differentiable: accepted.
    """

    _state_keys = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        _check_lr(lr)
        _check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        _check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        _check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                                      foreach=foreach, capturable=capturable, differentiable=differentiable))

    def _update(self, group, param, x, grad, states, step):
        exp_avg, exp_avg_sq = states
        (beta1, beta2), lr, eps, wd = group["betas"], group["lr"], group["eps"], group["weight_decay"]
        if wd != 0:
            if group["decoupled_weight_decay"]:
                x *= 1 - lr * wd
            else:
                grad = grad + wd * x
        lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (grad * grad)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        corrected = exp_avg / bias_correction1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            adaptive_lr = (bias_correction2 ** 0.5) / (exp_avg_sq ** 0.5 + eps)
            x -= corrected * lr * adaptive_lr * rect
        else:
            x -= corrected * lr
