"""Data-parallel training of the Keras-shaped MNIST CNN over MPI processes.

    mpirun -np 2 python -m mpi4py examples/ddp_mnist.py [--epochs 5]     # 2 processes
    python examples/ddp_mnist.py [--epochs 5]                           # 1 process, same result

Each rank trains on its DistributedSampler share of the 4,000 training digits with a per-rank batch
of 32 / world size, so every step sees the same 32 samples as one process does and the accuracy
matches a single-process run. Gradients are averaged by DistributedDataParallel during backward.
Across machines: `mpirun --hostfile hosts -np N ...` (each host needs the same Python environment).
"""
import argparse
import time

import numpy as np

import neurocore as nc
import neurocore.distributed as dist
from neurocore import nn, optim
from neurocore.datasets import load_mnist_5k, train_test_split
from neurocore.utils.data import DataLoader, DistributedSampler, TensorDataset


def keras_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def train(epochs=5, global_batch=32, seed=0, verbose=True):
    distributed = dist.is_available() and _launched_by_mpi()
    if distributed:
        dist.init_process_group("mpi")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if global_batch % world:
        raise ValueError(f"the global batch {global_batch} must divide among {world} processes")
    X, y = load_mnist_5k()
    X = (X / 255.0).reshape(-1, 1, 28, 28).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=1000, seed=seed)
    nc.manual_seed(seed)
    model = keras_cnn()
    if distributed:
        model = nn.parallel.DistributedDataParallel(model)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    train_set = TensorDataset(X_train, y_train)
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, seed=seed)
    loader = DataLoader(train_set, batch_size=global_batch // world, sampler=sampler)
    acc = 0.0
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        start = time.perf_counter()
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
        model.eval()
        with nc.no_grad():
            acc = float(np.mean(model(nc.tensor(X_test)).argmax(dim=1).numpy() == y_test))
        if verbose and rank == 0:
            print(f"epoch {epoch + 1}: held-out acc {acc:.4f} ({time.perf_counter() - start:.1f} s, {world} process(es))")
    if distributed:
        dist.destroy_process_group()
    return acc


def _launched_by_mpi():
    import os
    return any(k in os.environ for k in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    args = p.parse_args()
    print(f"Held-out accuracy: {train(args.epochs) * 100:.2f}%")
