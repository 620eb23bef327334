"""Loss modules: thin wrappers over the functional losses in neurocore._losses."""
from .. import _losses
from .._losses import _reduction
from .module import Module

__all__ = ["MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "CrossEntropyLoss", "NLLLoss", "BCELoss",
           "BCEWithLogitsLoss"]


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        self.reduction = _reduction(size_average, reduce, reduction)


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class MSELoss(_Loss):
    """Mean squared error. Default: reduction='mean'."""

    def forward(self, input, target):
        return _losses.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error. Default: reduction='mean'."""

    def forward(self, input, target):
        return _losses.l1_loss(input, target, reduction=self.reduction)


class HuberLoss(_Loss):
    """Quadratic below delta, linear above. Defaults: reduction='mean', delta=1.0."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input, target):
        return _losses.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(_Loss):
    """Huber loss divided by beta. Defaults: reduction='mean', beta=1.0."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target):
        return _losses.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class CrossEntropyLoss(_WeightedLoss):
    """log_softmax + negative log likelihood over logits (N, C) or (N, C, d1, ...); targets are
    class indices or class probabilities. Defaults: weight=None, ignore_index=-100,
    reduction='mean', label_smoothing=0.0."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return _losses.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                                     reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log likelihood over log-probabilities. Defaults: weight=None, ignore_index=-100, reduction='mean'."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return _losses.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                                reduction=self.reduction)


class BCELoss(_WeightedLoss):
    """Binary cross entropy over probabilities (logs clamped at -100). Defaults: weight=None, reduction='mean'."""

    def forward(self, input, target):
        return _losses.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross entropy, computed stably from logits. Defaults: weight=None,
    reduction='mean', pos_weight=None."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return _losses.binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                        pos_weight=self.pos_weight)
