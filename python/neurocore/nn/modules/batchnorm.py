"""``neurocore.nn.modules.batchnorm``: the classes PyTorch defines in ``torch.nn.modules.batchnorm``."""
from ..normalization import _BatchNorm, BatchNorm1d, BatchNorm2d  # noqa: F401
from ..sync_batchnorm import SyncBatchNorm  # noqa: F401

__all__ = ["BatchNorm1d", "BatchNorm2d", "SyncBatchNorm"]
