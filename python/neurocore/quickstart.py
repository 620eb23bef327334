"""Quickstart: train a 784-128-64-10 MLP on the shipped MNIST 5k digits and report test accuracy.

    python -m neurocore.quickstart [--epochs 10] [--batch-size 32] [--threads N]
"""
import argparse
import sys
import time

import numpy as np

import neurocore as nc
from neurocore import nn, optim
from neurocore.datasets import load_mnist_5k, train_test_split
from neurocore.utils.data import DataLoader, TensorDataset


def build_mlp():
    return nn.Sequential(
        nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(64, 10),
    )


def accuracy(model, X, y):
    model.eval()
    with nc.no_grad():
        pred = model(nc.tensor(X)).argmax(dim=1).numpy()
    model.train()
    return float(np.mean(pred == y))


def train(epochs=10, batch_size=32, lr=1e-3, seed=0, verbose=True):
    """Trains on 4,000 shuffled MNIST digits, evaluates on the 1,000 held out; returns test accuracy."""
    X, y = load_mnist_5k()
    X = X / 255.0
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=1000, seed=seed)
    nc.manual_seed(seed)
    model = build_mlp()
    opt = optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(X_train, y_train), batch_size=batch_size, shuffle=True, seed=seed)
    if verbose:
        print(f"neurocore {nc.__version__} | kernels: {nc.cpu_capability()} | threads: {nc.get_num_threads()}")
        print(f"MNIST 5k: {len(X_train)} train / {len(X_test)} test | model:\n{model}")
    for epoch in range(1, epochs + 1):
        start, total, steps = time.perf_counter(), 0.0, len(loader)
        for step, (xb, yb) in enumerate(loader, 1):
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item()
            if verbose and (step % 25 == 0 or step == steps):
                bar = "#" * (20 * step // steps)
                sys.stdout.write(f"\repoch {epoch:2d}/{epochs} [{bar:<20}] loss {total / step:.4f}")
                sys.stdout.flush()
        if verbose:
            acc = accuracy(model, X_test, y_test)
            print(f"  test acc {acc:.4f}  ({time.perf_counter() - start:.2f} s)")
    return accuracy(model, X_test, y_test)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        nc.set_num_threads(args.threads)
    acc = train(args.epochs, args.batch_size, args.lr, args.seed)
    print(f"Test accuracy: {acc * 100:.2f}% on 1,000 held-out MNIST digits")


if __name__ == "__main__":
    main()
