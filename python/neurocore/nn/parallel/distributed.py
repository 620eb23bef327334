"""DistributedDataParallel: one model replica per process; gradients are averaged across processes
during backward, bucket by bucket, as soon as each bucket's gradients are ready."""
import contextlib
import time

import numpy as np

from ... import autograd
from ... import distributed as dist
from ..._core import is_grad_enabled
from ..._creation import zeros_like
from ...autograd import no_grad
from ..module import Module


class _Bucket:
    """Gradients of a few parameters of one dtype, averaged by one non-blocking allreduce."""

    def __init__(self, indices, params):
        self.indices = indices
        sizes = [params[i].numel() for i in indices]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.flat = np.zeros(int(self.offsets[-1]), params[indices[0]].detach().numpy().dtype)
        self.pending, self.work = len(indices), None

    def slice(self, k):
        return self.flat[self.offsets[k]:self.offsets[k + 1]]


class DistributedDataParallel(Module):
    """Data-parallel training over MPI processes (PyTorch's ``DistributedDataParallel``).

    At construction rank 0's parameters and buffers are broadcast to every rank. In backward, each
    parameter's gradient is copied into its bucket when it has been accumulated (a post-accumulate
    hook); a full bucket starts a non-blocking allreduce at once, so communication overlaps the rest
    of backward; when backward ends, every bucket is waited for and ``.grad`` holds the average over
    ranks, identical on every rank.

    Args:
        module: the model replica.
        broadcast_buffers: copy rank 0's buffers (BatchNorm statistics) to all ranks at every forward.
            Default: ``True``.
        bucket_cap_mb: bucket size in MiB. Default: ``25``.
        find_unused_parameters: allow parameters that get no gradient in a backward (they contribute
            zeros; a parameter unused on every rank keeps ``.grad`` as it was). Default: ``False``.
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=25, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False):
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError("[DistributedDataParallel] the default process group has not been initialized; "
                               "call neurocore.distributed.init_process_group() first")
        for d in list(device_ids or []) + ([output_device] if output_device is not None else []):
            if str(d) not in ("cpu", "-1"):
                raise RuntimeError(f"[DistributedDataParallel] device {d!r} is not available: neurocore runs on "
                                   "the CPU only (pass device_ids=None)")
        if bucket_cap_mb <= 0:
            raise ValueError(f"[DistributedDataParallel] bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.require_backward_grad_sync = True
        self._world = dist.get_world_size()
        named = []
        seen = set()
        for name, p in module.named_parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                named.append((name, p))
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._check_same_model_on_all_ranks()
        with no_grad():
            for t in list(module.parameters()) + [b for b in module.buffers()]:
                dist.broadcast(t, 0)
        self._buckets, self._where = self._make_buckets(int(bucket_cap_mb * 2 ** 20))
        self._hooks = [p.register_post_accumulate_grad_hook(self._hook_for(i)) for i, p in enumerate(self._params)]
        self._armed = False
        # Counters for benchmarks: synchronised backward passes, bytes each rank sent into allreduce,
        # and seconds spent waiting for allreduces after backward's own work was done.
        self.comm_stats = {"steps": 0, "allreduce_bytes": 0, "wait_seconds": 0.0}

    # -- set-up -------------------------------------------------------------------------------------------
    def _check_same_model_on_all_ranks(self):
        mine = [(n, tuple(p.shape), str(p.dtype)) for n, p in zip(self._names, self._params)]
        every = [None] * self._world
        dist.all_gather_object(every, mine)
        for r, theirs in enumerate(every):
            if theirs != mine:
                diff = next((a, b) for a, b in zip(mine + [None] * len(theirs), theirs + [None] * len(mine)) if a != b)
                raise RuntimeError(f"[DistributedDataParallel] rank {r} has a different model: this rank has "
                                   f"{diff[0]}, rank {r} has {diff[1]}")

    def _make_buckets(self, cap_bytes):
        """Parameters in reverse order (gradients become ready roughly from the last layer back),
        grouped by dtype, at most `cap_bytes` per bucket (a larger single parameter gets its own)."""
        buckets, current, size, dtype = [], [], 0, None
        for i in reversed(range(len(self._params))):
            p = self._params[i]
            nbytes = p.numel() * p.element_size()
            if current and (p.dtype != dtype or size + nbytes > cap_bytes):
                buckets.append(current)
                current, size = [], 0
            current.append(i)
            size, dtype = size + nbytes, p.dtype
        if current:
            buckets.append(current)
        made = [_Bucket(idx, self._params) for idx in buckets]
        where = {}
        for b, bucket in enumerate(made):
            for k, i in enumerate(bucket.indices):
                where[i] = (b, k)
        return made, where

    # -- forward / backward -------------------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        if self.broadcast_buffers and self._world > 1 and self.training:
            with no_grad():
                for b in self.module.buffers():
                    dist.broadcast(b, 0)
        self._armed = self.require_backward_grad_sync and is_grad_enabled() and self.training
        if self._armed:
            self._ready = [False] * len(self._params)
            self._callback_queued = False
            for bucket in self._buckets:
                bucket.pending, bucket.work = len(bucket.indices), None
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Gradients of the backward passes inside accumulate locally; the first synchronised
        backward after it averages the accumulated sums."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def _hook_for(self, i):
        def hook(param):
            if not self._armed:
                return
            if not self._callback_queued:
                autograd.queue_callback(self._finish_backward)
                self._callback_queued = True
            if self._ready[i]:
                raise RuntimeError(f"[DistributedDataParallel] parameter {self._names[i]} received a gradient "
                                   "twice in one backward (reentrant backward or a reused graph is not supported)")
            self._ready[i] = True
            b, k = self._where[i]
            bucket = self._buckets[b]
            bucket.slice(k)[...] = param.grad.numpy().reshape(-1)
            bucket.pending -= 1
            if bucket.pending == 0:
                self._launch(bucket)
        return hook

    def _launch(self, bucket):
        from mpi4py import MPI
        group = dist._default("DistributedDataParallel")
        bucket.work = dist.Work([group.comm.Iallreduce(MPI.IN_PLACE, bucket.flat, MPI.SUM)], group.timeout,
                                op="DistributedDataParallel")

    def _finish_backward(self):
        self._armed = False
        missing = [i for i, r in enumerate(self._ready) if not r]
        if missing and not self.find_unused_parameters:
            names = ", ".join(self._names[i] for i in missing)
            raise RuntimeError(f"[DistributedDataParallel] {len(missing)} parameter(s) received no gradient in this "
                               f"backward: {names}. Pass find_unused_parameters=True if some parameters are "
                               "not used in every forward")
        used = np.array(self._ready, np.int64)
        if missing:
            for i in missing:
                b, k = self._where[i]
                self._buckets[b].slice(k)[...] = 0
                self._buckets[b].pending -= 1
            for bucket in self._buckets:
                if bucket.work is None:
                    self._launch(bucket)
            dist.all_reduce(_as_tensor(used), op=dist.ReduceOp.MAX)
        start = time.perf_counter()
        for bucket in self._buckets:
            bucket.work.wait()
            np.divide(bucket.flat, self._world, out=bucket.flat)
        self.comm_stats["wait_seconds"] += time.perf_counter() - start
        self.comm_stats["steps"] += 1
        self.comm_stats["allreduce_bytes"] += sum(b.flat.nbytes for b in self._buckets)
        with no_grad():
            for i, p in enumerate(self._params):
                if not used[i]:
                    continue  # unused on every rank: .grad stays as it was
                b, k = self._where[i]
                averaged = self._buckets[b].slice(k).reshape(tuple(p.shape))
                if p.grad is None:
                    p.grad = zeros_like(p)
                p.grad.numpy()[...] = averaged


def _as_tensor(array):
    from ..._tensor import from_numpy
    return from_numpy(array)
