"""``nc.accelerator``: PyTorch's device-agnostic accelerator queries. neurocore has none."""


def is_available():
    return False


def device_count():
    return 0


def current_accelerator(check_available=False):
    return None


def synchronize(device=None):
    """Nothing to wait for: ops have finished when they return."""
