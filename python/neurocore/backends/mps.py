"""``nc.backends.mps``: there is no Metal device; ``is_available()`` and ``is_built()`` are False."""


def is_available():
    return False


def is_built():
    return False
