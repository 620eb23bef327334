"""A decoder-only character-level GPT trained on the shipped Tiny Shakespeare text.

    token embedding + learned position embedding
    -> n_layer x TransformerEncoderLayer(norm_first, GELU, causal self-attention on the fused kernel)
    -> LayerNorm -> linear head tied to the token embedding

AdamW with two parameter groups (weight decay on matrices: linear weights and embeddings; none on
biases and norms), linear warm-up then cosine decay of the learning rate, gradient clipping at
norm 1. The last 10% of the text is the validation split.
Run (the defaults are the benchmark's size; see --help for a quick configuration):
    python examples/char_gpt.py --steps 2000
"""
import argparse
import math
import time

import numpy as np

import neurocore as nc
from neurocore import nn, optim
from neurocore.datasets import load_shakespeare
from neurocore.nn import functional as F


class CharGPT(nn.Module):
    def __init__(self, vocab_size, context, d_model=384, n_layer=6, n_head=6, dropout=0.1):
        super().__init__()
        self.context = context
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(context, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([
            nn.TransformerEncoderLayer(d_model, n_head, 4 * d_model, dropout, activation="gelu", batch_first=True,
                                       norm_first=True)
            for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying
        for name, p in self.named_parameters():  # GPT-2 style init
            if p.dim() >= 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx):
        T = idx.shape[1]
        if T > self.context:
            raise ValueError(f"[CharGPT] sequence of {T} tokens is longer than the context {self.context}")
        x = self.drop(self.tok_emb(idx) + self.pos_emb(nc.arange(T)))
        mask = nn.Transformer.generate_square_subsequent_mask(T)
        for block in self.blocks:
            x = block(x, src_mask=mask, is_causal=True)  # the causal kernel path; mask never materialised per head
        return self.head(self.ln_f(x))


def param_groups(model, weight_decay):
    """Weight decay on matrices (linear weights, embeddings); none on biases and norm weights."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(warmup, total, floor=0.1):
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def batches(data, batch_size, context, rng):
    starts = rng.integers(0, len(data) - context - 1, size=batch_size)
    x = np.stack([data[s:s + context] for s in starts])
    y = np.stack([data[s + 1:s + 1 + context] for s in starts])
    return nc.tensor(x), nc.tensor(y)


def evaluate(model, data, batch_size, context, n_batches, seed=123):
    rng = np.random.default_rng(seed)
    model.eval()
    total = 0.0
    with nc.no_grad():
        for _ in range(n_batches):
            x, y = batches(data, batch_size, context, rng)
            logits = model(x)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).item()
    model.train()
    return total / n_batches


def sample(model, stoi, itos, prompt, length, temperature=0.8, seed=0):
    rng = np.random.default_rng(seed)
    idx = [stoi[c] for c in prompt]
    model.eval()
    with nc.no_grad():
        for _ in range(length):
            ctx = nc.tensor(np.array([idx[-model.context:]], dtype=np.int64))
            logits = model(ctx)[0, -1].numpy().astype(np.float64) / temperature
            p = np.exp(logits - logits.max())
            idx.append(int(rng.choice(len(p), p=p / p.sum())))
    model.train()
    return "".join(itos[i] for i in idx)


def train(steps=2000, batch_size=16, context=256, d_model=384, n_layer=6, n_head=6, dropout=0.1, lr=1e-3,
          weight_decay=0.1, warmup=100, clip=1.0, eval_batches=20, seed=0, sample_chars=300, verbose=True):
    """Trains and returns (model, validation loss in nats per character, sampled text)."""
    text = load_shakespeare()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = np.array([stoi[c] for c in text], dtype=np.int64)
    split = int(0.9 * len(data))
    train_data, val_data = data[:split], data[split:]
    nc.manual_seed(seed)
    model = CharGPT(len(chars), context, d_model, n_layer, n_head, dropout)
    opt = optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.95))
    sched = optim.lr_scheduler.LambdaLR(opt, warmup_cosine(warmup, steps))
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        x, y = batches(train_data, batch_size, context, rng)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        sched.step()
        if verbose and (step % 100 == 0 or step == 1):
            print(f"step {step:5d}  train loss {loss.item():.3f}  lr {sched.get_last_lr()[0]:.2e}  "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    val = evaluate(model, val_data, batch_size, context, eval_batches)
    text_out = sample(model, stoi, chars, "ROMEO:", sample_chars) if sample_chars else ""
    if verbose:
        print(f"validation loss {val:.3f} nats/char (unigram entropy 3.31)")
        print(text_out)
    return model, val, text_out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--d-model", type=int, default=384)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    train(a.steps, a.batch_size, a.context, a.d_model, a.layers, a.heads, a.dropout, a.lr, seed=a.seed)
