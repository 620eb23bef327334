"""Minimal ``torch.utils.data``: Dataset, TensorDataset and a batching DataLoader.

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


class DataLoader:
    """Iterates over mini-batches of a dataset.

    Args:
        dataset: a Dataset (TensorDataset batches are gathered in one step).
        batch_size: samples per batch. Default: ``1``.
        shuffle: reshuffle at every epoch. Default: ``False``.
        drop_last: drop the last incomplete batch. Default: ``False``.
        seed: seed of the shuffling generator; ``None`` draws one from neurocore's generator so
            ``neurocore.manual_seed`` makes the order repeatable. Default: ``None``.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None):
        if batch_size < 1:
            raise ValueError(f"[DataLoader] batch_size must be positive, got {batch_size}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self._seed = seed

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self):
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
