"""RMSprop (optionally centered, with momentum)."""
from .. import _core
from .optimizer import Optimizer, _check, _check_lr


class RMSprop(Optimizer):
    """Args: lr (default 1e-2), alpha (0.99), eps (1e-8), weight_decay (0), momentum (0),
    centered (False), maximize (False)."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        _check_lr(lr)
        _check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        _check(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        _check(alpha >= 0.0, f"Invalid alpha value: {alpha}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, capturable=capturable, foreach=foreach, maximize=maximize,
                                      differentiable=differentiable))

    def _update_group(self, group, params, grads):
        square_avgs = [self._state_tensor(p, "square_avg") for p in params]
        bufs = [self._state_tensor(p, "momentum_buffer") if group["momentum"] > 0 else None for p in params]
        grad_avgs = [self._state_tensor(p, "grad_avg") if group["centered"] else None for p in params]
        self._advance_step(params)
        _core._rmsprop_step(params, grads, square_avgs, bufs, grad_avgs, group["lr"], group["alpha"], group["eps"],
                            group["weight_decay"], group["momentum"], group["centered"], group["maximize"])
