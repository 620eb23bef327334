"""The seed guide's Keras CNN, written with neurocore.nn, trained on the shipped MNIST 5k.

    Conv2D(32, 3x3, relu) -> MaxPool 2 -> Conv2D(64, 3x3, relu) -> MaxPool 2 -> Flatten
    -> Dense(64, relu) -> Dense(10)

4,000 digits train, 1,000 held out (shuffled with a fixed seed). Run:
    python examples/keras_cnn_mnist.py [--epochs 15]
"""
import argparse
import time

import numpy as np

import neurocore as nc
from neurocore import nn, optim
from neurocore.datasets import load_mnist_5k, train_test_split
from neurocore.utils.data import DataLoader, TensorDataset


def keras_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def train(epochs=15, batch_size=32, seed=0, verbose=True):
    X, y = load_mnist_5k()
    X = (X / 255.0).reshape(-1, 1, 28, 28).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=1000, seed=seed)
    nc.manual_seed(seed)
    model = keras_cnn()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)  # settles the last epochs
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(X_train, y_train), batch_size=batch_size, shuffle=True, seed=seed)
    for epoch in range(1, epochs + 1):
        start, total = time.perf_counter(), 0.0
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item()
        sched.step()
        model.eval()
        with nc.no_grad():
            acc = float(np.mean(model(nc.tensor(X_test)).argmax(dim=1).numpy() == y_test))
        if verbose:
            print(f"epoch {epoch}: loss {total / len(loader):.4f}  held-out acc {acc:.4f}  "
                  f"({time.perf_counter() - start:.1f} s)")
    return acc


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15)
    args = p.parse_args()
    print(f"Held-out accuracy: {train(args.epochs) * 100:.2f}%")
