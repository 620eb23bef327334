"""Minimal ``torch.utils.data``: Dataset, TensorDataset, DistributedSampler and a batching DataLoader.

Batches of a TensorDataset are gathered with one NumPy fancy-index per tensor (no per-sample
Python loop); other datasets are collated by stacking their samples.
"""
import numpy as np

from .. import _core
from .._tensor import Tensor, tensor


class Dataset:
    def __getitem__(self, index):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError


class TensorDataset(Dataset):
    """Samples are rows of the given tensors (or NumPy arrays), which must share their first dim."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("[TensorDataset] needs at least one tensor")
        n = len(tensors[0])
        for i, t in enumerate(tensors):
            if len(t) != n:
                raise ValueError(f"[TensorDataset] tensor {i} has {len(t)} rows, tensor 0 has {n}")
        self.tensors = tensors
        self._arrays = [t.detach().numpy() if isinstance(t, Tensor) else np.asarray(t) for t in tensors]

    def __getitem__(self, index):
        return tuple(tensor(a[index]) for a in self._arrays)

    def __len__(self):
        return len(self._arrays[0])


class DistributedSampler:
    """Gives each of `num_replicas` ranks its own share of a dataset's indices, as PyTorch's
    ``DistributedSampler``: the (shuffled) indices are padded by repeating the first ones to a
    multiple of `num_replicas` (or cut to one with ``drop_last``), and rank r takes every
    `num_replicas`-th index starting at r. Call ``set_epoch(e)`` at each epoch for a new order;
    every rank draws the same permutation from ``seed + epoch``.

    Args:
        dataset: anything with ``len``.
        num_replicas, rank: default to the process group's world size and rank.
        shuffle: permute the indices. Default: ``True``.
        seed: shared by all ranks. Default: ``0``.
        drop_last: drop the tail that does not divide evenly instead of padding. Default: ``False``.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            from .. import distributed as dist
            if not dist.is_initialized():
                raise RuntimeError("[DistributedSampler] pass num_replicas and rank, or call "
                                   "neurocore.distributed.init_process_group() first")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"[DistributedSampler] invalid rank {rank} for num_replicas {num_replicas}; rank "
                             f"should be in the interval [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last, self.epoch = shuffle, seed, drop_last, 0
        n = len(dataset)
        self.num_samples = n // num_replicas if drop_last else -(-n // num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.num_samples

    def __iter__(self):
        n = len(self.dataset)
        order = np.random.default_rng(self.seed + self.epoch).permutation(n) if self.shuffle else np.arange(n)
        if self.drop_last:
            order = order[:self.total_size]
        elif self.total_size > n:
            order = np.concatenate([order] + [order] * ((self.total_size - n) // max(n, 1)) +
                                   [order[:(self.total_size - n) % max(n, 1)]])
        return iter(order[self.rank:self.total_size:self.num_replicas].tolist())


class DataLoader:
    """Iterates over mini-batches of a dataset.

    Args:
        dataset: a Dataset (TensorDataset batches are gathered in one step).
        batch_size: samples per batch. Default: ``1``.
        shuffle: reshuffle at every epoch. Default: ``False``.
        sampler: an iterable of indices (e.g. a DistributedSampler) deciding the order; excludes
            ``shuffle``. Default: ``None``.
        drop_last: drop the last incomplete batch. Default: ``False``.
        seed: seed of the shuffling generator; ``None`` draws one from neurocore's generator so
            ``neurocore.manual_seed`` makes the order repeatable. Default: ``None``.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, drop_last=False, seed=None):
        if batch_size < 1:
            raise ValueError(f"[DataLoader] batch_size must be positive, got {batch_size}")
        if sampler is not None and shuffle:
            raise ValueError("[DataLoader] sampler option is mutually exclusive with shuffle")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.sampler = sampler
        self._seed = seed

    def __len__(self):
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self):
        if self.sampler is not None:
            return np.fromiter(iter(self.sampler), np.int64)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        seed = self._seed
        if seed is None:
            key, counter = _core.get_rng_state()
            seed = (key * 1000003 + counter) & 0xFFFFFFFF
            _core.set_rng_state((key, counter + 1))
        else:
            self._seed = seed + 1
        return np.random.default_rng(seed).permutation(n)

    def __iter__(self):
        order = self._order()
        stop = len(self) * self.batch_size
        for start in range(0, min(stop, len(order)), self.batch_size):
            idx = order[start:start + self.batch_size]
            if isinstance(self.dataset, TensorDataset):
                yield tuple(tensor(a[idx]) for a in self.dataset._arrays)
            else:
                samples = [self.dataset[int(i)] for i in idx]
                yield _collate(samples)


def _collate(samples):
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return tuple(_collate([s[k] for s in samples]) for k in range(len(first)))
    arrays = [s.detach().numpy() if isinstance(s, Tensor) else np.asarray(s) for s in samples]
    return tensor(np.stack(arrays))
