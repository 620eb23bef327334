"""``neurocore.nn.modules.sparse``: the classes PyTorch defines in ``torch.nn.modules.sparse``."""
from ..sparse import Embedding  # noqa: F401

__all__ = ["Embedding"]
