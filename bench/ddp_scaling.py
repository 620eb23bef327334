"""Data-parallel scaling on this machine: one epoch of the Keras-shaped MNIST CNN (4,000 digits,
global batch 32) with 1 and 2 MPI processes of 1 thread each.

    python bench/ddp_scaling.py            # launches mpirun itself; prints a table and JSON

Per process count: seconds per epoch (median of 3 epochs after a warm-up epoch), the share of a
step spent waiting for gradient allreduces after backward, and bytes each rank sends per step.
"""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def worker():
    import numpy as np
    import neurocore as nc
    import neurocore.distributed as dist
    from neurocore import nn, optim
    from neurocore.datasets import load_mnist_5k
    from neurocore.utils.data import DataLoader, DistributedSampler, TensorDataset
    sys.path.insert(0, os.path.join(HERE, "..", "examples"))
    from ddp_mnist import keras_cnn

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    nc.set_num_threads(1)
    X, y = load_mnist_5k()
    X = (X[:4000] / 255.0).reshape(-1, 1, 28, 28).astype(np.float32)
    train_set = TensorDataset(X, y[:4000])
    nc.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(keras_cnn())
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    sampler = DistributedSampler(train_set, world, rank)
    loader = DataLoader(train_set, batch_size=32 // world, sampler=sampler)
    epochs = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        model.comm_stats.update(steps=0, allreduce_bytes=0, wait_seconds=0.0)
        dist.barrier()
        start = time.perf_counter()
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
        dist.barrier()
        epochs.append((time.perf_counter() - start, dict(model.comm_stats)))
    timed = epochs[1:]
    seconds = statistics.median(t for t, _ in timed)
    stats = timed[-1][1]
    if rank == 0:
        print(json.dumps({"processes": world, "epoch_seconds": seconds, "steps": stats["steps"],
                          "wait_share": stats["wait_seconds"] / timed[-1][0],
                          "allreduce_bytes_per_step": stats["allreduce_bytes"] / max(stats["steps"], 1)}))
    dist.destroy_process_group()


def main():
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    rows = []
    for n in (1, 2):
        out = subprocess.run(["mpirun", "-np", str(n), sys.executable, "-m", "mpi4py", __file__, "--worker"],
                             env=env, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    base = rows[0]["epoch_seconds"]
    print("| processes | s / epoch | speed-up | allreduce wait share | bytes / step / rank |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['processes']} | {r['epoch_seconds']:.2f} | {base / r['epoch_seconds']:.2f}x | "
              f"{100 * r['wait_share']:.1f}% | {r['allreduce_bytes_per_step']:,.0f} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    worker() if "--worker" in sys.argv else main()
