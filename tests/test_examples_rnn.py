"""The recurrent examples on the shipped real data, with fixed seeds: the sunspot LSTM beats the
persistence forecast by at least 20% on the years from 1950, and a shortened character-level
LSTM language model reaches a validation loss below 2.5 nats/char on Shakespeare."""
import importlib.util
import os

import pytest


def _example(name):
    path = os.path.join(os.path.dirname(__file__), "..", "examples", f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_sunspots_lstm_beats_persistence_by_20_percent():
    rmse, persistence = _example("sunspots_lstm").train(epochs=150, verbose=False)
    assert rmse <= 0.8 * persistence, f"LSTM RMSE {rmse:.2f} vs persistence {persistence:.2f}"


@pytest.mark.slow
def test_char_lstm_learns_shakespeare():
    example = _example("char_lstm")
    val, model, chars = example.train(steps=100, batch=32, seq_len=64, hidden=128, lr=1e-2, eval_chars=20_000,
                                      verbose=False)
    assert val < 2.5, f"validation loss {val:.3f} nats/char"
    text = example.sample(model, chars, prompt="KING:", length=50, temperature=0.5)
    assert text.startswith("KING:") and len(text) == 55 and set(text) <= set(chars)
