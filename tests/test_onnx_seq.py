"""nc.onnx.export of sequence models: LSTM/GRU/RNN as ONNX's fused ops (PyTorch's gate order
converted), attention as MatMul/Softmax (and the opset-23 Attention op), LayerNorm as
LayerNormalization, Embedding as Gather. The graphs pass onnx.checker (full_check) and ONNX Runtime
equals neurocore (float32, 1e-5 relative) at batch sizes other than the example's; the exported
recurrent models load back (nc.onnx.load, on the fused recurrent kernel), give the same outputs and
train."""
import io

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn, optim
from neurocore.nn import functional as F
from test_onnx_export import require
from seq_models import Attention, Recurrent, SeedTransformerBlock, close as _close, eager as _eager, flat as _flat


def _make(rng, shape, b, dim, high=None):
    shape = list(shape)
    shape.insert(dim, b)
    if high is not None:
        return rng.integers(0, high, size=shape).astype(np.int64)
    return rng.standard_normal(shape).astype(np.float32)


def _check(model, shapes, batch_dims, opset=17, ints=None, batches=(1, 5), n_out=1):
    """Exports at batch 3 with the batch axes dynamic; ONNX Runtime at other batch sizes equals
    neurocore. Returns the serialized model."""
    onnx, ort = require("onnx"), require("onnxruntime")
    ints = ints or {}
    rng = np.random.default_rng(0)
    model.eval()
    xs = [_make(rng, s, 3, d, ints.get(i)) for i, (s, d) in enumerate(zip(shapes, batch_dims))]
    names = [f"x{i}" for i in range(len(xs))]
    outs = [f"y{i}" for i in range(n_out)]
    f = io.BytesIO()
    proto = nc.onnx.export(model, tuple(nc.tensor(x) for x in xs), f, input_names=names, output_names=outs,
                           dynamic_axes={n: {d: "batch"} for n, d in zip(names, batch_dims)}, opset_version=opset)
    onnx.checker.check_model(proto, full_check=True)
    sess = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    for b in batches:
        xs = [_make(rng, s, b, d, ints.get(i)) for i, (s, d) in enumerate(zip(shapes, batch_dims))]
        got = sess.run(None, dict(zip(names, xs)))
        want = _eager(model, xs)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _close(g, w)
    return f.getvalue(), proto


@pytest.mark.parametrize("kind,kwargs", [
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(batch_first=True, bias=False)),
    ("GRU", dict(num_layers=2, bidirectional=True, batch_first=True)),
    ("GRU", dict()),
    ("RNN", dict(nonlinearity="relu", num_layers=2)),
    ("RNN", dict(bidirectional=True, batch_first=True)),
])
@pytest.mark.parametrize("with_state", [False, True])
def test_recurrent_layers_as_fused_onnx_ops(kind, kwargs, with_state):
    nc.manual_seed(1)
    layer = getattr(nn, kind)(5, 6, **kwargs)
    D = 2 if layer.bidirectional else 1
    shapes, dims = [(4, 5)], [0 if layer.batch_first else 1]
    if with_state:
        shapes.append((layer.num_layers * D, 6))
        dims.append(1)
        if kind == "LSTM":
            shapes.append((layer.num_layers * D, 6))
            dims.append(1)
    n_out = 3 if kind == "LSTM" else 2
    _, proto = _check(Recurrent(layer, with_state), shapes, dims, n_out=n_out)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count({"LSTM": "LSTM", "GRU": "GRU", "RNN": "RNN"}[kind]) == layer.num_layers * D
    if kind == "GRU":
        gru = next(n for n in proto.graph.node if n.op_type == "GRU")
        assert any(a.name == "linear_before_reset" and a.i == 1 for a in gru.attribute)
    # The initializers keep the state_dict's names and PyTorch's layouts.
    inits = {i.name for i in proto.graph.initializer}
    assert {f"layer.{k}" for k, _ in layer.named_parameters()} <= inits


def test_lstm_projection_is_refused():
    require("onnx")
    model = nn.LSTM(4, 6, proj_size=2)
    with pytest.raises(nc.onnx.OnnxError, match="proj_size"):
        nc.onnx.export(model, nc.randn(3, 2, 4))


class TextModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(30, 8)
        self.gru = nn.GRU(8, 12, batch_first=True)
        self.norm = nn.LayerNorm(12)
        self.fc = nn.Linear(12, 4)

    def forward(self, tokens):
        out, h = self.gru(self.embed(tokens))
        return self.fc(self.norm(out[:, -1] + h[0]))


def test_embedding_gru_classifier_round_trip():
    nc.manual_seed(2)
    model = TextModel()
    data, proto = _check(model, [(6,)], [0], ints={0: 30})
    assert {"Gather", "GRU", "LayerNormalization", "Slice"} <= {n.op_type for n in proto.graph.node}


@pytest.mark.parametrize("opset", [17, 23])
@pytest.mark.parametrize("mode", ["mask", "causal", "gqa"])
def test_sdpa(mode, opset):
    """MatMul/Softmax below opset 23, the Attention op at 23 (ONNX Runtime runs both)."""
    _, proto = _check(Attention(mode), [(2, 5, 4), (2, 6, 4), (2, 6, 3), (1, 5, 6)], [0, 0, 0, 0], opset=opset)
    ops = {n.op_type for n in proto.graph.node}
    if opset < 23:
        assert {"MatMul", "Softmax"} <= ops and "Attention" not in ops
    else:
        assert "Attention" in ops and "Softmax" not in ops


@pytest.mark.parametrize("need_weights,batch_first,kw", [
    (False, True, {}),
    (True, False, dict(kdim=5, vdim=5)),
    (True, True, dict(kdim=5, vdim=5, add_bias_kv=True, add_zero_attn=True)),
])
def test_multihead_attention(need_weights, batch_first, kw):
    nc.manual_seed(3)

    class MHA(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(8, 2, batch_first=batch_first, **kw)

        def forward(self, x, kv, pad):
            if not kw:
                return self.mha(x, x, x, need_weights=False)[0]
            return self.mha(x, kv, kv, key_padding_mask=pad, need_weights=need_weights)

    kv = kw.get("kdim", 8)
    dims = [0, 0, 0] if batch_first else [1, 1, 0]
    _check(MHA(), [(4, 8), (6, kv), (6,)], dims, n_out=2 if need_weights else 1)


def test_transformer_encoder_layer():
    nc.manual_seed(4)
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True, norm_first=True, activation="gelu")
    model = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(16))
    _, proto = _check(model, [(5, 16)], [0])
    assert "LayerNormalization" in {n.op_type for n in proto.graph.node}


def test_opset_23_attention_and_rms_norm():
    """Opset 23: the Attention and RMSNormalization ops, checked by onnx's reference evaluator and
    ONNX Runtime."""
    onnx = require("onnx")
    nc.manual_seed(5)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.RMSNorm(4)

        def forward(self, q, k, v, mask):
            return self.norm(F.scaled_dot_product_attention(q, k, v, attn_mask=mask))

    model = Block().eval()
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s).astype(np.float32) for s in [(2, 2, 5, 4), (2, 2, 6, 4), (2, 2, 6, 4), (1, 1, 5, 6)]]
    proto = nc.onnx.export(model, tuple(nc.tensor(x) for x in xs), input_names=["q", "k", "v", "m"],
                           opset_version=23)
    onnx.checker.check_model(proto, full_check=True)
    assert {"Attention", "RMSNormalization"} <= {n.op_type for n in proto.graph.node}
    want = _eager(model, xs)[0]
    from onnx.reference import ReferenceEvaluator
    _close(ReferenceEvaluator(proto).run(None, dict(zip(["q", "k", "v", "m"], xs)))[0], want)
    ort = require("onnxruntime")
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    _close(sess.run(None, dict(zip(["q", "k", "v", "m"], xs)))[0], want)


def test_imported_lstm_runs_fused_and_trains():
    """neurocore -> ONNX -> neurocore: the same outputs, one fused kernel call per layer and
    direction, and the imported model trains (its loss falls over Adam steps)."""
    require("onnx")
    nc.manual_seed(6)

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(5, 8, num_layers=2, bidirectional=True, batch_first=True)
            self.fc = nn.Linear(16, 3)

        def forward(self, x):
            return self.fc(self.lstm(x)[0])

    model = Tagger().eval()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 7, 5)).astype(np.float32)
    f = io.BytesIO()
    nc.onnx.export(model, nc.tensor(x), f, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    loaded = nc.onnx.load(io.BytesIO(f.getvalue()))
    x2 = rng.standard_normal((6, 7, 5)).astype(np.float32)
    with nc.no_grad():
        _close(loaded(nc.tensor(x2)).numpy(), model(nc.tensor(x2)).numpy())
    from neurocore import _core
    calls = []
    original = _core._rnn_layer

    def counting(*args):
        calls.append(args[3])
        return original(*args)

    _core._rnn_layer = counting
    try:
        with nc.no_grad():
            loaded(nc.tensor(x2))
    finally:
        _core._rnn_layer = original
    assert sorted(calls) == [False, False, True, True]  # 2 layers x 2 directions, one call each
    loaded.train()
    target = nc.tensor(rng.standard_normal((4, 7, 3)).astype(np.float32))
    opt = optim.Adam(loaded.parameters(), lr=0.01)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = F.mse_loss(loaded(nc.tensor(x)), target)
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_seed_simple_rnn(kind):
    """The seed's SimpleRNN: h0 made in forward from the batch size (ConstantOfShape of the input's
    dynamic dim), the last step into a Linear."""
    nc.manual_seed(7)

    class SimpleRNN(nn.Module):
        def __init__(self, input_size=5, hidden_size=8, num_classes=3):
            super().__init__()
            self.hidden_size = hidden_size
            self.rnn = getattr(nn, kind)(input_size, hidden_size, batch_first=True)
            self.fc = nn.Linear(hidden_size, num_classes)

        def forward(self, x):
            h0 = nc.zeros(1, x.size(0), self.hidden_size)
            out, _ = self.rnn(x, (h0, h0) if kind == "LSTM" else h0)
            return self.fc(out[:, -1, :])

    _, proto = _check(SimpleRNN(), [(6, 5)], [0])
    assert "ConstantOfShape" in {n.op_type for n in proto.graph.node}


def test_seed_transformer_block():
    nc.manual_seed(8)
    _check(SeedTransformerBlock(), [(7, 16)], [1])


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_pytorch_weights_through_onnx_equal_pytorch(kind):
    """PyTorch's layer -> its state_dict into neurocore's -> nc.onnx.export -> ONNX Runtime equals
    PyTorch's own outputs: the gate reordering is checked against PyTorch, not only against neurocore."""
    from helpers import require_torch
    torch = require_torch()
    ort = require("onnxruntime")
    torch.manual_seed(0)
    tlayer = getattr(torch.nn, kind)(5, 6, num_layers=2, bidirectional=True, batch_first=True).eval()
    layer = getattr(nn, kind)(5, 6, num_layers=2, bidirectional=True, batch_first=True)
    layer.load_state_dict({k: nc.tensor(v.detach().numpy()) for k, v in tlayer.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((3, 4, 5)).astype(np.float32)
    f = io.BytesIO()
    nc.onnx.export(Recurrent(layer, False), nc.tensor(x), f, input_names=["x"],
                   dynamic_axes={"x": {0: "batch"}})
    sess = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    x2 = np.random.default_rng(3).standard_normal((5, 4, 5)).astype(np.float32)
    got = sess.run(None, {"x": x2})
    with torch.no_grad():
        want = _flat_torch(tlayer(torch.from_numpy(x2)))
    for g, w in zip(got, want):
        _close(g, w)


def _flat_torch(out):
    if hasattr(out, "numpy"):
        return [out.numpy()]
    return [a for o in out for a in _flat_torch(o)]
