"""``nc.backends.mkldnn``: neurocore has its own kernels, not oneDNN's; ``is_available()`` is False."""
enabled = True


def is_available():
    return False
