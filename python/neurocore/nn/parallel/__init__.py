"""``neurocore.nn.parallel``: data parallelism. DistributedDataParallel averages gradients across
processes over MPI; DataParallel is a pass-through (neurocore has one device, the CPU)."""
from .data_parallel import DataParallel, data_parallel
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel", "data_parallel"]
