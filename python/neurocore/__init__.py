"""neurocore: a CPU deep-learning library with a C++17 SIMD/OpenMP core and a PyTorch-style API.

    import neurocore as nc
    from neurocore import nn, optim
"""
import os as _os

# OpenMP worker threads spin for a while between parallel regions before they sleep. libgomp's
# default spin (300,000 iterations, about a millisecond) costs a lot when the cores are shared
# (another process, or NumPy's BLAS threads): a waiting thread burns the time slice the busy one
# needs. 10,000 iterations still bridge the gap between back-to-back ops (measured: same speed on
# an idle machine, half the slowdown of the MLP training epoch on a loaded one). It only takes
# effect if libgomp is not loaded yet and the user has set neither variable.
if "GOMP_SPINCOUNT" not in _os.environ and "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "10000"

from . import _core  # noqa: E402
from ._core import (Tensor, cpu_capability, get_num_threads, set_num_threads, manual_seed, initial_seed,
                    is_grad_enabled, get_rng_state, set_rng_state, empty_cache, set_cache_limit, memory_stats)
from ._tensor import (float32, float64, int64, bool_, float, double, long, Size, uint8, int8, int16, int32, float16,
                      bfloat16, half, short, int, tensor, as_tensor, from_numpy,
                      no_grad, enable_grad, set_grad_enabled, inference_mode, set_default_dtype, get_default_dtype,
                      memory_format, contiguous_format, preserve_format, channels_last)
from ._device import device, set_default_device, get_default_device
from ._functions import *  # noqa: F401,F403 - tensor functions: nc.matmul, nc.zeros, nc.exp, ...
from ._shape_ops import *  # noqa: F401,F403 - nc.outer, nc.diag, nc.meshgrid, nc.repeat_interleave, ...
from . import autograd, _losses
from .serialization import save, load

bool = bool_  # noqa: A001 - nc.bool as in PyTorch
__version__ = "0.1.0"
from . import datasets
from . import utils
from . import nn
from . import optim
from . import distributed
from . import onnx  # imports the onnx package only when used
from . import export  # noqa: E402
from . import cuda, amp, backends, accelerator  # noqa: E402 - device plumbing CPU code calls
from .amp import autocast  # noqa: E402


def is_autocast_enabled(device_type=None):
    return False
