"""_indexing tensor functions (exported as neurocore.*)."""
__all__ = []
