"""Adam and AdamW (decoupled weight decay), with PyTorch's bias-correction formula."""
from .. import _core
from .optimizer import Optimizer, _check, _check_lr


class Adam(Optimizer):
    """Args: lr (default 1e-3), betas ((0.9, 0.999)), eps (1e-8), weight_decay (0, added to the
    gradient as L2), amsgrad (False), maximize (False)."""

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None):
        _check_lr(lr)
        _check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        _check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        _check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable, fused=fused))

    def _update_group(self, group, params, grads):
        amsgrad, state, new = group["amsgrad"], self.state, self._state_tensor
        exp_avgs, exp_avg_sqs, max_sqs, steps = [], [], [], []
        for p in params:  # one pass over the state: this runs at every training step
            st = state[p]
            exp_avgs.append(st["exp_avg"] if "exp_avg" in st else new(p, "exp_avg"))
            exp_avg_sqs.append(st["exp_avg_sq"] if "exp_avg_sq" in st else new(p, "exp_avg_sq"))
            max_sqs.append((st["max_exp_avg_sq"] if "max_exp_avg_sq" in st else new(p, "max_exp_avg_sq"))
                           if amsgrad else None)
            st["step"] = step = st.get("step", 0) + 1
            steps.append(int(step))
        beta1, beta2 = group["betas"]
        _core._adam_step(params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, group["lr"], beta1, beta2,
                         group["eps"], group["weight_decay"], group["amsgrad"], group["maximize"], self._decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay: p <- p * (1 - lr * weight_decay) before the Adam update.
    Defaults as Adam except weight_decay=1e-2."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused)
