"""InstanceNorm1d / 2d / 3d: per-(sample, channel) normalisation over the spatial dims, with
PyTorch's arguments (affine and track_running_stats off by default), buffers and state_dict keys."""
import warnings

from . import functional as F
from .normalization import _BatchNorm


class _InstanceNorm(_BatchNorm):
    r"""Normalises each channel of each sample over its spatial positions:
    :math:`y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \gamma + \beta`.

    With ``track_running_stats`` the running estimates are updated in training (the mean over the
    batch of the per-instance statistics) and used in eval mode; otherwise the input's statistics
    are used in both modes.

    Args:
        num_features: number of channels C.
        eps: added to the variance. Default: ``1e-5``.
        momentum: running-stat update factor (``None`` counts as 0). Default: ``0.1``.
        affine: learn a per-channel ``weight`` and ``bias``. Default: ``False``.
        track_running_stats: keep ``running_mean``/``running_var``. Default: ``False``.
    """
    spatial_dims = 1

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False,
                 device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # Checkpoints from before PyTorch 0.4 hold running stats even without track_running_stats:
        # report and drop them, as PyTorch does.
        if local_metadata.get("version", None) is None and not self.track_running_stats:
            keys = [prefix + name for name in ("running_mean", "running_var") if prefix + name in state_dict]
            if keys:
                error_msgs.append(f"Unexpected running stats buffer(s) {' and '.join(repr(k) for k in keys)} for "
                                  f"{type(self).__name__} with track_running_stats=False. Please remove these keys "
                                  f"from state_dict, or set track_running_stats=True.")
                for key in keys:
                    state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, input):
        name, unbatched = type(self).__name__, self.spatial_dims + 1
        if input.dim() not in (unbatched, unbatched + 1):
            raise ValueError(f"[{name}] expected {unbatched}D or {unbatched + 1}D input (got {input.dim()}D input "
                             f"of shape {tuple(input.shape)})")
        feature_dim = input.dim() - unbatched
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"[{name}] expected input's size at dim={feature_dim} to match num_features "
                                 f"({self.num_features}), but got: {input.shape[feature_dim]} (shape "
                                 f"{tuple(input.shape)}).")
            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. You can silence this "
                          "warning by not passing in num_features, which is not used because affine=False",
                          stacklevel=2)
        batched = input.unsqueeze(0) if input.dim() == unbatched else input
        out = F.instance_norm(batched, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              0.0 if self.momentum is None else self.momentum, self.eps)
        return out.squeeze(0) if input.dim() == unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance norm over (N, C, L) or unbatched (C, L) input. See :class:`_InstanceNorm`."""
    spatial_dims = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance norm over (N, C, H, W) or unbatched (C, H, W) input. See :class:`_InstanceNorm`."""
    spatial_dims = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance norm over (N, C, D, H, W) or unbatched (C, D, H, W) input. See :class:`_InstanceNorm`."""
    spatial_dims = 3
