"""``neurocore.nn.modules.dropout``: the classes PyTorch defines in ``torch.nn.modules.dropout``."""
from ..dropout import Dropout, Dropout2d  # noqa: F401

__all__ = ["Dropout", "Dropout2d"]
