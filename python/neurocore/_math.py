"""_math tensor functions (exported as neurocore.*)."""
__all__ = []
