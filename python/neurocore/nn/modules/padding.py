"""``neurocore.nn.modules.padding``: the classes PyTorch defines in ``torch.nn.modules.padding``."""
from ..padding import *  # noqa: F401,F403
from ..padding import __all__  # noqa: F401
