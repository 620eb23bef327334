"""``neurocore.nn.modules.batchnorm``: the classes PyTorch defines in ``torch.nn.modules.batchnorm``."""
from ..normalization import _BatchNorm, BatchNorm1d, BatchNorm2d  # noqa: F401
from ..sync_batchnorm import SyncBatchNorm

__all__ = ["BatchNorm1d", "BatchNorm2d", "SyncBatchNorm"]
