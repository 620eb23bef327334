"""The Keras evidence examples on real data (shortened configs, fixed seeds): the seed's MLP and
CNN reach held-out accuracies near Keras 3's, EarlyStopping restores its best epoch, and
regularisation beats an overfitting MLP on UCI digits."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))

import keras_overfitting_digits  # noqa: E402
import keras_seed_cnn  # noqa: E402
import keras_seed_mlp  # noqa: E402


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.mark.slow
def test_seed_mlp_on_mnist_5k(tmp_path):
    # Keras 3 reaches 92.0-93.1% after 10 epochs; 5 epochs here.
    plot = tmp_path / "mlp.png" if _has_matplotlib() else None
    acc, history, _ = keras_seed_mlp.run(epochs=5, seed=0, verbose=0, plot=plot)
    assert list(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert acc > 0.90, acc
    assert history.history["loss"][-1] < history.history["loss"][0]
    if plot:
        assert plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_seed_cnn_with_early_stopping_on_mnist_5k():
    # Keras 3 reaches 94.8-96.0% with up to 20 epochs; 4 epochs here.
    acc, history, es = keras_seed_cnn.run(epochs=4, seed=0, verbose=0)
    assert acc > 0.93, acc
    assert es.best_epoch == int(np.argmin(history.history["val_loss"]))


@pytest.mark.slow
def test_regularisation_beats_overfitting_on_digits(tmp_path):
    plot = tmp_path / "overfit.png" if _has_matplotlib() else None
    results = keras_overfitting_digits.run(epochs=80, seed=0, plot=plot)
    plain_acc, plain = results["plain"]
    reg_acc, _ = results["regularised"]
    h = plain.history
    assert h["accuracy"][-1] == 1.0  # memorised the 100 training digits
    assert h["loss"][-1] < 0.05 * h["val_loss"][-1]  # ... a training loss far below the validation loss
    assert h["val_loss"][-1] > min(h["val_loss"])  # ... which has passed its minimum
    assert reg_acc > plain_acc, (plain_acc, reg_acc)
    if plot:
        assert plot.read_bytes()[:4] == b"\x89PNG"
