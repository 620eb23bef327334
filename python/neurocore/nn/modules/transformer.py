"""``neurocore.nn.modules.transformer``: the classes PyTorch defines in ``torch.nn.modules.transformer``."""
from ..transformer import Transformer, TransformerEncoder, TransformerDecoder, TransformerEncoderLayer, TransformerDecoderLayer  # noqa: F401

__all__ = ["Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer", "TransformerDecoderLayer"]
