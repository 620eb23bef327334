"""Samplers with ``torch.utils.data``'s names, arguments and checks. Random ones draw from a
generator as described in ``_random.py``."""
import numpy as np

from ..._tensor import Tensor
from ._random import draw_seed, numpy_rng

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler"]


class Sampler:
    """Base class: an iterable of dataset indices (or of lists of indices, for a batch sampler)."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """Indices 0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def _order(self):
        return np.arange(len(self.data_source))

    def __len__(self):
        return len(self.data_source)


def _check_positive_int(value, name):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} should be a positive integer value, but got {name}={value}")


def _check_bool(value, name, error=TypeError):
    if not isinstance(value, bool):
        raise error(f"{name} should be a boolean value, but got {name}={value}")


class RandomSampler(Sampler):
    """Random indices: a new permutation per epoch (``replacement=False``), or `num_samples` draws
    with replacement.

    Args:
        data_source: the dataset. replacement: Default: ``False``.
        num_samples: indices per epoch. Default: ``len(data_source)``; more than that without
            replacement gives whole permutations followed by part of one.
        generator: see ``_random.py``. Default: ``None`` (a fresh seed from the global generator each epoch).
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source, self.replacement, self._num_samples, self.generator = \
            data_source, replacement, num_samples, generator
        _check_bool(replacement, "replacement")
        _check_positive_int(self.num_samples, "num_samples")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        return iter(self._order().tolist())

    def _order(self):
        """The epoch's indices as one array (what BatchSampler slices without a per-index loop)."""
        n = len(self.data_source)
        # Without a generator PyTorch seeds a fresh one from the global generator each epoch.
        rng = numpy_rng(self.generator) if self.generator is not None else np.random.default_rng(draw_seed(None))
        if self.replacement:
            return rng.integers(0, n, self.num_samples)
        parts = [rng.permutation(n) for _ in range(self.num_samples // n)]
        parts.append(rng.permutation(n)[:self.num_samples % n])
        return np.concatenate(parts)

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given `indices` in a random order, a new one each epoch."""

    def __init__(self, indices, generator=None):
        self.indices, self.generator = indices, generator

    def __iter__(self):
        for i in numpy_rng(self.generator).permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """`num_samples` indices in [0, len(weights)), index i drawn with probability proportional to
    weights[i] (with or without replacement)."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        _check_positive_int(num_samples, "num_samples")
        _check_bool(replacement, "replacement", ValueError)
        w = weights.detach().numpy() if isinstance(weights, Tensor) else np.asarray(weights)
        w = w.astype(np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape {tuple(w.shape)}")
        self.weights, self.num_samples, self.replacement, self.generator = w, num_samples, replacement, generator

    def __iter__(self):
        w = self.weights
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise RuntimeError("[WeightedRandomSampler] probability tensor contains either `inf`, `nan` or element < 0")
        nonzero = int(np.count_nonzero(w))
        if nonzero == 0:
            raise RuntimeError("[WeightedRandomSampler] invalid multinomial distribution (sum of probabilities <= 0)")
        if not self.replacement and self.num_samples > nonzero:
            raise RuntimeError("[WeightedRandomSampler] cannot sample n_sample > prob_dist.size(-1) samples without "
                               f"replacement (n_sample {self.num_samples}, {nonzero} nonzero weights)")
        rng = numpy_rng(self.generator)
        yield from rng.choice(len(w), self.num_samples, replace=self.replacement, p=w / w.sum()).tolist()

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the indices of `sampler` into lists of `batch_size` (the last one shorter unless
    `drop_last`)."""

    def __init__(self, sampler, batch_size, drop_last):
        _check_positive_int(batch_size, "batch_size")
        _check_bool(drop_last, "drop_last", ValueError)
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        order = getattr(self.sampler, "_order", None)
        if order is not None:  # neurocore's sequential/random samplers: slice the epoch's index array
            indices = order()
            stop = len(indices) - len(indices) % self.batch_size if self.drop_last else len(indices)
            for start in range(0, stop, self.batch_size):
                yield indices[start:start + self.batch_size].tolist()
            return
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else (n + self.batch_size - 1) // self.batch_size
