"""``nc.backends.openmp``: neurocore's kernels run on an OpenMP thread pool."""


def is_available():
    return True
