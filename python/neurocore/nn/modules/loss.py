"""``neurocore.nn.modules.loss``: the classes PyTorch defines in ``torch.nn.modules.loss``."""
from ..loss import *  # noqa: F401,F403
from ..loss import __all__, _Loss, _WeightedLoss  # noqa: F401
