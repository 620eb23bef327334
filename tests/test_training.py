"""End to end: MLPs trained on the shipped real data reach the stated accuracy; a seed gives
bit-identical training on 1 and 2 threads."""
import numpy as np
import pytest

import neurocore as nc
from neurocore import nn, optim
from neurocore.datasets import load_digits, train_test_split
from neurocore.utils.data import DataLoader, TensorDataset


@pytest.mark.slow
def test_mnist_mlp_reaches_90_percent():
    from neurocore.quickstart import train
    acc = train(epochs=6, batch_size=32, seed=0, verbose=False)
    assert acc >= 0.90, f"held-out accuracy {acc:.4f}"


def _train_digits(seed, epochs, threads=None):
    if threads is not None:
        nc.set_num_threads(threads)
    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.2, seed=seed)
    nc.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10))
    opt = optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        for xb, yb in DataLoader(TensorDataset(X_train, y_train), batch_size=32, shuffle=True, seed=seed):
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
        seed += 1
    model.eval()
    with nc.no_grad():
        acc = float(np.mean(model(nc.tensor(X_test)).argmax(dim=1).numpy() == y_test))
    return acc, [p.detach().numpy().copy() for p in model.parameters()]


@pytest.mark.slow
def test_digits_mlp_reaches_95_percent():
    acc, _ = _train_digits(seed=0, epochs=30)
    assert acc >= 0.95, f"held-out accuracy {acc:.4f}"


def test_same_seed_bit_identical_on_1_and_2_threads():
    before = nc.get_num_threads()
    try:
        _, one = _train_digits(seed=3, epochs=2, threads=1)
        _, two = _train_digits(seed=3, epochs=2, threads=2)
    finally:
        nc.set_num_threads(before)
    for a, b in zip(one, two):
        assert np.array_equal(a, b)


@pytest.mark.slow
def test_keras_cnn_example_reaches_97_percent_on_mnist_5k():
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "keras_cnn_mnist.py")
    spec = importlib.util.spec_from_file_location("keras_cnn_mnist", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    acc = example.train(verbose=False)
    assert acc >= 0.97, f"held-out accuracy {acc:.4f}"
