"""NAdam (Adam with Nesterov momentum, Dozat 2016), as ``torch.optim.NAdam``."""
import numpy as np

from .._tensor import get_default_dtype, tensor
from .optimizer import _check, _check_lr
from ._array import ArrayOptimizer, lerp_


class NAdam(ArrayOptimizer):
    """NAdam with PyTorch's momentum schedule mu_t = beta1 (1 - 0.5 * 0.96^(t * momentum_decay)).

    Args:
        lr: Default: ``2e-3``. betas: Default: ``(0.9, 0.999)``. eps: Default: ``1e-8``.
        weight_decay: Default: ``0``. momentum_decay: Default: ``4e-3``.
        decoupled_weight_decay: AdamW-style decay. Default: ``False``. maximize: Default: ``False``.
        foreach, capturable, differentiable: accepted.
    """

    _state_keys = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        _check_lr(lr)
        _check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        _check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        _check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        _check(momentum_decay >= 0.0, f"Invalid momentum_decay value: {momentum_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable))

    def _update(self, group, param, x, grad, states, step):
        exp_avg, exp_avg_sq = states
        (beta1, beta2), lr, eps, wd = group["betas"], group["lr"], group["eps"], group["weight_decay"]
        state = self.state[param]
        if "mu_product" not in state:  # a 0-d tensor of the default dtype, as in PyTorch
            state["mu_product"] = tensor(1.0, dtype=get_default_dtype())
        mu_product_arr = state["mu_product"].detach().numpy()
        bias_correction2 = 1 - beta2 ** step
        if wd != 0:
            if group["decoupled_weight_decay"]:
                x *= 1 - lr * wd
            else:
                grad = grad + wd * x
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * group["momentum_decay"])))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * group["momentum_decay"])))
        mu_product_arr *= np.asarray(mu, mu_product_arr.dtype)
        mu_product = float(mu_product_arr)
        lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (grad * grad)
        denom = (exp_avg_sq / bias_correction2) ** 0.5 + eps
        mu_product_next = mu_product * mu_next
        x += (-lr * (1.0 - mu) / (1.0 - mu_product)) * (grad / denom)
        x += ((-lr * mu_next) / (1.0 - mu_product_next)) * (exp_avg / denom)
