"""``neurocore.utils``: data loading helpers (``neurocore.utils.data``) and activation
checkpointing (``neurocore.utils.checkpoint``)."""
from . import data, checkpoint  # noqa: F401
