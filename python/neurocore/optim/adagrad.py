"""Adagrad with learning-rate decay."""
from .. import _core
from .optimizer import Optimizer, _check, _check_lr


class Adagrad(Optimizer):
    """Args: lr (default 1e-2), lr_decay (0), weight_decay (0), initial_accumulator_value (0),
    eps (1e-10), maximize (False). State is created eagerly, as PyTorch does."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        _check_lr(lr)
        _check(lr_decay >= 0.0, f"Invalid lr_decay value: {lr_decay}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        _check(initial_accumulator_value >= 0.0, f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        _check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable, fused=fused))
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["step"] = 0
                self._state_tensor(p, "sum", group["initial_accumulator_value"])

    def _update_group(self, group, params, grads):
        sums = [self._state_tensor(p, "sum", group["initial_accumulator_value"]) for p in params]
        steps = self._advance_step(params)
        _core._adagrad_step(params, grads, sums, steps, group["lr"], group["lr_decay"], group["weight_decay"],
                            group["eps"], group["maximize"])
