"""``DistributedSampler``: each process of a data-parallel job gets its own share of the indices."""
import numpy as np

__all__ = ["DistributedSampler"]


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
