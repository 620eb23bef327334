"""``neurocore.utils``: data loading helpers (``neurocore.utils.data``)."""
from . import data  # noqa: F401
