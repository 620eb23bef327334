"""_creation tensor functions (exported as neurocore.*)."""
__all__ = []
