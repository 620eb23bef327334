"""``neurocore.nn.modules.module``: the classes PyTorch defines in ``torch.nn.modules.module``."""
from ..module import Module  # noqa: F401

__all__ = ["Module"]
