"""``neurocore.nn.modules.instancenorm``: the classes PyTorch defines in ``torch.nn.modules.instancenorm``."""
from ..instancenorm import _InstanceNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d  # noqa: F401

__all__ = ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"]
