"""Run by tests/test_distributed.py under ``mpirun -np 2 python -m mpi4py distributed_worker.py CASE OUT``.

Each case runs on every rank and checks what it can locally; rank 0 writes a .npz of results for
the test to compare with a single-process reference."""
import sys

import numpy as np

import neurocore as nc
import neurocore.distributed as dist
from neurocore import nn, optim

nc.set_num_threads(1)


def collectives(out):
    rank, world = dist.get_rank(), dist.get_world_size()
    for dtype in (np.float32, np.float64, np.int64):
        t = nc.tensor(np.arange(6, dtype=dtype).reshape(2, 3) + rank * 10)
        dist.all_reduce(t)
        np.testing.assert_array_equal(t.numpy(), sum(np.arange(6).reshape(2, 3) + r * 10 for r in range(world)))
        for op, ref in [(dist.ReduceOp.MAX, max), (dist.ReduceOp.MIN, min)]:
            t = nc.tensor(np.array([rank, -rank, 7], dtype))
            dist.all_reduce(t, op=op)
            np.testing.assert_array_equal(t.numpy(), [ref(range(world)), ref(-r for r in range(world)), 7])
    t = nc.tensor(np.array([1.0, 3.0]) * (rank + 1))
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    np.testing.assert_allclose(t.numpy(), np.array([1.0, 3.0]) * (world + 1) / 2)
    b = nc.tensor(np.array([rank == 1, False]))
    dist.all_reduce(b)  # bool SUM is a logical or
    assert b.numpy().tolist() == [True, False]
    try:
        dist.all_reduce(nc.tensor([1, 2]), op=dist.ReduceOp.AVG)
        raise AssertionError("AVG of int64 must raise")
    except TypeError as e:
        assert "[all_reduce]" in str(e)
    try:
        dist.all_reduce(nc.zeros(3, 4).t())
        raise AssertionError("non-contiguous must raise")
    except ValueError as e:
        assert "contiguous" in str(e)
    t = nc.full((3,), float(rank))
    dist.broadcast(t, src=1)
    np.testing.assert_array_equal(t.numpy(), [1.0, 1.0, 1.0])
    parts = [nc.zeros(2) for _ in range(world)]
    dist.all_gather(parts, nc.tensor([rank, rank + 0.5]))
    for r in range(world):
        np.testing.assert_array_equal(parts[r].numpy(), [r, r + 0.5])
    whole = nc.zeros(world * 2)
    dist.all_gather_into_tensor(whole, nc.tensor([rank * 1.0, 2.0]))
    np.testing.assert_array_equal(whole.numpy(), np.ravel([[r, 2.0] for r in range(world)]))
    outp = nc.zeros(2)
    dist.reduce_scatter(outp, [nc.tensor([r + rank, 1.0]) for r in range(world)])
    np.testing.assert_array_equal(outp.numpy(), [rank * world + sum(range(world)), world])
    work = dist.all_reduce(nc.ones(4), async_op=True)
    work.wait()
    assert work.is_completed()
    dist.barrier()
    objs = [None] * world
    dist.all_gather_object(objs, {"rank": rank})
    assert objs == [{"rank": r} for r in range(world)]
    if rank == 0:
        np.savez(out, ok=np.array(1))


def make_model(seed, dtype, bn=False):
    nc.manual_seed(seed)
    # no bias before a batch norm: its gradient is 0 up to rounding, which Adam would amplify
    layers = [nn.Linear(6, 16, bias=not bn)] + ([nn.BatchNorm1d(16)] if bn else []) + [nn.Tanh(), nn.Linear(16, 3)]
    return nn.Sequential(*layers).to(nc.float64 if dtype == np.float64 else nc.float32)


def data(dtype):
    r = np.random.default_rng(5)
    return r.normal(size=(64, 6)).astype(dtype), r.integers(0, 3, 64)


def train(model, steps, batches, sync_bn=False):
    opt = optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    for step in range(steps):
        x, y = batches(step)
        opt.zero_grad()
        loss_fn(model(nc.tensor(x)), nc.tensor(y)).backward()
        opt.step()
    return model


def ddp_equivalence(out):
    """20 Adam steps: 2 ranks x 32 samples with DDP vs 1 process x 64 samples."""
    rank, world = dist.get_rank(), dist.get_world_size()
    results = {}
    for name, dtype, bn in [("f64", np.float64, False), ("f32", np.float32, False), ("f64_syncbn", np.float64, True)]:
        X, Y = data(dtype)
        per = len(X) // world
        # rank 0's replica starts from other weights: DDP must broadcast rank 0's to everyone
        model = make_model(0 if rank == 0 else 99, dtype, bn)
        if bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.0005)  # several buckets
        train(ddp, 20, lambda s: (np.roll(X, s, 0)[rank * per:(rank + 1) * per],
                                  np.roll(Y, s, 0)[rank * per:(rank + 1) * per]))
        params = np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])
        every = [nc.zeros(params.size, dtype=nc.float64 if dtype == np.float64 else nc.float32) for _ in range(world)]
        dist.all_gather(every, nc.tensor(params))
        for other in every:
            assert np.array_equal(other.numpy(), params), f"{name}: ranks differ"
        single = train(make_model(0, dtype, bn), 20, lambda s: (np.roll(X, s, 0), np.roll(Y, s, 0)))
        results[name] = params
        results[name + "_single"] = np.concatenate([p.detach().numpy().ravel() for p in single.parameters()])
        if bn:
            results[name + "_running"] = np.concatenate([model[1].running_mean.numpy(), model[1].running_var.numpy()])
            results[name + "_running_single"] = np.concatenate([single[1].running_mean.numpy(),
                                                                single[1].running_var.numpy()])
    if rank == 0:
        np.savez(out, **results)


def no_sync_and_unused(out):
    rank, world = dist.get_rank(), dist.get_world_size()
    X, Y = data(np.float64)
    per = len(X) // world
    model = make_model(0, np.float64)
    ddp = nn.parallel.DistributedDataParallel(model)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    mine = slice(rank * per, (rank + 1) * per)
    halves = [(X[mine][:per // 2], Y[mine][:per // 2]), (X[mine][per // 2:], Y[mine][per // 2:])]
    with ddp.no_sync():
        loss_fn(ddp(nc.tensor(halves[0][0])), nc.tensor(halves[0][1])).backward()
    loss_fn(ddp(nc.tensor(halves[1][0])), nc.tensor(halves[1][1])).backward()
    accumulated = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
    single = make_model(0, np.float64)
    loss_fn(single(nc.tensor(X)), nc.tensor(Y)).backward()
    expected = np.concatenate([p.grad.numpy().ravel() for p in single.parameters()]) / world

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x, use_b):
            return (self.b(self.a(x)) if use_b else self.a(x)).sum()

    nc.manual_seed(1)
    branchy = nn.parallel.DistributedDataParallel(Branchy(), find_unused_parameters=True)
    branchy(nc.ones(2, 4), use_b=(rank == 0)).backward()
    m = branchy.module
    ok_unused = m.c.weight.grad is None and m.b.weight.grad is not None
    b_grad = m.b.weight.grad.numpy().copy()
    strict = nn.parallel.DistributedDataParallel(Branchy())
    try:
        strict(nc.ones(2, 4), use_b=False).backward()
        message = ""
    except RuntimeError as e:
        message = str(e)
    if rank == 0:
        np.savez(out, accumulated=accumulated, expected=expected, ok_unused=ok_unused, b_grad=b_grad,
                 message=np.array(message))


def one_rank_fails(out):
    if dist.get_rank() == 1:
        raise ValueError("rank 1 failed on purpose")
    dist.all_reduce(nc.ones(3))  # rank 0 would wait here forever without the abort


if __name__ == "__main__":
    dist.init_process_group("mpi")
    {"collectives": collectives, "ddp": ddp_equivalence, "no_sync": no_sync_and_unused,
     "fail": one_rank_fails}[sys.argv[1]](sys.argv[2])
    dist.destroy_process_group()
