"""``neurocore.nn.modules.pixelshuffle``: the classes PyTorch defines in ``torch.nn.modules.pixelshuffle``."""
from ..pixelshuffle import PixelShuffle, PixelUnshuffle  # noqa: F401

__all__ = ["PixelShuffle", "PixelUnshuffle"]
