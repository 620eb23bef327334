"""Transformer layers and stacks against PyTorch with the same state_dict (outputs in eval and the
gradients of inputs and all parameters; norm_first both ways, relu/gelu/callable activations,
batch_first both ways, masks, no bias); the seed guide's TransformerBlock with only the import
changed; generate_square_subsequent_mask; 1 vs 2 threads bit-identical training with dropout."""
import numpy as np
import pytest

import neurocore as nc
from helpers import require_torch, rand, assert_close

TOL = dict(rtol=1e-9, atol=1e-10)


def build_seed_block(nn):
    """The seed guide's TransformerBlock, verbatim apart from where `nn` comes from."""
    class TransformerBlock(nn.Module):
        def __init__(self, d_model, num_heads, d_ff, dropout=0.1):
            super(TransformerBlock, self).__init__()
            self.attention = nn.MultiheadAttention(d_model, num_heads)
            self.norm1 = nn.LayerNorm(d_model)
            self.norm2 = nn.LayerNorm(d_model)
            self.feed_forward = nn.Sequential(
                nn.Linear(d_model, d_ff),
                nn.ReLU(),
                nn.Linear(d_ff, d_model)
            )
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            attn_output, _ = self.attention(x, x, x)
            x = self.norm1(x + self.dropout(attn_output))
            ff_output = self.feed_forward(x)
            x = self.norm2(x + self.dropout(ff_output))
            return x
    return TransformerBlock


def to_float64_pair(torch, tm, nm):
    tm.double()
    nm.double()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():  # non-trivial norms and biases
        for name, p in tm.named_parameters():
            if p.dim() == 1:
                p.add_(0.2 * torch.rand(p.shape, generator=g, dtype=p.dtype) - 0.1)
    result = nm.load_state_dict(tm.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert list(nm.state_dict().keys()) == list(tm.state_dict().keys())
    tm.eval()
    nm.eval()


def compare(torch, tm, nm, arrays, call_t, call_n):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ns = [nc.tensor(a, requires_grad=True) for a in arrays]
    to, no = call_t(tm, *ts), call_n(nm, *ns)
    assert_close(no, to, what="output", **TOL)
    g = rand(tuple(to.shape), np.float64, seed=7)
    to.backward(torch.tensor(g))
    no.backward(nc.tensor(g))
    for i, (t, n) in enumerate(zip(ts, ns)):
        assert_close(n.grad, t.grad, what=f"grad of input {i}", **TOL)
    tp, np_ = dict(tm.named_parameters()), dict(nm.named_parameters())
    assert tp.keys() == np_.keys()
    for name in tp:
        assert_close(np_[name].grad, tp[name].grad, what=f"grad of {name}", **TOL)


@pytest.mark.torch
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_stack(norm_first, batch_first, activation):
    torch = require_torch()
    layers = []
    for lib in (torch, nc):
        lib.manual_seed(0)
        layer = lib.nn.TransformerEncoderLayer(16, 4, dim_feedforward=24, dropout=0.1, activation=activation,
                                               batch_first=batch_first, norm_first=norm_first)
        layers.append(lib.nn.TransformerEncoder(layer, 2, norm=lib.nn.LayerNorm(16), enable_nested_tensor=False))
    tm, nm = layers
    to_float64_pair(torch, tm, nm)
    N, L = 3, 9
    kpm = np.zeros((N, L), dtype=bool)
    kpm[1, -2:] = True
    causal = torch.nn.Transformer.generate_square_subsequent_mask(L, dtype=torch.float64)
    x = rand((N, L, 16) if batch_first else (L, N, 16), seed=1)
    compare(torch, tm, nm, [x],
            lambda m, x: m(x, mask=causal, src_key_padding_mask=torch.tensor(kpm)),
            lambda m, x: m(x, mask=nc.tensor(causal.numpy()), src_key_padding_mask=nc.tensor(kpm)))
    compare(torch, tm, nm, [x], lambda m, x: m(x, mask=causal, is_causal=True),
            lambda m, x: m(x, mask=nc.tensor(causal.numpy()), is_causal=True))


@pytest.mark.torch
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_decoder_stack(norm_first, batch_first):
    torch = require_torch()
    stacks = []
    for lib in (torch, nc):
        layer = lib.nn.TransformerDecoderLayer(16, 2, dim_feedforward=20, batch_first=batch_first,
                                               norm_first=norm_first, activation=lib.nn.functional.gelu)
        stacks.append(lib.nn.TransformerDecoder(layer, 2, norm=lib.nn.LayerNorm(16)))
    tm, nm = stacks
    to_float64_pair(torch, tm, nm)
    N, L, S = 2, 7, 5
    tgt_mask = torch.nn.Transformer.generate_square_subsequent_mask(L, dtype=torch.float64)
    mkpm = np.zeros((N, S), dtype=bool)
    mkpm[0, -1] = True
    tgt = rand((N, L, 16) if batch_first else (L, N, 16), seed=1)
    mem = rand((N, S, 16) if batch_first else (S, N, 16), seed=2)
    compare(torch, tm, nm, [tgt, mem],
            lambda m, t, s: m(t, s, tgt_mask=tgt_mask, memory_key_padding_mask=torch.tensor(mkpm)),
            lambda m, t, s: m(t, s, tgt_mask=nc.tensor(tgt_mask.numpy()), memory_key_padding_mask=nc.tensor(mkpm)))


@pytest.mark.torch
@pytest.mark.parametrize("norm_first", [False, True])
def test_full_transformer(norm_first):
    torch = require_torch()
    kw = dict(d_model=16, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=32,
              batch_first=True, norm_first=norm_first)
    tm, nm = torch.nn.Transformer(**kw), nc.nn.Transformer(**kw)
    assert [tuple(p.shape) for p in nm.parameters()] == [tuple(p.shape) for p in tm.parameters()]
    to_float64_pair(torch, tm, nm)
    tgt_mask = torch.nn.Transformer.generate_square_subsequent_mask(6, dtype=torch.float64)
    compare(torch, tm, nm, [rand((2, 8, 16), seed=1), rand((2, 6, 16), seed=2)],
            lambda m, s, t: m(s, t, tgt_mask=tgt_mask, tgt_is_causal=True),
            lambda m, s, t: m(s, t, tgt_mask=nc.tensor(tgt_mask.numpy()), tgt_is_causal=True))


@pytest.mark.torch
def test_no_bias_and_xavier_init():
    torch = require_torch()
    tm = torch.nn.TransformerEncoderLayer(8, 2, 16, bias=False)
    nm = nc.nn.TransformerEncoderLayer(8, 2, 16, bias=False)
    assert list(nm.state_dict().keys()) == list(tm.state_dict().keys())
    to_float64_pair(torch, tm, nm)
    compare(torch, tm, nm, [rand((5, 2, 8), seed=1)], lambda m, x: m(x), lambda m, x: m(x))
    t = nc.nn.Transformer(d_model=32, nhead=4, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=64)
    w = t.encoder.layers[0].linear1.weight.detach().numpy()  # xavier: bound sqrt(6 / (32 + 64))
    assert np.abs(w).max() <= np.sqrt(6 / 96) and np.abs(w).max() > 0.9 * np.sqrt(6 / 96)


@pytest.mark.torch
def test_generate_square_subsequent_mask():
    torch = require_torch()
    for n in (1, 5):
        ours = nc.nn.Transformer.generate_square_subsequent_mask(n).numpy()
        assert np.array_equal(ours, torch.nn.Transformer.generate_square_subsequent_mask(n).numpy())
    assert nc.nn.Transformer.generate_square_subsequent_mask(3, dtype=nc.float64).dtype == nc.float64


@pytest.mark.torch
def test_seed_transformer_block_loads_torch_weights():
    torch = require_torch()
    tm, nm = build_seed_block(torch.nn)(32, 4, 64), build_seed_block(nc.nn)(32, 4, 64)
    to_float64_pair(torch, tm, nm)
    compare(torch, tm, nm, [rand((10, 3, 32), seed=1)], lambda m, x: m(x), lambda m, x: m(x))


def test_training_with_dropout_is_thread_independent():
    block = build_seed_block(nc.nn)
    layer_kw = dict(d_model=32, nhead=4, dim_feedforward=48, dropout=0.2, batch_first=True, norm_first=True)
    before = nc.get_num_threads()
    runs = []
    for threads in (1, 2):
        nc.set_num_threads(threads)
        nc.manual_seed(0)
        model = nc.nn.Sequential(block(32, 4, 64), nc.nn.TransformerEncoderLayer(**layer_kw))
        opt = nc.optim.AdamW(model.parameters(), lr=1e-3)
        x = nc.tensor(rand((4, 40, 32), np.float32, seed=3))
        losses = []
        for _ in range(3):
            opt.zero_grad()
            loss = (model(x) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        runs.append((losses, [p.detach().numpy().copy() for p in model.parameters()]))
    nc.set_num_threads(before)
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        assert np.array_equal(a, b)


def test_bad_input():
    t = nc.nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=8)
    with pytest.raises(RuntimeError, match=r"\[Transformer\] the batch number of src and tgt must be equal"):
        t(nc.zeros(5, 2, 8), nc.zeros(4, 3, 8))
    with pytest.raises(RuntimeError, match=r"\[Transformer\] the feature number"):
        t(nc.zeros(5, 2, 7), nc.zeros(4, 2, 7))
    with pytest.raises(RuntimeError, match="activation should be relu/gelu"):
        nc.nn.TransformerEncoderLayer(8, 2, activation="tanh")
    with pytest.raises(ValueError, match=r"embed_dim 8 must be divisible by num_heads 3"):
        nc.nn.TransformerEncoderLayer(8, 3)
