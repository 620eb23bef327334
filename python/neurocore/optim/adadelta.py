"""Adadelta (Zeiler, 2012), as ``torch.optim.Adadelta``."""
from .optimizer import _check, _check_lr
from ._array import ArrayOptimizer


class Adadelta(ArrayOptimizer):
    """Adadelta: a running average of squared gradients and of squared updates sets each step.

    Args:
        lr: scale of the update. Default: ``1.0``. rho: averaging coefficient. Default: ``0.9``.
        eps: added inside the square roots. Default: ``1e-6``. weight_decay: L2 penalty. Default: ``0``.
        maximize: ascend instead. Default: ``False``. foreach, capturable, differentiable: accepted.
    """

    _state_keys = ("square_avg", "acc_delta")

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        _check_lr(lr)
        _check(0.0 <= rho <= 1.0, f"Invalid rho value: {rho}")
        _check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                                      capturable=capturable, foreach=foreach, differentiable=differentiable))

    def _update(self, group, param, x, grad, states, step):
        square_avg, acc_delta = states
        lr, rho, eps, wd = group["lr"], group["rho"], group["eps"], group["weight_decay"]
        if wd != 0:
            grad = grad + wd * x
        square_avg *= rho
        square_avg += (1 - rho) * (grad * grad)
        std = (square_avg + eps) ** 0.5
        delta = (acc_delta + eps) ** 0.5
        delta /= std
        delta *= grad
        acc_delta *= rho
        acc_delta += (1 - rho) * (delta * delta)
        x += -lr * delta
