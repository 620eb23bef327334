"""_reduce tensor functions (exported as neurocore.*)."""
__all__ = []
