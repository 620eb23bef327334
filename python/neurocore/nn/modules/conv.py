"""``neurocore.nn.modules.conv``: the classes PyTorch defines in ``torch.nn.modules.conv``."""
from ..conv import _ConvNd, Conv1d, Conv2d, _ConvTransposeNd, ConvTranspose1d, ConvTranspose2d  # noqa: F401

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]
