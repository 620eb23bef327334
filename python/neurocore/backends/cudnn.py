"""``nc.backends.cudnn``: flags that change nothing (there is no cuDNN); ``is_available()`` is False."""
import contextlib

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available():
    return False


def version():
    return None


@contextlib.contextmanager
def flags(enabled=False, benchmark=False, benchmark_limit=10, deterministic=False, allow_tf32=True):
    yield
