"""A character-level language model of Shakespeare (the shipped tiny-Shakespeare text).

Embedding -> 2-layer LSTM (hidden 256) -> Linear over the 65 characters, trained on random
windows of the first 90% of the text; reports the validation loss per character (nats) on the last
10% and samples text with a temperature. A well-trained model of this size reaches about 1.5
nats/char; the text's unigram entropy is 3.31. Run:
    python examples/char_lstm.py [--steps 3000] [--temperature 0.8]
"""
import argparse
import time

import numpy as np

import neurocore as nc
from neurocore import nn, optim


class CharLSTM(nn.Module):
    def __init__(self, vocab, hidden=256, layers=2, embed=64, dropout=0.0):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, idx, state=None):  # idx (batch, time) int64
        out, state = self.lstm(self.embed(idx), state)
        return self.head(out), state


def encode(text):
    chars = sorted(set(text))
    table = {c: i for i, c in enumerate(chars)}
    return np.array([table[c] for c in text], dtype=np.int64), chars


def batches(data, batch, seq_len, rng):
    starts = rng.integers(0, len(data) - seq_len - 1, size=batch)
    x = np.stack([data[s:s + seq_len] for s in starts])
    y = np.stack([data[s + 1:s + seq_len + 1] for s in starts])
    return nc.tensor(x), nc.tensor(y)


def evaluate(model, data, seq_len, max_chars):
    """Mean cross-entropy (nats/char) over consecutive windows of the first max_chars of data."""
    model.eval()
    n = min(len(data) - 1, max_chars) // seq_len * seq_len
    x = nc.tensor(data[:n].reshape(-1, seq_len))
    y = nc.tensor(data[1:n + 1].reshape(-1, seq_len))
    with nc.no_grad():
        logits, _ = model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    model.train()
    return loss.item()


def sample(model, chars, prompt="ROMEO:", length=300, temperature=0.8, seed=0):
    """Text continuing `prompt`, each character drawn from softmax(logits / temperature)."""
    table = {c: i for i, c in enumerate(chars)}
    rng = np.random.default_rng(seed)
    model.eval()
    out = list(prompt)
    with nc.no_grad():
        logits, state = model(nc.tensor(np.array([[table[c] for c in prompt]], dtype=np.int64)))
        for _ in range(length):
            z = logits.numpy()[0, -1].astype(np.float64) / max(temperature, 1e-6)
            p = np.exp(z - z.max())
            nxt = int(rng.choice(len(chars), p=p / p.sum()))
            out.append(chars[nxt])
            logits, state = model(nc.tensor(np.array([[nxt]], dtype=np.int64)), state)
    model.train()
    return "".join(out)


def train(steps=3000, batch=32, seq_len=128, hidden=256, layers=2, lr=2e-3, eval_chars=100_000, seed=0,
          verbose=True, temperature=0.8):
    data, chars = encode(nc.datasets.load_shakespeare())
    split = int(0.9 * len(data))
    train_data, val_data = data[:split], data[split:]
    nc.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = CharLSTM(len(chars), hidden, layers)
    opt = optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        x, y = batches(train_data, batch, seq_len, rng)
        logits, _ = model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if verbose and (step % 100 == 0 or step == steps):
            print(f"step {step:5d}  train loss {loss.item():.3f}  ({time.perf_counter() - start:.0f} s)")
    val = evaluate(model, val_data, seq_len, eval_chars)
    if verbose:
        print(f"validation loss {val:.3f} nats/char")
        print(sample(model, chars, temperature=temperature))
    return val, model, chars


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--temperature", type=float, default=0.8)
    args = parser.parse_args()
    train(steps=args.steps, temperature=args.temperature)
