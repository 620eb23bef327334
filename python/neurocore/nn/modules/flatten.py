"""``neurocore.nn.modules.flatten``: the classes PyTorch defines in ``torch.nn.modules.flatten``."""
from ..linear import Flatten, Unflatten  # noqa: F401

__all__ = ["Flatten", "Unflatten"]
