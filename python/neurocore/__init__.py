"""neurocore: a CPU deep-learning library with a C++17 SIMD/OpenMP core and a PyTorch-style API.

    import neurocore as nc
    from neurocore import nn, optim
"""
from . import _core
from ._core import (Tensor, cpu_capability, get_num_threads, set_num_threads, manual_seed, initial_seed,
                    is_grad_enabled, get_rng_state, set_rng_state, empty_cache, set_cache_limit, memory_stats)
from ._tensor import (float32, float64, int64, bool_, float, double, long, Size, tensor, as_tensor, from_numpy,
                      no_grad, enable_grad, set_grad_enabled, inference_mode, set_default_dtype, get_default_dtype)
from ._functions import *  # noqa: F401,F403 - tensor functions: nc.matmul, nc.zeros, nc.exp, ...
from . import autograd, _losses
from .serialization import save, load

bool = bool_  # noqa: A001 - nc.bool as in PyTorch
__version__ = "0.1.0"
from . import datasets
from . import utils
from . import nn
from . import optim
