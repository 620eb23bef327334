"""nn.RNN / nn.LSTM / nn.GRU and the cells against PyTorch: outputs, h_n / c_n and the gradients
of the input, the initial states and every weight over a grid of layer types, depths, directions,
layouts, bias and projection, in float32 and float64; finite-difference checks of the fused
kernel; bit-identical training on 1 and 2 threads; clear errors on bad input; the seed's
SimpleRNN and its LSTM variant with only the import changed."""
import itertools

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from helpers import assert_close, gradcheck, rand, require_torch

KINDS = {
    "rnn_tanh": ("RNN", dict(nonlinearity="tanh")),
    "rnn_relu": ("RNN", dict(nonlinearity="relu")),
    "lstm": ("LSTM", {}),
    "lstm_proj": ("LSTM", dict(proj_size=3)),
    "gru": ("GRU", {}),
}
TOLS = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}


def make_pair(torch, kind, input_size, hidden, dtype, **kw):
    cls, extra = KINDS[kind]
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    theirs = getattr(torch.nn, cls)(input_size, hidden, **extra, **kw).to(tdt)
    ours = getattr(nn, cls)(input_size, hidden, **extra, **kw, dtype=nc.float64 if dtype == np.float64 else None)
    assert list(ours.state_dict().keys()) == list(theirs.state_dict().keys())
    ours.load_state_dict({k: nc.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    return theirs, ours


def states(kind, num_layers, directions, batch, hidden, dtype, seed, batched=True):
    """Random (h0) or (h0, c0) as NumPy arrays."""
    out_size = 3 if kind == "lstm_proj" else hidden
    lead = (num_layers * directions,) + ((batch,) if batched else ())
    h0 = rand(lead + (out_size,), dtype, seed=seed)
    if kind.startswith("lstm"):
        return [h0, rand(lead + (hidden,), dtype, seed=seed + 1)]
    return [h0]


def run_and_compare(torch, theirs, ours, kind, x, h, dtype, what=""):
    """Forward both with the same input and initial states, compare every output, then backward
    a random weighting of all outputs and compare every gradient."""
    tol = TOLS[dtype]
    tx = torch.tensor(x, requires_grad=True)
    nx = nc.tensor(x, requires_grad=True)
    th = [torch.tensor(a, requires_grad=True) for a in h] if h is not None else None
    nh = [nc.tensor(a, requires_grad=True) for a in h] if h is not None else None
    lstm = kind.startswith("lstm")
    targ = None if th is None else (tuple(th) if lstm else th[0])
    narg = None if nh is None else (tuple(nh) if lstm else nh[0])
    to, tstate = theirs(tx, targ)
    no, nstate = ours(nx, narg)
    touts = [to] + (list(tstate) if lstm else [tstate])
    nouts = [no] + (list(nstate) if lstm else [nstate])
    for i, (t, n) in enumerate(zip(touts, nouts)):
        assert_close(n, t, what=f"{what} output {i}", **tol)
    tl, nl = 0, 0
    for i, t in enumerate(touts):
        w = rand(tuple(t.shape), dtype, seed=50 + i)
        tl = tl + (t * torch.tensor(w)).sum()
        nl = nl + (nouts[i] * nc.tensor(w)).sum()
    tl.backward()
    nl.backward()
    assert_close(nx.grad, tx.grad, what=f"{what} grad input", **tol)
    if th is not None:
        for i, (t, n) in enumerate(zip(th, nh)):
            assert_close(n.grad, t.grad, what=f"{what} grad state {i}", **tol)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tparams[name].grad, what=f"{what} grad {name}", **tol)


GRID = list(itertools.product(KINDS, [1, 2, 3], [False, True], [np.float32, np.float64]))


@pytest.mark.parametrize("kind,num_layers,bidirectional,dtype", GRID)
def test_layer_matches_torch(kind, num_layers, bidirectional, dtype):
    torch = require_torch()
    torch.manual_seed(0)
    # batch_first, bias and h0 given or not: both ways over the grid (the index rotates them).
    i = GRID.index((kind, num_layers, bidirectional, dtype))
    batch_first, bias, with_h0 = bool(i % 2), bool((i // 2) % 2 == 0), bool((i // 4) % 2 == 0)
    T, B, I, H = 4, 3, 5, 6
    theirs, ours = make_pair(torch, kind, I, H, dtype, num_layers=num_layers, bidirectional=bidirectional,
                             batch_first=batch_first, bias=bias)
    x = rand((B, T, I) if batch_first else (T, B, I), dtype, seed=i)
    D = 2 if bidirectional else 1
    h = states(kind, num_layers, D, B, H, dtype, seed=i + 7) if with_h0 else None
    run_and_compare(torch, theirs, ours, kind, x, h, dtype, f"{kind} L={num_layers} bi={bidirectional}")


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("case", ["batch1", "seq1", "unbatched", "unbatched_batch_first", "both_h0"])
def test_edge_shapes_match_torch(kind, case):
    torch = require_torch()
    torch.manual_seed(1)
    dtype = np.float64
    batch_first = case == "unbatched_batch_first"
    theirs, ours = make_pair(torch, kind, 4, 5, dtype, num_layers=2, bidirectional=True, batch_first=batch_first)
    if case == "batch1":
        x, h = rand((6, 1, 4), dtype), states(kind, 2, 2, 1, 5, dtype, 3)
    elif case == "seq1":
        x, h = rand((1, 3, 4), dtype), None
    elif case.startswith("unbatched"):
        x, h = rand((5, 4), dtype), states(kind, 2, 2, None, 5, dtype, 4, batched=False)
    else:
        x, h = rand((3, 2, 4), dtype), states(kind, 2, 2, 2, 5, dtype, 5)
    run_and_compare(torch, theirs, ours, kind, x, h, dtype, case)


@pytest.mark.parametrize("cell", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_cells_match_torch(cell, batched, bias):
    torch = require_torch()
    torch.manual_seed(2)
    kw = dict(nonlinearity="relu") if cell == "RNNCell" and bias else {}
    theirs = getattr(torch.nn, cell)(4, 6, bias=bias, **kw).double()
    ours = getattr(nn, cell)(4, 6, bias=bias, dtype=nc.float64, **kw)
    assert repr(ours) == repr(theirs)
    ours.load_state_dict({k: nc.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    lead = (3,) if batched else ()
    x = rand(lead + (4,), seed=1)
    hs = [rand(lead + (6,), seed=2 + k) for k in range(2 if cell == "LSTMCell" else 1)]
    tx, nx = torch.tensor(x, requires_grad=True), nc.tensor(x, requires_grad=True)
    th = [torch.tensor(a, requires_grad=True) for a in hs]
    nh = [nc.tensor(a, requires_grad=True) for a in hs]
    to = theirs(tx, tuple(th) if cell == "LSTMCell" else th[0])
    no = ours(nx, tuple(nh) if cell == "LSTMCell" else nh[0])
    to, no = (list(to), list(no)) if cell == "LSTMCell" else ([to], [no])
    tl, nl = 0, 0
    for i, (t, n) in enumerate(zip(to, no)):
        assert_close(n, t, 1e-10, 1e-12, f"output {i}")
        w = rand(tuple(t.shape), seed=20 + i)
        tl, nl = tl + (t * torch.tensor(w)).sum(), nl + (n * nc.tensor(w)).sum()
    tl.backward()
    nl.backward()
    assert_close(nx.grad, tx.grad, 1e-10, 1e-12, "grad input")
    for t, n in zip(th, nh):
        assert_close(n.grad, t.grad, 1e-10, 1e-12, "grad state")
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tp[name].grad, 1e-10, 1e-12, name)
    # no state: zeros
    out = ours(nx)
    ref = theirs(tx)
    out, ref = (out[0], ref[0]) if cell == "LSTMCell" else (out, ref)
    assert_close(out, ref, 1e-10, 1e-12, "zero state")


@pytest.mark.parametrize("mode,proj", [(0, False), (1, False), (2, False), (2, True), (3, False)])
@pytest.mark.parametrize("reverse", [False, True])
def test_kernel_gradcheck_float64(mode, proj, reverse):
    """Finite differences through the fused layer op, packed batch sizes [3, 2, 2, 1], every input."""
    H, I, P = 3, 2, 2 if proj else 3
    G = {0: 1, 1: 1, 2: 4, 3: 3}[mode] * H
    bs = [3, 2, 2, 1]
    N = sum(bs)
    arrays = [rand((N, I), seed=1), rand((3, P), seed=2), rand((G, I), seed=3), rand((G, P), seed=4),
              rand((G,), seed=5), rand((G,), seed=6)]
    if mode == 2:
        arrays.append(rand((3, H), seed=7))
    if proj:
        arrays.append(rand((P, H), seed=8))
    if mode == 1:
        arrays[0] = arrays[0] + 0.05 * np.sign(arrays[0])  # keep pre-activations away from ReLU's kink

    def fn(x, h0, wih, whh, bih, bhh, *rest):
        c0 = rest[0] if mode == 2 else None
        whr = rest[-1] if proj else None
        return nc._core._rnn_layer(mode, x, bs, reverse, h0, c0, wih, whh, bih, bhh, whr, "test")

    gradcheck(fn, arrays)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("frozen", ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0"])
def test_gradients_with_a_frozen_weight_match_torch(kind, frozen):
    """One weight not trained: the layer forms the others' gradients without it (W_ih and W_hh
    share one GEMM over all steps only when both are wanted)."""
    torch = require_torch()
    theirs, ours = make_pair(torch, kind, 5, 7, np.float64)
    for m in (theirs, ours):
        getattr(m, frozen).requires_grad_(False)
    x = rand((4, 3, 5), np.float64, seed=11)
    w = rand((4, 3, 7), np.float64, seed=12)
    (theirs(torch.tensor(x))[0] * torch.tensor(w)).sum().backward()
    (ours(nc.tensor(x))[0] * nc.tensor(w)).sum().backward()
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        if name == frozen:
            assert p.grad is None
        else:
            assert_close(p.grad, tparams[name].grad, what=f"{kind} grad {name}", **TOLS[np.float64])


def test_training_is_bit_identical_on_one_and_two_threads():
    def train(threads):
        prev = nc.get_num_threads()
        nc.set_num_threads(threads)
        try:
            nc.manual_seed(0)
            model = nn.LSTM(16, 64, num_layers=2, bidirectional=True, batch_first=True)
            gru = nn.GRU(128, 32)
            opt = nc.optim.Adam(list(model.parameters()) + list(gru.parameters()), lr=1e-2)
            x = nc.tensor(rand((48, 20, 16), np.float32, seed=3))
            for _ in range(3):
                opt.zero_grad()
                out, _ = model(x)
                out2, _ = gru(out)
                (out2 ** 2).mean().backward()
                opt.step()
            return [p.detach().numpy().copy() for p in list(model.parameters()) + list(gru.parameters())]
        finally:
            nc.set_num_threads(prev)

    for a, b in zip(train(1), train(2)):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("cls,kw", [("LSTM", dict(proj_size=50)), ("LSTM", {}), ("GRU", {}),
                                     ("RNN", dict(nonlinearity="relu"))])
def test_wide_layers_match_torch_on_any_thread_count(cls, kw):
    """Hidden sizes spanning several 32-unit blocks with a ragged last block (70 units; lanes
    past a multiple of 8), batches large enough for a thread team, packed sequences of unequal
    lengths in both directions: PyTorch parity on 2 threads, and bit-identical results on 1."""
    torch = require_torch()
    theirs = getattr(torch.nn, cls)(12, 70, bidirectional=True, **kw)
    ours = getattr(nn, cls)(12, 70, bidirectional=True, **kw)
    ours.load_state_dict({k: nc.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    x = rand((6, 40, 12), np.float32, seed=8)
    lengths = [6] * 10 + [5] * 10 + [3] * 10 + [1] * 10

    def run(threads):
        prev = nc.get_num_threads()
        nc.set_num_threads(threads)
        try:
            nx = nc.tensor(x, requires_grad=True)
            packed = nn.utils.rnn.pack_padded_sequence(nx, lengths)
            out, state = ours(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out)
            states = list(state) if cls == "LSTM" else [state]
            loss = sum((t * nc.tensor(rand(tuple(t.shape), np.float32, seed=20 + i))).sum()
                       for i, t in enumerate([out] + states))
            ours.zero_grad()
            loss.backward()
            return [t.detach().numpy().copy() for t in [out] + states + [nx.grad]] + \
                [p.grad.numpy().copy() for p in ours.parameters()]
        finally:
            nc.set_num_threads(prev)

    two, one = run(2), run(1)
    for a, b in zip(two, one):
        assert np.array_equal(a, b)
    tx = torch.tensor(x, requires_grad=True)
    tout, tstate = theirs(torch.nn.utils.rnn.pack_padded_sequence(tx, lengths))
    tout, _ = torch.nn.utils.rnn.pad_packed_sequence(tout)
    tstates = list(tstate) if cls == "LSTM" else [tstate]
    tloss = sum((t * torch.tensor(rand(tuple(t.shape), np.float32, seed=20 + i))).sum()
                for i, t in enumerate([tout] + tstates))
    tloss.backward()
    want = [t.detach().numpy() for t in [tout] + tstates + [tx.grad]] + [p.grad.numpy() for p in theirs.parameters()]
    for i, (a, b) in enumerate(zip(two, want)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=5e-5, err_msg=f"{cls} result {i}")


def test_inference_keeps_no_graph_and_matches_training_forward():
    nc.manual_seed(0)
    lstm = nn.LSTM(3, 4, proj_size=2)
    x = nc.tensor(rand((5, 2, 3), np.float32))
    with nc.no_grad():
        out, (h, c) = lstm(x)
    assert not out.requires_grad and out.grad_fn is None
    out2, (h2, c2) = lstm(x)
    assert out2.requires_grad
    assert np.array_equal(out.numpy(), out2.detach().numpy()) and np.array_equal(c.numpy(), c2.detach().numpy())


def test_module_api_names_repr_and_init():
    torch = require_torch()
    m = nn.LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5, batch_first=True, dropout=0.1)
    t = torch.nn.LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5, batch_first=True, dropout=0.1)
    assert repr(m) == repr(t)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [tuple(p.shape) for p in m.parameters()] == [tuple(p.shape) for p in t.parameters()]
    assert len(m.all_weights) == 4 and len(m.all_weights[0]) == 5
    m.flatten_parameters()
    assert repr(nn.RNN(3, 4, 1, "relu", False)) == repr(torch.nn.RNN(3, 4, 1, "relu", False))
    assert repr(nn.GRU(3, 4, bias=False)) == repr(torch.nn.GRU(3, 4, bias=False))
    nc.manual_seed(0)
    w = np.concatenate([p.detach().numpy().ravel() for p in nn.GRU(8, 100).parameters()])
    assert w.min() >= -0.1 and w.max() <= 0.1 and w.min() < -0.099 and w.max() > 0.099  # U(-1/sqrt(h), 1/sqrt(h))
    assert abs(w.mean()) < 0.003


def test_dropout_between_layers_only_in_training():
    nc.manual_seed(0)
    m = nn.GRU(4, 8, num_layers=2, dropout=0.5)
    x = nc.tensor(rand((5, 3, 4), np.float32))
    m.eval()
    a, _ = m(x)
    b, _ = m(x)
    assert np.array_equal(a.detach().numpy(), b.detach().numpy())
    m.train()
    c, _ = m(x)
    assert not np.allclose(a.detach().numpy(), c.detach().numpy())
    one = nn.GRU(4, 8)
    with pytest.warns(UserWarning, match="dropout"):
        nn.GRU(4, 8, dropout=0.3)
    one.train()
    assert np.array_equal(one(x)[0].detach().numpy(), one(x)[0].detach().numpy())


def test_bad_input_raises_clear_errors():
    lstm = nn.LSTM(32, 16)
    with pytest.raises(ValueError, match=r"\[lstm\] input has 31 features, expected 32 \(input shape \(5, 3, 31\)\)"):
        lstm(nc.zeros(5, 3, 31))
    with pytest.raises(ValueError, match=r"\[lstm\] Expected hidden size \(1, 3, 16\) for h0, got \(1, 2, 16\)"):
        lstm(nc.zeros(5, 3, 32), (nc.zeros(1, 2, 16), nc.zeros(1, 3, 16)))
    with pytest.raises(ValueError, match=r"\[lstm\] Expected hidden size \(1, 3, 16\) for c0"):
        lstm(nc.zeros(5, 3, 32), (nc.zeros(1, 3, 16), nc.zeros(1, 3, 15)))
    with pytest.raises(TypeError, match=r"\[lstm\] hx must be a tuple"):
        lstm(nc.zeros(5, 3, 32), nc.zeros(1, 3, 16))
    with pytest.raises(ValueError, match=r"\[gru\] expected input to be 2-D \(unbatched\) or 3-D, got 4-D"):
        nn.GRU(2, 3)(nc.zeros(1, 2, 3, 2))
    with pytest.raises(ValueError, match=r"\[rnn\] Expected hidden size \(2, 4\) for h0"):
        nn.RNN(2, 4, num_layers=2)(nc.zeros(5, 2), nc.zeros(2, 1, 4))
    with pytest.raises(TypeError, match=r"\[gru\] input must be float32 or float64"):
        nn.GRU(2, 3)(nc.zeros(4, 1, 2, dtype=nc.int64))
    with pytest.raises(ValueError, match=r"\[LSTMCell\] input has 3 features, expected 2"):
        nn.LSTMCell(2, 3)(nc.zeros(4, 3))
    with pytest.raises(ValueError, match=r"\[GRUCell\] hx has shape \(4, 2\), expected \(4, 3\)"):
        nn.GRUCell(2, 3)(nc.zeros(4, 2), nc.zeros(4, 2))
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        nn.LSTM(2, 3, proj_size=3)
    with pytest.raises(ValueError, match="only supported for LSTM"):
        nn.GRU(2, 3, proj_size=1)
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        nn.RNN(2, 3, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"\[lstm\] the input has no time steps"):
        lstm(nc.zeros(0, 3, 32))
    with pytest.raises(ValueError, match=r"batch_sizes must be positive and non-increasing"):
        nc._core._rnn_layer(2, nc.zeros(3, 2), [1, 2], False, None, None, nc.zeros(8, 2), nc.zeros(8, 2),
                            None, None, None, "lstm")


def _simple_rnn_classes(torch, nn):
    """The seed's SimpleRNN verbatim, and its LSTM variant (the one line changed as the seed says)."""

    class SimpleRNN(nn.Module):
        def __init__(self, input_size, hidden_size, num_classes):
            super(SimpleRNN, self).__init__()
            self.hidden_size = hidden_size
            self.rnn = nn.RNN(input_size, hidden_size, batch_first=True)
            self.fc = nn.Linear(hidden_size, num_classes)

        def forward(self, x):
            h0 = torch.zeros(1, x.size(0), self.hidden_size)
            out, _ = self.rnn(x, h0)
            out = self.fc(out[:, -1, :])
            return out

    class SimpleLSTM(nn.Module):
        def __init__(self, input_size, hidden_size, num_classes):
            super(SimpleLSTM, self).__init__()
            self.hidden_size = hidden_size
            self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
            self.fc = nn.Linear(hidden_size, num_classes)

        def forward(self, x):
            out, _ = self.lstm(x)
            out = self.fc(out[:, -1, :])
            return out

    return SimpleRNN, SimpleLSTM


@pytest.mark.parametrize("which", [0, 1])
def test_seed_simple_rnn_and_lstm_variant_match_torch(which):
    torch = require_torch()
    torch.manual_seed(0)
    theirs = _simple_rnn_classes(torch, torch.nn)[which](28, 64, 10)
    ours = _simple_rnn_classes(nc, nn)[which](28, 64, 10)
    ours.load_state_dict({k: nc.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    x = rand((8, 28, 28), np.float32)
    y = np.random.default_rng(0).integers(0, 10, 8)
    tl = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
    nl = nn.functional.cross_entropy(ours(nc.tensor(x)), nc.tensor(y))
    assert_close(nl, tl, 1e-5, 1e-6, "loss")
    tl.backward()
    nl.backward()
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tp[name].grad, 1e-4, 1e-6, name)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_edge_values_saturate_or_propagate(kind):
    """An infinite input feature saturates the gates (sigmoid -> 0 or 1, tanh -> +-1): outputs stay
    finite in [-1, 1]. A NaN input makes that sequence's outputs NaN from its step on, and leaves
    the other sequences and earlier steps untouched."""
    cls, extra = KINDS[kind]
    nc.manual_seed(0)
    layer = getattr(nn, cls)(3, 5, **extra)
    for dtype in (nc.float32, nc.float64):
        layer = layer.to(dtype) if dtype == nc.float64 else layer
        x = np.ones((4, 2, 3)) * 0.5
        x[1, 0, 0], x[2, 1, 1] = np.inf, -np.inf
        with nc.no_grad():
            out = layer(nc.tensor(x).to(dtype))[0].numpy()
        assert np.all(np.isfinite(out)) and np.all(np.abs(out) <= 1)
        x = np.ones((4, 2, 3)) * 0.5
        x[2, 0, 1] = np.nan
        with nc.no_grad():
            out = layer(nc.tensor(x).to(dtype))[0].numpy()
        assert np.all(np.isnan(out[2:, 0])) and np.all(np.isfinite(out[:2])) and np.all(np.isfinite(out[:, 1]))


@pytest.mark.parametrize("cls,kw", [("LSTM", {}), ("LSTM", dict(proj_size=3)), ("GRU", {}),
                                     ("RNN", dict(nonlinearity="relu")), ("RNN", {})])
@pytest.mark.parametrize("packed", [False, True])
def test_double_backward_matches_torch(cls, kw, packed):
    """create_graph=True through the layer (a gradient penalty), then backward again: the
    second-order gradients of the input, the initial states and every weight match PyTorch."""
    torch = require_torch()
    torch.manual_seed(0)
    theirs = getattr(torch.nn, cls)(3, 5, num_layers=2, bidirectional=True, **kw).double()
    ours = getattr(nn, cls)(3, 5, num_layers=2, bidirectional=True, dtype=nc.float64, **kw)
    ours.load_state_dict({k: nc.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    x = rand((4, 3, 3), np.float64, seed=11)
    lengths = [4, 3, 2]
    h_size = 3 if kw.get("proj_size") else 5
    states = [rand((4, 3, h_size), np.float64, seed=12)] + ([rand((4, 3, 5), np.float64, seed=13)] if cls == "LSTM" else [])

    def run(lib, mod):
        xs = lib.tensor(x, requires_grad=True)
        hs = [lib.tensor(a, requires_grad=True) for a in states]
        inp = lib.nn.utils.rnn.pack_padded_sequence(xs, lengths) if packed else xs
        out, _ = mod(inp, tuple(hs) if cls == "LSTM" else hs[0])
        if packed:
            out = lib.nn.utils.rnn.pad_packed_sequence(out)[0]
        loss = (out * lib.tensor(rand(tuple(out.shape), np.float64, seed=14))).sum()
        grads = lib.autograd.grad(loss, [xs] + hs + list(mod.parameters()), create_graph=True)
        penalty = sum((g * g).sum() for g in grads)
        second = lib.autograd.grad(penalty, [xs] + hs + list(mod.parameters()), allow_unused=True)
        return [np.zeros(a.shape) if a is None else a.detach().numpy() for a in second]

    for i, (a, b) in enumerate(zip(run(nc, ours), run(torch, theirs))):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11, err_msg=f"{cls} second-order gradient {i}")
