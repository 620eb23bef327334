"""``neurocore.nn.modules.dropout``: the classes PyTorch defines in ``torch.nn.modules.dropout``."""
from ..dropout import Dropout, Dropout1d, Dropout2d, Dropout3d, AlphaDropout, FeatureAlphaDropout  # noqa: F401

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]
