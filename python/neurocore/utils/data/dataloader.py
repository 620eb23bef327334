"""``DataLoader`` with PyTorch's arguments and semantics: samplers and batch samplers, automatic
batching with ``collate_fn``, IterableDatasets, and ``num_workers`` real worker processes
(``multiprocessing``) seeded as PyTorch seeds them, with ``worker_init_fn``, ``prefetch_factor``,
``persistent_workers`` and ``timeout``. ``pin_memory`` is accepted and does nothing (there is no
device memory to pin for)."""
import itertools
import multiprocessing
import queue

from ._collate import default_collate, default_convert
from ._random import draw_seed
from ._worker import (STATUS_CHECK_INTERVAL, ExceptionWrapper, Fetcher, IterableStop, ResumeIteration,
                      get_worker_info, worker_loop)  # noqa: F401 - get_worker_info: the module path PyTorch has
from .dataset import IterableDataset, TensorDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader", "default_collate", "default_convert", "get_worker_info"]


class _InfiniteConstantSampler(Sampler):
    """The index "sampler" of an IterableDataset: None forever (the dataset decides when to stop)."""

    def __iter__(self):
        while True:
            yield None


class DataLoader:
    """Iterates over batches of a dataset.

    Args:
        dataset: a map-style Dataset (``__getitem__``/``__len__``) or an IterableDataset.
        batch_size: samples per batch; ``None`` turns automatic batching off. Default: ``1``.
        shuffle: a new random order each epoch. Default: ``False``.
        sampler: an iterable of indices; excludes ``shuffle``. Default: ``None``.
        batch_sampler: an iterable of lists of indices; excludes ``batch_size``, ``shuffle``,
            ``sampler`` and ``drop_last``. Default: ``None``.
        num_workers: worker processes loading batches; 0 loads in the main process. Default: ``0``.
        collate_fn: merges a list of samples into a batch. Default: :func:`default_collate`
            (:func:`default_convert` without automatic batching).
        pin_memory: accepted for compatibility; does nothing. Default: ``False``.
        drop_last: drop the last incomplete batch. Default: ``False``.
        timeout: seconds to wait for a batch from the workers before raising (0: forever). Default: ``0``.
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker after seeding. Default: ``None``.
        multiprocessing_context: a start method name or context. Default: the platform's.
        generator: draws the shuffling order and the workers' base seed (see ``_random.py``). Default: ``None``.
        prefetch_factor: batches loaded ahead per worker. Default: ``2`` with workers.
        persistent_workers: keep the workers between epochs. Default: ``False``.
        seed: neurocore's shortcut for a shuffling seed without a generator object. Default: ``None``.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True, seed=None):
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable "
                             "multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing.let num_workers > 0 "
                             "to enable multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if seed is not None and generator is None:
            generator = _SeedGenerator(seed)
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                                 f"shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, but got "
                                 f"sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, but "
                                 f"got batch_sampler={batch_sampler}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and "
                                 "drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
        if sampler is None:
            if self._iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.sampler, self.batch_sampler, self.generator = sampler, batch_sampler, generator
        self.num_workers, self.prefetch_factor, self.timeout = num_workers, prefetch_factor, timeout
        self.worker_init_fn, self.persistent_workers = worker_init_fn, persistent_workers
        self.multiprocessing_context = multiprocessing_context
        self.pin_memory, self.pin_memory_device, self.in_order = pin_memory, pin_memory_device, in_order
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if batch_sampler is not None else default_convert)
        self._workers_iter = None

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def _fetcher_args(self):
        fast = (isinstance(self.dataset, TensorDataset) and self._auto_collation
                and self.collate_fn is default_collate)
        return (self._iterable, self._auto_collation, self.collate_fn, self.drop_last, fast)

    def __len__(self):
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self.persistent_workers:
            if self._workers_iter is None:
                self._workers_iter = _MultiProcessIter(self)
            else:
                self._workers_iter._reset()
            return self._workers_iter
        return _MultiProcessIter(self)


class _SeedGenerator:
    """The generator behind ``DataLoader(seed=...)``."""

    def __init__(self, seed):
        self._seed = int(seed)

    def initial_seed(self):
        return self._seed


class _SingleProcessIter:
    def __init__(self, loader):
        self._sampler_iter = iter(loader._index_sampler)
        self._fetcher = Fetcher(loader.dataset, *loader._fetcher_args())
        self._length = len(loader) if not loader._iterable or hasattr(loader.dataset, "__len__") else None

    def __iter__(self):
        return self

    def __len__(self):
        return self._length

    def __next__(self):
        return self._fetcher.fetch(next(self._sampler_iter))


class _MultiProcessIter:
    """Hands indices to `num_workers` processes round-robin, keeps `prefetch_factor` batches per
    worker in flight and returns the batches in sampler order."""

    def __init__(self, loader):
        self._loader = loader
        ctx = loader.multiprocessing_context
        if ctx is None:
            ctx = multiprocessing
        elif isinstance(ctx, str):
            ctx = multiprocessing.get_context(ctx)
        self._num_workers, self._timeout = loader.num_workers, loader.timeout
        self._prefetch = loader.prefetch_factor * loader.num_workers
        self._persistent = loader.persistent_workers
        base_seed = draw_seed(loader.generator)
        self._done_event = ctx.Event()
        self._data_queue = ctx.Queue()
        self._index_queues, self._workers = [], []
        for worker_id in range(self._num_workers):
            index_queue = ctx.Queue()
            index_queue.cancel_join_thread()
            w = ctx.Process(target=worker_loop, daemon=True,
                            args=(loader.dataset, loader._fetcher_args(), index_queue, self._data_queue,
                                  self._done_event, base_seed, loader.worker_init_fn, worker_id, self._num_workers))
            w.start()
            self._index_queues.append(index_queue)
            self._workers.append(w)
        self._shutdown = False
        self._reset(first=True)

    def _reset(self, first=False):
        loader = self._loader
        self._sampler_iter = iter(loader._index_sampler)
        self._send_idx = self._rcvd_idx = 0
        self._task_info = {}  # send_idx -> (worker_id,) while pending, (worker_id, data) once it arrived early
        self._outstanding = 0
        self._active = [True] * self._num_workers
        self._worker_cycle = itertools.cycle(range(self._num_workers))
        self._length = len(loader) if not loader._iterable or hasattr(loader.dataset, "__len__") else None
        if not first:  # persistent workers: each restarts its dataset iterator and acknowledges
            for q in self._index_queues:
                q.put(ResumeIteration())
            pending = self._num_workers
            while pending:
                message, _ = self._get_data()
                if isinstance(message, ResumeIteration):
                    pending -= 1
        for _ in range(self._prefetch):
            self._try_put_index()

    def __iter__(self):
        return self

    def __len__(self):
        return self._length

    def _try_put_index(self):
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        for _ in range(self._num_workers):
            worker_id = next(self._worker_cycle)
            if self._active[worker_id]:
                break
        else:
            return
        self._index_queues[worker_id].put((self._send_idx, index))
        self._task_info[self._send_idx] = (worker_id,)
        self._outstanding += 1
        self._send_idx += 1

    def _get_data(self):
        if self._timeout > 0:
            try:
                return self._data_queue.get(timeout=self._timeout)
            except queue.Empty:
                raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds") from None
        while True:
            try:
                return self._data_queue.get(timeout=STATUS_CHECK_INTERVAL)
            except queue.Empty:
                dead = [str(w.pid) for w in self._workers if not w.is_alive()]
                if dead:
                    self._shutdown_workers()
                    raise RuntimeError(f"DataLoader worker (pid(s) {', '.join(dead)}) exited unexpectedly") from None

    def __next__(self):
        while True:
            while self._rcvd_idx < self._send_idx:
                info = self._task_info[self._rcvd_idx]
                if len(info) == 2 or self._active[info[0]]:
                    break
                del self._task_info[self._rcvd_idx]  # its worker ran out of data: nothing will come
                self._rcvd_idx += 1
            else:
                if not self._persistent:
                    self._shutdown_workers()
                raise StopIteration
            if len(self._task_info[self._rcvd_idx]) == 2:
                data = self._task_info.pop(self._rcvd_idx)[1]
                return self._process(data)
            idx, data = self._get_data()
            self._outstanding -= 1
            if isinstance(data, IterableStop):
                self._active[data.worker_id] = False
                self._try_put_index()
                continue
            if idx != self._rcvd_idx:
                self._task_info[idx] += (data,)
                continue
            del self._task_info[idx]
            return self._process(data)

    def _process(self, data):
        self._rcvd_idx += 1
        self._try_put_index()
        if isinstance(data, ExceptionWrapper):
            data.reraise()
        return data

    def _shutdown_workers(self):
        if self._shutdown:
            return
        self._shutdown = True
        self._done_event.set()
        for q in self._index_queues:
            q.put(None)
        for w in self._workers:
            w.join(timeout=STATUS_CHECK_INTERVAL)
        for q in self._index_queues:
            q.close()
        self._data_queue.cancel_join_thread()
        self._data_queue.close()
        for w in self._workers:
            if w.is_alive():
                w.terminate()

    def __del__(self):
        if hasattr(self, "_shutdown"):  # __init__ got as far as starting the workers
            self._shutdown_workers()
