"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""
from .. import _core
from .optimizer import Optimizer, _check, _check_lr


class SGD(Optimizer):
    """Args: lr (default 1e-3), momentum (0), dampening (0), weight_decay (0), nesterov (False),
    maximize (False). The momentum buffer starts as the first gradient, as in PyTorch."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False,
                 foreach=None, differentiable=False, fused=None):
        _check_lr(lr)
        _check(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize, foreach=foreach,
                                      differentiable=differentiable, fused=fused))

    def _update_group(self, group, params, grads):
        bufs = [self.state[p].get("momentum_buffer") for p in params]
        bufs = _core._sgd_step(params, grads, bufs, group["lr"], group["momentum"], group["dampening"],
                               group["weight_decay"], group["nesterov"], group["maximize"])
        if group["momentum"] != 0:
            for p, b in zip(params, bufs):
                self.state[p]["momentum_buffer"] = b
