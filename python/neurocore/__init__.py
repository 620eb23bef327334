"""neurocore: a CPU deep-learning library with a C++17 SIMD/OpenMP core and a PyTorch-style API."""
from . import _core
from ._core import Tensor, cpu_capability, get_num_threads, set_num_threads, manual_seed
