"""Models and comparisons shared by the export and ONNX tests of sequence models."""
import numpy as np

import neurocore as nc
from neurocore import nn
from neurocore.nn import functional as F


def close(got, want, rtol=1e-5):
    """Equal within rtol relative to the scale of `want` (its largest magnitude)."""
    want = np.asarray(want)
    scale = max(float(np.max(np.abs(want))), 1e-30) if want.size else 1.0
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def flat(out):
    """Nested outputs ((y, (h, c)) ...) as a flat list of NumPy arrays."""
    if isinstance(out, nc.Tensor):
        return [out.numpy()]
    result = []
    for o in out:
        result += flat(o)
    return result


def eager(model, xs):
    with nc.no_grad():
        return flat(model(*[nc.tensor(x) for x in xs]))


class Recurrent(nn.Module):
    """A recurrent layer returning its output and final states, with or without given states."""

    def __init__(self, layer, with_state):
        super().__init__()
        self.layer, self.with_state = layer, with_state

    def forward(self, x, *state):
        lstm = isinstance(self.layer, nn.LSTM)
        if self.with_state:
            hx = (state[0], state[1]) if lstm else state[0]
            return self.layer(x, hx)
        return self.layer(x)


class Attention(nn.Module):
    def __init__(self, mode):
        super().__init__()
        self.mode = mode

    def forward(self, q, k, v, mask):
        if self.mode == "mask":
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        if self.mode == "causal":
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3) + mask.sum() * 0
        return F.scaled_dot_product_attention(q, k[:, :1], v[:, :1], attn_mask=mask, enable_gqa=True)


class SeedTransformerBlock(nn.Module):
    """The seed guide's TransformerBlock (sequence-first MultiheadAttention returning its weights)."""

    def __init__(self, d_model=16, num_heads=4, d_ff=32, dropout=0.1):
        super().__init__()
        self.attention = nn.MultiheadAttention(d_model, num_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.feed_forward = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        attn_output, _ = self.attention(x, x, x)
        x = self.norm1(x + self.dropout(attn_output))
        return self.norm2(x + self.dropout(self.feed_forward(x)))
