"""examples/char_gpt.py: a shortened configuration of the character GPT (2 layers, d_model 64,
context 64) trains on the shipped Tiny Shakespeare text to a validation loss below 2.5 nats per
character (unigram entropy 3.31) and samples text from the model's alphabet."""
import importlib.util
import os

import pytest


@pytest.mark.slow
def test_char_gpt_example_learns_shakespeare():
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "char_gpt.py")
    spec = importlib.util.spec_from_file_location("char_gpt", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    model, val, text = example.train(steps=300, batch_size=24, context=64, d_model=64, n_layer=2, n_head=4,
                                     dropout=0.0, lr=4e-3, warmup=30, eval_batches=10, sample_chars=100,
                                     verbose=False)
    assert val < 2.5, f"validation loss {val:.3f} nats/char"
    assert text.startswith("ROMEO:") and len(text) == 106
    assert model.head.weight is model.tok_emb.weight  # tied
