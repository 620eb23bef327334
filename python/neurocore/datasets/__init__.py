"""Small real data sets shipped with neurocore (no download). See data/README.md for provenance.

    X, y = neurocore.datasets.load_mnist_5k()   # (5000, 784) float32 in [0, 255], (5000,) int64
    X, y = neurocore.datasets.load_digits()     # (1797, 64) float32 in [0, 16], (1797,) int64
    years, values = neurocore.datasets.load_sunspots()
    text = neurocore.datasets.load_shakespeare()  # str, 1,115,394 characters
"""
import gzip
import os

import numpy as np

_DATA = os.path.join(os.path.dirname(__file__), "data")

__all__ = ["load_digits", "load_mnist_5k", "load_sunspots", "load_shakespeare", "train_test_split"]


def _load_labelled_csv(name):
    table = np.loadtxt(os.path.join(_DATA, name), delimiter=",", dtype=np.float32)
    return np.ascontiguousarray(table[:, :-1]), table[:, -1].astype(np.int64)


def load_digits():
    """UCI optical handwritten digits (test set): 1,797 images of 8x8 pixels valued 0..16.

    Returns (X, y): X float32 of shape (1797, 64), y int64 labels 0..9.
    """
    return _load_labelled_csv("uci_digits_8x8.csv.gz")


def load_mnist_5k():
    """5,000 MNIST digits (500 per class, sorted by label: shuffle before splitting).

    Returns (X, y): X float32 of shape (5000, 784) with pixel values 0..255, y int64 labels 0..9.
    """
    return _load_labelled_csv("mnist_5k.csv.gz")


def load_sunspots():
    """Yearly mean sunspot numbers 1700-2008. Returns (years int64 (309,), values float32 (309,))."""
    table = np.loadtxt(os.path.join(_DATA, "sunspots_yearly.csv"), delimiter=",", skiprows=1, dtype=np.float64)
    return table[:, 0].astype(np.int64), table[:, 1].astype(np.float32)


def load_shakespeare():
    """Tiny Shakespeare: about 40,000 lines of Shakespeare's plays as one str of 1,115,394
    characters (65 distinct), the usual character-level language-model corpus."""
    with gzip.open(os.path.join(_DATA, "tinyshakespeare.txt.gz"), "rt", encoding="utf-8") as f:
        return f.read()


def train_test_split(X, y, test_size, seed=0):
    """Shuffles with a fixed seed and splits off `test_size` rows (an int count or a fraction)."""
    n = len(X)
    n_test = int(round(test_size * n)) if isinstance(test_size, float) else int(test_size)
    if not 0 < n_test < n:
        raise ValueError(f"[train_test_split] test_size {test_size} leaves no train or no test rows out of {n}")
    order = np.random.default_rng(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]
