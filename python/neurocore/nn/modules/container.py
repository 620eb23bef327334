"""``neurocore.nn.modules.container``: the classes PyTorch defines in ``torch.nn.modules.container``."""
from ..container import Sequential, ModuleList, ModuleDict, ParameterList  # noqa: F401

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList"]
