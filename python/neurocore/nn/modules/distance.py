"""``neurocore.nn.modules.distance``: the classes PyTorch defines in ``torch.nn.modules.distance``."""
from ..distance import PairwiseDistance, CosineSimilarity  # noqa: F401

__all__ = ["PairwiseDistance", "CosineSimilarity"]
