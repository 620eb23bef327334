"""SyncBatchNorm: batch norm whose statistics are computed over the batches of all ranks."""
import numpy as np

from .. import distributed as dist
from .._tensor import from_numpy
from ..autograd import Function
from .normalization import _BatchNorm


def _allreduce_sum(*tensors):
    """Sums per-channel float64 vectors across ranks in one allreduce; returns NumPy arrays."""
    flat = np.concatenate([t.detach().double().numpy().reshape(-1) for t in tensors])
    dist.all_reduce(from_numpy(flat))
    return np.split(flat, np.cumsum([t.numel() for t in tensors])[:-1])


def _global_mean_var(x, dims, view):
    """Count, mean and biased variance per channel over every rank's batch: each rank's count, mean
    and sum of squared deviations, gathered and combined exactly (Chan et al.), in float64."""
    channels = x.shape[1]
    count = x.numel() // channels
    local_mean = x.mean(dims) if count else x.sum(dims)
    centred = x - local_mean.view(view)
    mine = np.concatenate([[count], local_mean.detach().double().numpy(),
                           (centred * centred).sum(dims).detach().double().numpy()])
    every = from_numpy(np.zeros(mine.size * dist.get_world_size()))
    dist.all_gather_into_tensor(every, from_numpy(mine))
    stats = every.numpy().reshape(-1, 1 + 2 * channels)
    counts, means, m2s = stats[:, :1], stats[:, 1:1 + channels], stats[:, 1 + channels:]
    n = float(counts.sum())
    mean = (counts * means).sum(0) / max(n, 1.0)
    m2 = (m2s + counts * (means - mean) ** 2).sum(0)
    return n, mean, m2 / max(n, 1.0)


class _SyncBatchNormFunction(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, eps, factor):
        channels = x.shape[1]
        dims = tuple([0] + list(range(2, x.dim())))
        view = [1, channels] + [1] * (x.dim() - 2)
        n, mean, var = _global_mean_var(x, dims, view)
        if n <= 1:
            raise ValueError(f"[SyncBatchNorm] expected more than 1 value per channel across all ranks when "
                             f"training, got input shape {tuple(x.shape)} on this rank and {n:g} values in all")
        invstd = 1.0 / np.sqrt(var + eps)
        if running_mean is not None:
            rm, rv = running_mean.numpy(), running_var.numpy()
            rm[...] = (1 - factor) * rm + factor * mean
            rv[...] = (1 - factor) * rv + factor * var * n / (n - 1)
        mean_t = from_numpy(mean.astype(x.detach().numpy().dtype)).view(view)
        invstd_t = from_numpy(invstd.astype(x.detach().numpy().dtype)).view(view)
        xhat = (x - mean_t) * invstd_t
        ctx.save_for_backward(xhat, weight)
        ctx.invstd, ctx.n, ctx.dims, ctx.view = invstd_t, n, dims, view
        y = xhat
        if weight is not None:
            y = y * weight.view(view)
        if bias is not None:
            y = y + bias.view(view)
        return y

    @staticmethod
    def backward(ctx, gy):
        xhat, weight = ctx.saved_tensors
        sum_dy, sum_dy_xhat = gy.sum(ctx.dims), (gy * xhat).sum(ctx.dims)
        # The weight and bias gradients stay local (DistributedDataParallel averages them); the input
        # gradient needs the sums over every rank's batch.
        g_sum_dy, g_sum_dy_xhat = _allreduce_sum(sum_dy, sum_dy_xhat)
        dtype = gy.detach().numpy().dtype
        mean_dy = from_numpy((g_sum_dy / ctx.n).astype(dtype)).view(ctx.view)
        mean_dy_xhat = from_numpy((g_sum_dy_xhat / ctx.n).astype(dtype)).view(ctx.view)
        scale = ctx.invstd if weight is None else ctx.invstd * weight.view(ctx.view)
        dx = (gy - mean_dy - xhat * mean_dy_xhat) * scale
        return (dx, None if weight is None else sum_dy_xhat, None if weight is None else sum_dy,
                None, None, None, None)


class SyncBatchNorm(_BatchNorm):
    """Batch norm over (N, C, *) input with statistics over the whole distributed batch (all ranks'
    samples), as PyTorch's ``nn.SyncBatchNorm``. Outside training, or without an initialised process
    group of more than one rank, it is an ordinary batch norm. Arguments as :class:`BatchNorm2d`."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"[SyncBatchNorm] expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input):
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        return _SyncBatchNormFunction.apply(input, self.weight, self.bias, self.running_mean, self.running_var,
                                            self.eps, factor)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """Returns `module` with every BatchNorm layer replaced by a SyncBatchNorm holding the same
        parameters, buffers and training flag (a BatchNorm `module` itself is returned converted)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, process_group)
            if module.affine:
                converted.weight, converted.bias = module.weight, module.bias
            converted.running_mean, converted.running_var = module.running_mean, module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
            converted.train(module.training)
            return converted
        for name, child in list(module.named_children()):
            setattr(module, name, cls.convert_sync_batchnorm(child, process_group))
        return module
