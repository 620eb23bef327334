"""``nc.cuda``: what CPU code calls on ``torch.cuda``. There is no CUDA: ``is_available()`` is
False and ``device_count()`` 0; seeding and ``synchronize`` do nothing (as PyTorch's do before CUDA
is initialised); anything that needs a CUDA device raises."""
from . import amp  # noqa: F401


def is_available():
    return False


def device_count():
    return 0


def is_initialized():
    return False


def manual_seed(seed):
    """Seeds CUDA's generator in PyTorch; there is none here, so this does nothing."""


def manual_seed_all(seed):
    """Seeds every CUDA generator in PyTorch; there is none here, so this does nothing."""


def synchronize(device=None):
    """Waits for CUDA kernels in PyTorch; neurocore's ops have finished when they return."""


def empty_cache():
    """Releases cached CUDA memory in PyTorch; nothing is cached on a CUDA device here."""


def _unavailable(what):
    raise RuntimeError(f"[cuda.{what}] CUDA is not available: neurocore runs on the CPU only")


def current_device():
    _unavailable("current_device")


def set_device(device):
    _unavailable("set_device")


def get_device_name(device=None):
    _unavailable("get_device_name")


def get_device_properties(device=None):
    _unavailable("get_device_properties")


def is_bf16_supported(including_emulation=True):
    return False
