"""``neurocore.nn.modules.normalization``: the classes PyTorch defines in ``torch.nn.modules.normalization``."""
from ..normalization import LayerNorm, RMSNorm, GroupNorm, LocalResponseNorm  # noqa: F401

__all__ = ["LayerNorm", "RMSNorm", "GroupNorm", "LocalResponseNorm"]
