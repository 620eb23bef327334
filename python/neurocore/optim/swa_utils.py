"""Stochastic weight averaging and exponential moving averages of a model's weights
(``torch.optim.swa_utils``): ``AveragedModel``, ``SWALR``, ``update_bn`` and the average functions,
with PyTorch's formulas (on the CPU its per-tensor ones: a + (b - a) / (n + 1) for SWA)."""
import copy
import itertools
import math

from .. import _core
from .._tensor import tensor
from ..nn.module import Module
from ..nn.normalization import _BatchNorm
from .lr_scheduler import LRScheduler

__all__ = ["AveragedModel", "SWALR", "update_bn", "get_ema_avg_fn", "get_swa_avg_fn", "get_ema_multi_avg_fn",
           "get_swa_multi_avg_fn"]


def get_ema_avg_fn(decay=0.999):
    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


def get_ema_multi_avg_fn(decay=0.999):
    """In place over lists of tensors: ema <- lerp(ema, current, 1 - decay), PyTorch's lerp formula."""
    w = 1 - decay

    def ema_update(ema_param_list, current_param_list, _num_averaged):
        for ema, current in zip(ema_param_list, current_param_list):
            if not ema.dtype.is_floating_point:
                ema.copy_(current)
            elif abs(w) < 0.5:
                ema.copy_(ema + w * (current - ema))
            else:
                ema.copy_(current - (current - ema) * (1 - w))
    return ema_update


def get_swa_multi_avg_fn():
    def swa_update(averaged_param_list, current_param_list, num_averaged):
        update = get_swa_avg_fn()
        for averaged, current in zip(averaged_param_list, current_param_list):
            averaged.copy_(update(averaged, current, num_averaged))
    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` whose parameters (and, with ``use_buffers``, buffers) hold an average of
    the values ``update_parameters(model)`` has seen: equal weights by default (SWA), or what
    ``avg_fn(averaged, current, n_averaged)`` / ``multi_avg_fn(averaged_list, current_list,
    n_averaged)`` computes (``get_ema_avg_fn`` / ``get_ema_multi_avg_fn`` for an EMA)."""

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("[AveragedModel] only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", tensor(0, dtype=_core.dtype.int64))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _tensors(self, model):
        if self.use_buffers:
            return list(itertools.chain(model.parameters(), model.buffers()))
        return list(model.parameters())

    def update_parameters(self, model):
        mine = [t.detach() for t in self._tensors(self.module)]
        theirs = [t.detach() for t in self._tensors(model)]
        if len(mine) != len(theirs):
            raise ValueError(f"[AveragedModel.update_parameters] the model has {len(theirs)} tensors to average, "
                             f"the averaged copy {len(mine)}")
        n = int(self.n_averaged.item())
        if n == 0:
            for a, b in zip(mine, theirs):
                a.copy_(b)
        elif self.multi_avg_fn is not None:
            self.multi_avg_fn(mine, theirs, self.n_averaged)
        else:
            update = self.avg_fn or get_swa_avg_fn()
            for a, b in zip(mine, theirs):
                a.copy_(update(a, b, self.n_averaged if self.avg_fn else n))
        if not self.use_buffers:  # buffers follow the model's, as in PyTorch
            for a, b in zip(self.module.buffers(), model.buffers()):
                a.detach().copy_(b.detach())
        self.n_averaged.add_(1)


def update_bn(loader, model, device=None):
    """Recomputes the running statistics of every BatchNorm of ``model`` with one pass over
    ``loader`` (each batch, or its first element), as cumulative averages; the momenta and the
    training mode are restored after."""
    import neurocore
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    try:
        with neurocore.no_grad():
            for batch in loader:
                if isinstance(batch, (list, tuple)):
                    batch = batch[0]
                if device is not None:
                    batch = batch.to(device)
                model(batch)
    finally:
        for module, momentum in momenta.items():
            module.momentum = momentum
        model.train(was_training)


class SWALR(LRScheduler):
    """Anneals each group's learning rate to ``swa_lr`` over ``anneal_epochs`` steps (cosine or
    linear), then holds it."""

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos", last_epoch=-1):
        swa_lrs = list(swa_lr) if isinstance(swa_lr, (list, tuple)) else [swa_lr] * len(optimizer.param_groups)
        if len(swa_lrs) != len(optimizer.param_groups):
            raise ValueError(f"[SWALR] swa_lr must have one value per parameter group ({len(optimizer.param_groups)}), "
                             f"got {len(swa_lrs)}")
        for lr, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"[SWALR] anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"[SWALR] anneal_epochs must be a non-negative integer, got {anneal_epochs!r}")
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t):
        return t

    @staticmethod
    def _cosine_anneal(t):
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        return swa_lr if alpha == 1 else (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        # The learning rate before annealing is recovered from the current one, so that the
        # schedule composes with others (PyTorch's formula).
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in self.optimizer.param_groups]
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(self.optimizer.param_groups, prev_lrs)]
