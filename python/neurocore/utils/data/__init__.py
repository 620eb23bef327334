"""``neurocore.utils.data``: ``torch.utils.data`` on neurocore tensors: datasets, samplers,
``default_collate`` and a DataLoader with real worker processes."""
from .dataset import Dataset, IterableDataset, TensorDataset, Subset, ConcatDataset, ChainDataset, random_split
from .sampler import (Sampler, SequentialSampler, RandomSampler, SubsetRandomSampler, WeightedRandomSampler,
                      BatchSampler)
from .distributed import DistributedSampler
from ._collate import default_collate, default_convert
from ._worker import WorkerInfo, get_worker_info
from .dataloader import DataLoader
from . import dataloader, dataset, sampler, distributed  # noqa: F401 - module paths code imports

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "ChainDataset", "random_split",
           "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler", "DistributedSampler", "default_collate", "default_convert", "WorkerInfo",
           "get_worker_info", "DataLoader"]
