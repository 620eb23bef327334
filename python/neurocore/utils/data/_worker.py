"""What runs inside a DataLoader worker process: PyTorch's seeding, ``get_worker_info()``, the
fetch loop, and the wrapper that carries a worker's exception back to the main process."""
import queue
import random
import sys
import traceback
from dataclasses import dataclass

import numpy as np

from ... import _core

# How often a waiting worker or main process looks up from a queue to check that the other side lives.
STATUS_CHECK_INTERVAL = 5.0


@dataclass(frozen=True)
class WorkerInfo:
    id: int
    num_workers: int
    seed: int
    dataset: object


_worker_info = None


def get_worker_info():
    """In a DataLoader worker: its :class:`WorkerInfo` (``id``, ``num_workers``, ``seed``, this
    worker's copy of ``dataset``). In the main process: ``None``."""
    return _worker_info


class ExceptionWrapper:
    """An exception raised in a worker, with its traceback as text (tracebacks do not pickle)."""

    def __init__(self, where):
        exc_type, exc, _ = sys.exc_info()
        self.exc_type, self.where = exc_type, where
        self.text = "".join(traceback.format_exception(exc_type, exc, exc.__traceback__))

    def reraise(self):
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.text}"
        if self.exc_type is KeyError:  # KeyError would print the message as a repr
            raise KeyError(msg)
        try:
            exc = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exc


class IterableStop:
    """Sent by a worker whose IterableDataset copy is exhausted."""

    def __init__(self, worker_id):
        self.worker_id = worker_id


class ResumeIteration:
    """Sent to persistent workers at the start of a new epoch (they restart their iterator)."""


def generate_numpy_seed(base_seed, worker_id):
    """The four 32-bit words PyTorch seeds NumPy's global generator with in worker `worker_id`
    (``torch.utils.data._utils.worker._generate_state``: NumPy's SeedSequence hashing of
    [worker_id, base_seed low word, base_seed high word, 0]), so NumPy draws in a worker match
    PyTorch's for the same base seed."""
    mask = 0xFFFFFFFF
    mult_a, mult_b = 0x931E8875, 0x58F38DED
    hash_const = [0x43B0D7E5]

    def hash_word(value):
        value = (value ^ hash_const[0]) & mask
        hash_const[0] = (hash_const[0] * mult_a) & mask
        value = (value * hash_const[0]) & mask
        return (value ^ (value >> 16)) & mask

    def mix(x, y):
        result = ((0xCA01F9DD * x) & mask) - ((0x4973F715 * y) & mask)
        result &= mask
        return (result ^ (result >> 16)) & mask

    pool = [hash_word(v) for v in (worker_id, base_seed & mask, base_seed >> 32, 0)]
    for src in range(4):
        for dst in range(4):
            if src != dst:
                pool[dst] = mix(pool[dst], hash_word(pool[src]))
    const_b, state = 0x8B51F9DD, []
    for value in pool:
        value = (value ^ const_b) & mask
        const_b = (const_b * mult_b) & mask
        value = (value * const_b) & mask
        state.append((value ^ (value >> 16)) & mask)
    return state


class Fetcher:
    """Turns an index (or a list of indices) from the sampler into a collated batch."""

    def __init__(self, dataset, iterable, auto_collation, collate_fn, drop_last, fast_gather):
        self.dataset, self.iterable, self.auto_collation = dataset, iterable, auto_collation
        self.collate_fn, self.drop_last, self.fast_gather = collate_fn, drop_last, fast_gather
        self.dataset_iter = iter(dataset) if iterable else None

    def fetch(self, index):
        if self.iterable:
            if not self.auto_collation:
                return self.collate_fn(next(self.dataset_iter))
            data = []
            for _ in index:
                try:
                    data.append(next(self.dataset_iter))
                except StopIteration:
                    break
            if not data or (self.drop_last and len(data) < len(index)):
                raise StopIteration
            return self.collate_fn(data)
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        if self.fast_gather:
            return self.dataset._gather(index)
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.collate_fn(self.dataset.__getitems__(index))
        return self.collate_fn([self.dataset[i] for i in index])


def worker_loop(dataset, fetcher_args, index_queue, data_queue, done_event, base_seed, init_fn, worker_id,
                num_workers):
    """Body of worker `worker_id`: seeds Python's, neurocore's and NumPy's generators as PyTorch
    does, runs `init_fn(worker_id)`, then answers (send_idx, index) requests with (send_idx, batch)
    until it receives None."""
    global _worker_info
    try:
        seed = base_seed + worker_id
        random.seed(seed)
        _core.manual_seed(seed)
        np.random.seed(generate_numpy_seed(base_seed, worker_id))
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
        init_error = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = Fetcher(dataset, *fetcher_args)
        except Exception:
            init_error = ExceptionWrapper(f"in DataLoader worker process {worker_id}")
        exhausted = False
        while True:
            try:
                request = index_queue.get(timeout=STATUS_CHECK_INTERVAL)
            except queue.Empty:
                continue
            if request is None:
                break
            if isinstance(request, ResumeIteration):
                data_queue.put((request, None))
                exhausted = False
                if init_error is None and fetcher.iterable:
                    fetcher = Fetcher(dataset, *fetcher_args)
                continue
            if done_event.is_set() or exhausted:
                continue
            send_idx, index = request
            if init_error is not None:
                data, init_error = init_error, None
            else:
                try:
                    data = fetcher.fetch(index)
                except StopIteration:
                    if not fetcher.iterable:
                        data = ExceptionWrapper(f"in DataLoader worker process {worker_id}")
                    else:
                        data, exhausted = IterableStop(worker_id), True
                except Exception:
                    data = ExceptionWrapper(f"in DataLoader worker process {worker_id}")
            data_queue.put((send_idx, data))
    except KeyboardInterrupt:
        pass
    if done_event.is_set():
        data_queue.cancel_join_thread()
        data_queue.close()
