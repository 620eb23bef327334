"""Functional losses composed from differentiable tensor ops, with ``torch.nn.functional``'s
signatures, checks and reductions: kl_div, margin_ranking_loss, cosine_embedding_loss,
pairwise_distance, cosine_similarity, triplet_margin_loss, poisson_nll_loss, gaussian_nll_loss.
(ctc_loss has its own file.)"""
import math
import warnings

from . import _core
from ._creation import ones_like, zeros_like
from ._losses import _reduction
from ._math import clamp_min, norm

__all__ = ["kl_div", "margin_ranking_loss", "cosine_embedding_loss", "pairwise_distance", "cosine_similarity",
           "triplet_margin_loss", "poisson_nll_loss", "gaussian_nll_loss"]


def _reduce(loss, reduction, message=None):
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(message or f"{reduction} is not a valid value for reduction")


def _check_reduction(reduction):
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _shape(t):
    return f"neurocore.Size([{', '.join(str(s) for s in t.shape)}])"


def _safe_positive(t):
    """t where t > 0, else 1: log(_safe_positive(t)) is finite, and so is its gradient."""
    return _core.where(_core.gt(t, 0), t, ones_like(t))


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Pointwise KL divergence target * (log target - input) with `input` in log space
    (``log_target``: target in log space too). ``reduction='batchmean'`` divides the sum by the
    batch size (the KL divergence's definition); ``'mean'`` averages over every element."""
    legacy = size_average is not None or reduce is not None
    if legacy:
        reduction = _reduction(size_average, reduce, reduction)
    elif reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      stacklevel=2)
    if reduction not in ("none", "mean", "sum", "batchmean"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if log_target:
        loss = _core.exp(target) * (target - input)
    else:  # xlogy(target, target) - target * input, with 0 log 0 = 0
        loss = target * _core.log(_safe_positive(target)) - target * input
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim != 0 else total
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """max(0, -target * (input1 - input2) + margin), target in {1, -1}."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if input1.ndim != input2.ndim or input1.ndim != target.ndim:
        raise RuntimeError(f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
                           f"input1: {_shape(input1)}, input2: {_shape(input2)}, target: {_shape(target)} ")
    return _reduce(_core.relu(-target * (input1 - input2) + margin), reduction)


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """1 - cos(x1, x2) where target is 1, max(0, cos(x1, x2) - margin) where it is -1 (cosine
    over the last dim of 1-D or 2-D inputs, with 1e-12 added to each squared norm as in PyTorch)."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if target.ndim not in (0, 1):
        raise RuntimeError(f"0D or 1D target tensor expected, multi-target not supported (target shape "
                           f"{tuple(target.shape)})")
    if target.ndim == 1 and (input1.ndim != 2 or input2.ndim != 2):
        raise RuntimeError(f"1D target tensor expects 2D input tensors, but found inputs with sizes "
                           f"{list(input1.shape)} and {list(input2.shape)}.")
    if target.ndim == 0 and (input1.ndim != 1 or input2.ndim != 1):
        raise RuntimeError(f"0D target tensor expects 1D input tensors, but found inputs with sizes "
                           f"{list(input1.shape)} and {list(input2.shape)}.")
    dim = target.ndim
    prod = (input1 * input2).sum(dim)
    mag1 = (input1 * input1).sum(dim) + 1e-12
    mag2 = (input2 * input2).sum(dim) + 1e-12
    cos = prod / _core.sqrt(mag1 * mag2)
    zeros = zeros_like(cos)
    pos = _core.where(_core.eq(target, 1), 1 - cos, zeros)
    neg = _core.where(_core.eq(target, -1), _core.relu(cos - margin), zeros)
    return _reduce(pos + neg, reduction)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """p-norm of x1 - x2 + eps over the last dim."""
    dim = max(x1.ndim, x2.ndim) - 1
    return norm(x1 - x2 + eps, p, dim if dim >= 0 else None, keepdim)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """x1 . x2 / max(|x1| |x2|, eps) along dim (each norm clamped as PyTorch does)."""
    n1 = clamp_min(_core.sqrt((x1 * x1).sum(dim)), eps) if eps else _core.sqrt((x1 * x1).sum(dim))
    n2 = clamp_min(_core.sqrt((x2 * x2).sum(dim)), eps) if eps else _core.sqrt((x2 * x2).sum(dim))
    return ((x1 / n1.unsqueeze(dim)) * (x2 / n2.unsqueeze(dim))).sum(dim)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    """max(0, margin + d(anchor, positive) - d(anchor, negative)) with d the pairwise p-distance
    (``swap``: the smaller of d(a, n) and d(p, n))."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                           f"dimensions, but got: anchor {anchor.ndim}D, positive {positive.ndim}D, and negative "
                           f"{negative.ndim}D inputs")
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = _core.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce(_core.relu(margin + d_pos - d_neg), reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    """Poisson negative log likelihood: exp(input) - target * input (``log_input``), or
    input - target * log(input + eps); ``full`` adds Stirling's approximation of log(target!)
    where target > 1."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if log_input:
        loss = _core.exp(input) - target * input
    else:
        loss = input - target * _core.log(input + eps)
    if full:
        above_one = _core.gt(target, 1)
        t = _core.where(above_one, target, ones_like(target))
        stirling = t * _core.log(t) - t + 0.5 * _core.log(2 * math.pi * t)
        loss = loss + _core.where(above_one, stirling, zeros_like(stirling))
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """0.5 * (log(var) + (input - target)^2 / var) (+ 0.5 log(2 pi) with ``full``). `var` is one
    variance per element, per sample (input's shape without its last dim, or with it as 1), or a
    float; values below `eps` are raised to eps, with the gradient passed through unchanged as in
    PyTorch."""
    if isinstance(var, float):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = var * ones_like(input)
    elif bool(_core.lt(var, 0).any()):
        raise ValueError("var has negative entry/entries")
    in_shape, var_shape = tuple(input.shape), tuple(var.shape)
    if var_shape != in_shape:
        if in_shape[:-1] == var_shape:
            var = var.unsqueeze(-1)
        elif not (input.ndim == var.ndim and sum(y for x, y in zip(in_shape, var_shape) if x != y) == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    raw = var.detach()
    var = var + (clamp_min(raw, eps) - raw)  # the clamped value, the identity's gradient
    loss = 0.5 * (_core.log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)
