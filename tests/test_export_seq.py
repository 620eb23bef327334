"""nc.export of sequence models: RNN/LSTM/GRU layers and cells, Embedding, scaled-dot-product
attention, MultiheadAttention, Transformer layers, LayerNorm/RMSNorm. The runtime (Python front end
and the C ABI) gives the eager model's outputs (float32, within 1e-5 relative to the output's scale)
at batch sizes other than the example's; bad inputs raise errors naming the op and the shapes."""
import ctypes
import json
import struct
from pathlib import Path

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from neurocore.nn import functional as F
from seq_models import Attention, Recurrent, SeedTransformerBlock, close as _close, eager as _eager, flat as _flat


def _inputs(rng, shapes, b, batch_dims, ints=()):
    xs = []
    for i, (s, d) in enumerate(zip(shapes, batch_dims)):
        shape = list(s)
        shape.insert(d, b)
        if i in ints:
            xs.append(rng.integers(0, ints[i], size=shape).astype(np.int64))
        else:
            xs.append(rng.standard_normal(shape).astype(np.float32))
    return xs


def _roundtrip(tmp_path, model, shapes, batch_dim=0, batches=(1, 4, 9), ints=None, seed=0):
    """Exports at batch 3 with a dynamic batch and compares with eager at other batch sizes.
    `shapes` are the input shapes without the batch dim, inserted at `batch_dim` (int or per input)."""
    rng = np.random.default_rng(seed)
    ints = ints or {}
    dims = [batch_dim] * len(shapes) if isinstance(batch_dim, int) else list(batch_dim)
    model.eval()
    path = tmp_path / "m.ncm"
    nc.export.save(model, path, tuple(_inputs(rng, shapes, 3, dims, ints)), batch_dim=batch_dim)
    session = nc.export.load(path)
    for b in batches:
        xs = _inputs(rng, shapes, b, dims, ints)
        got = session(*xs)
        got = list(got) if isinstance(got, tuple) else [got]
        want = _eager(model, xs)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _close(g, w)
    return session, path


@pytest.mark.parametrize("kind,kwargs", [
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(proj_size=3, batch_first=True)),
    ("LSTM", dict(num_layers=2, proj_size=4, bidirectional=True, bias=False)),
    ("GRU", dict(num_layers=2, bidirectional=True, batch_first=True)),
    ("GRU", dict()),
    ("RNN", dict(nonlinearity="relu", num_layers=2)),
    ("RNN", dict(bidirectional=True, batch_first=True)),
])
@pytest.mark.parametrize("with_state", [False, True])
def test_recurrent_layers_match_eager(tmp_path, kind, kwargs, with_state):
    nc.manual_seed(1)
    layer = getattr(nn, kind)(5, 6, **kwargs)
    model = Recurrent(layer, with_state)
    D = 2 if layer.bidirectional else 1
    P = layer.proj_size or layer.hidden_size
    T = 4
    x_shape, x_dim = ((T, 5), 0) if layer.batch_first else ((T, 5), 1)
    shapes, dims = [x_shape], [x_dim]
    if with_state:
        shapes.append((layer.num_layers * D, P))
        dims.append(1)
        if kind == "LSTM":
            shapes.append((layer.num_layers * D, layer.hidden_size))
            dims.append(1)
    session, _ = _roundtrip(tmp_path, model, shapes, batch_dim=dims)
    assert "rnn" in session.describe()


class Cells(nn.Module):
    """The three cells unrolled over the time steps of a batch-first input by a Python loop."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTMCell(5, 7)
        self.gru = nn.GRUCell(7, 6)
        self.rnn = nn.RNNCell(6, 4, nonlinearity="tanh")

    def forward(self, x, h0):
        h, c = self.lstm(x[:, 0])
        g = self.gru(h)
        r = self.rnn(g, h0)
        for t in range(1, x.shape[1]):
            h, c = self.lstm(x[:, t], (h, c))
            g = self.gru(h, g)
            r = self.rnn(g, r)
        return r, c


def test_cells_unrolled_by_python_loops(tmp_path):
    nc.manual_seed(2)
    session, _ = _roundtrip(tmp_path, Cells(), [(3, 5), (4,)])
    assert [line.split()[0] for line in session.describe().splitlines()].count("rnn") == 9


class TextClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 8, padding_idx=0)
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.norm = nn.RMSNorm(16)
        self.fc = nn.Linear(16, 3)

    def forward(self, tokens):
        out, _ = self.lstm(self.embed(tokens))
        return F.log_softmax(self.fc(self.norm(out[:, -1])), dim=1)


def test_embedding_lstm_classifier_with_integer_input(tmp_path):
    nc.manual_seed(3)
    session, path = _roundtrip(tmp_path, TextClassifier(), [(7,)], ints={0: 50})
    assert session.input_shapes == [(-1, 7)]
    raw = path.read_bytes()  # the input is recorded as int64 indices
    (n,) = struct.unpack("<Q", raw[:8])
    inputs = json.loads(json.loads(raw[8:8 + n])["__metadata__"]["neurocore.inputs"])
    assert inputs[0]["dtype"] == "int64"
    with pytest.raises(ValueError, match=r"\[embedding in module 'embed'\] index 50\.0.* not an integer in \[0, 50\)"):
        session(np.full((2, 7), 50, dtype=np.int64))


@pytest.mark.parametrize("mode", ["mask", "causal", "gqa"])
def test_scaled_dot_product_attention(tmp_path, mode):
    # q (B, 2, 5, 4), k/v (B, 2, 6, 4|3); the additive mask broadcasts over the heads.
    _roundtrip(tmp_path, Attention(mode), [(2, 5, 4), (2, 6, 4), (2, 6, 3), (1, 5, 6)])


class SelfAttention(nn.Module):
    def __init__(self, need_weights, batch_first, **kw):
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=batch_first, **kw)
        self.need_weights = need_weights

    def forward(self, x, kv, pad):
        if self.mha._qkv_same_embed_dim and not self.need_weights:
            out, _ = self.mha(x, x, x, need_weights=False)
            return out
        out, w = self.mha(x, kv, kv, key_padding_mask=pad, need_weights=self.need_weights)
        return (out, w) if w is not None else out


@pytest.mark.parametrize("need_weights,batch_first,kw", [
    (False, True, {}),
    (True, True, {}),
    (False, False, dict(kdim=5, vdim=5)),
    (True, False, dict(kdim=5, vdim=5, bias=False)),
    (False, False, dict(add_bias_kv=True, add_zero_attn=True)),  # expand and zeros follow the batch
    (True, True, dict(add_bias_kv=True, kdim=5, vdim=5)),
])
def test_multihead_attention(tmp_path, need_weights, batch_first, kw):
    nc.manual_seed(4)
    model = SelfAttention(need_weights, batch_first, **kw)
    kv_dim = kw.get("kdim", 8)
    if batch_first:
        _roundtrip(tmp_path, model, [(4, 8), (6, kv_dim), (6,)], batch_dim=0)
    else:
        _roundtrip(tmp_path, model, [(4, 8), (6, kv_dim), (6,)], batch_dim=[1, 1, 0])


@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu")])
def test_transformer_encoder(tmp_path, norm_first, activation):
    nc.manual_seed(5)
    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.1, activation=activation,
                                       batch_first=True, norm_first=norm_first)
    model = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(16))
    session, _ = _roundtrip(tmp_path, model, [(6, 16)])
    assert "attention" in session.describe()


class Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
        self.decoder = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, norm_first=True)

    def forward(self, src, tgt, tgt_mask):
        return self.decoder(tgt, self.encoder(src), tgt_mask=tgt_mask)


def test_transformer_decoder_with_a_mask_input(tmp_path):
    nc.manual_seed(6)
    rng = np.random.default_rng(0)
    model = Seq2Seq().eval()
    mask = np.triu(np.full((4, 4), -np.inf, dtype=np.float32), 1)[None].repeat(3, 0)  # (B, L, L) per batch
    src, tgt = rng.standard_normal((5, 3, 8)).astype(np.float32), rng.standard_normal((4, 3, 8)).astype(np.float32)

    class Wrapped(nn.Module):  # the mask as (B, L, L) so it follows the batch; the layer wants (L, L)
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, src, tgt, mask):
            return self.inner(src, tgt, mask[0])

    model = Wrapped(model)
    path = tmp_path / "m.ncm"
    nc.export.save(model, path, (src, tgt, mask), batch_dim=[1, 1, 0])
    session = nc.export.load(path)
    for b in (1, 6):
        s, t = rng.standard_normal((5, b, 8)).astype(np.float32), rng.standard_normal((4, b, 8)).astype(np.float32)
        m = mask[:1].repeat(b, 0)
        _close(session(s, t, m), _eager(model, [s, t, m])[0])


def test_norms(tmp_path):
    nc.manual_seed(7)
    model = nn.Sequential(nn.LayerNorm([3, 4]), nn.RMSNorm(4, eps=1e-3), nn.RMSNorm([3, 4], elementwise_affine=False))
    _roundtrip(tmp_path, model, [(3, 4)])


def test_c_abi_runs_a_bidirectional_lstm(tmp_path):
    nc.manual_seed(8)
    model = Recurrent(nn.LSTM(5, 6, num_layers=2, bidirectional=True, batch_first=True), False).eval()
    rng = np.random.default_rng(1)
    path = tmp_path / "lstm.ncm"
    nc.export.save(model, path, (rng.standard_normal((2, 4, 5)).astype(np.float32),))
    lib = ctypes.CDLL(str(Path(nc.__file__).parent / "lib" / "libneurocore_runtime.so"))
    lib.nc_session_open.restype = ctypes.c_void_p
    lib.nc_session_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.nc_session_close.argtypes = [ctypes.c_void_p]
    lib.nc_session_run.argtypes = [ctypes.c_void_p] + [ctypes.c_void_p] * 5 + [ctypes.c_char_p, ctypes.c_size_t]
    err = ctypes.create_string_buffer(512)
    s = lib.nc_session_open(str(path).encode(), err, 512)
    assert s, err.value
    try:
        x = rng.standard_normal((5, 4, 5)).astype(np.float32)
        want = _eager(model, [x])
        outs = [np.zeros(w.shape, dtype=np.float32) for w in want]
        shape = (ctypes.c_int64 * 3)(*x.shape)
        shapes = (ctypes.POINTER(ctypes.c_int64) * 1)(shape)
        ranks = (ctypes.c_int * 1)(3)
        ins = (ctypes.c_void_p * 1)(x.ctypes.data)
        out_ptrs = (ctypes.c_void_p * 3)(*[o.ctypes.data for o in outs])
        caps = (ctypes.c_int64 * 3)(*[o.size for o in outs])
        rc = lib.nc_session_run(s, ins, shapes, ranks, out_ptrs, caps, err, 512)
        assert rc == 0, err.value
        for o, w in zip(outs, want):
            _close(o, w)
        bad = (ctypes.c_int64 * 3)(5, 4, 6)
        shapes_bad = (ctypes.POINTER(ctypes.c_int64) * 1)(bad)
        assert lib.nc_session_run(s, ins, shapes_bad, ranks, out_ptrs, caps, err, 512) == -1
        assert b"(-1, 4, 5)" in err.value
    finally:
        lib.nc_session_close(s)


# ---- errors ----

class Packed(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4)

    def forward(self, x):
        packed = nn.utils.rnn.pack_padded_sequence(x, [3, 2], enforce_sorted=True)
        return self.gru(packed)[1]


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4)

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        return out if float(h.sum()) > 0 else -out


class BoolMask(nn.Module):
    def forward(self, q):
        mask = nc.ones(q.shape[-2], q.shape[-2], dtype=nc.bool)
        return F.scaled_dot_product_attention(q, q, q, attn_mask=mask)


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4)

    def forward(self, x):
        out, _ = self.lstm(x)
        return out.flip(0)


@pytest.mark.parametrize("model,shape,match", [
    (Packed(), (3, 2, 3), r"lengths must be a model input tensor .*got list \(in module 'Packed'\)"),
    (DataDependent(), (3, 2, 3), r"reads tensor data into Python"),
    (BoolMask(), (2, 4, 3), r"uses a tensor of shape \(4, 4\) that is neither an input, a parameter or buffer"),
    (Unsupported(), (3, 2, 3), r"op '\w+' is not supported by export \(applied to a traced tensor of shape \(3, 2, 4\)\)"),
])
def test_untraceable_sequence_models_raise(tmp_path, model, shape, match):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with pytest.raises(nc.export.ExportError, match=match):
        nc.export.save(model, tmp_path / "m.ncm", (x,), dynamic_batch=False)


def test_wrong_shapes_at_run_time_name_the_input(tmp_path):
    nc.manual_seed(9)
    model = Recurrent(nn.LSTM(5, 6, batch_first=True), True)
    session, _ = _roundtrip(tmp_path, model, [(4, 5), (1, 6), (1, 6)], batch_dim=[0, 1, 1], batches=(2,))
    x, h, c = np.zeros((2, 4, 5), np.float32), np.zeros((1, 2, 6), np.float32), np.zeros((1, 2, 6), np.float32)
    with pytest.raises(ValueError, match=r"\[run\] input 'input0' has shape \(2, 4, 4\), the model expects \(-1, 4, 5\)"):
        session(x[..., :4], h, c)
    with pytest.raises(ValueError, match=r"input 'input1' has shape \(1, 3, 6\).*the same for every input"):
        session(x, np.zeros((1, 3, 6), np.float32), c)
    with pytest.raises(ValueError, match=r"batch_dim 3 of input 1 is not a dim of its shape"):
        nc.export.save(model, tmp_path / "x.ncm", (x, h, c), batch_dim=[0, 3, 1])


def test_per_session_thread_count(tmp_path):
    nc.manual_seed(10)
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True)
    _, path = _roundtrip(tmp_path, layer, [(6, 16)], batches=(2,))
    x = np.random.default_rng(3).standard_normal((8, 6, 16)).astype(np.float32)
    before = nc.get_num_threads()
    one = nc.export.load(path, num_threads=1)
    two = nc.export.load(path)
    two.num_threads = 2
    assert (one.num_threads, two.num_threads, nc.get_num_threads()) == (1, 2, before)
    np.testing.assert_array_equal(one(x), two(x))  # results never depend on the thread count
    two.num_threads = None
    assert two.num_threads == before
    with pytest.raises(ValueError, match="num_threads must be a non-negative int"):
        one.num_threads = -1


class SeedSimpleRNN(nn.Module):
    """The seed guide's SimpleRNN (h0 made in forward from the batch size), with its LSTM variant."""

    def __init__(self, kind, input_size=5, hidden_size=8, num_classes=3):
        super().__init__()
        self.hidden_size, self.kind = hidden_size, kind
        self.rnn = getattr(nn, kind)(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        h0 = nc.zeros(1, x.size(0), self.hidden_size)
        out, _ = self.rnn(x, (h0, h0) if self.kind == "LSTM" else h0)
        return self.fc(out[:, -1, :])


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_seed_simple_rnn(tmp_path, kind):
    nc.manual_seed(11)
    session, _ = _roundtrip(tmp_path, SeedSimpleRNN(kind), [(6, 5)])
    ops = [line.split()[0] for line in session.describe().splitlines()]
    assert "full" in ops and ops.count("cat") == 0  # h0 made in forward; the unused stacked h_n is dropped


def test_seed_transformer_block(tmp_path):
    nc.manual_seed(12)
    _roundtrip(tmp_path, SeedTransformerBlock(), [(7, 16)], batch_dim=1)


class FilledThenModified(nn.Module):
    def forward(self, x):
        h = nc.zeros(x.shape[0], 3)
        h.add_(1.0)
        return x + h


def test_tensor_made_in_forward_then_modified_is_refused(tmp_path):
    with pytest.raises(nc.export.ExportError, match=r"created in forward and then modified in place"):
        nc.export.save(FilledThenModified(), tmp_path / "m.ncm", (np.zeros((2, 3), np.float32),))


class SeqZoo(nn.Module):
    """Every sequence op of the file format in one graph (for the loader fuzzing below)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.lstm = nn.LSTM(8, 8, batch_first=True, bidirectional=True, proj_size=4)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True, add_bias_kv=True)
        self.norm = nn.RMSNorm(8)

    def forward(self, tokens, h0):
        out, _ = self.lstm(self.embed(tokens), (h0, nc.zeros(2, tokens.size(0), 8)))
        a, _ = self.attn(out, out, out, need_weights=False)
        return self.norm(a)[:, -1]


def test_fuzzed_sequence_graphs_never_crash(tmp_path):
    """Random values in the sequence ops' attributes, inputs and outputs: each file is rejected with
    '[load] ...' or loads, and then runs or raises a ValueError; nothing crashes."""
    nc.manual_seed(13)
    rng = np.random.default_rng(13)
    tokens, h0 = rng.integers(0, 20, (2, 5)), rng.standard_normal((2, 2, 4)).astype(np.float32)
    path = tmp_path / "zoo.ncm"
    nc.export.save(SeqZoo(), path, (tokens, h0), batch_dim=[0, 1])
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    graph = json.loads(header["__metadata__"]["neurocore.graph"])
    seq_ops = {"rnn", "attention", "embedding", "rms_norm", "slice", "full", "expand"}
    targets = []
    for i, node in enumerate(graph["nodes"]):
        if node["op"] in seq_ops:
            targets += [(i, "attrs", k) for k in node["attrs"]] + [(i, "inputs", None), (i, "outputs", None)]
    assert len({graph["nodes"][i]["op"] for i, _, _ in targets}) == len(seq_ops)
    choices = [-1, 0, 1, 2, 3, 7, 2 ** 31, -2 ** 40, 0.5, "x", None, [], [0, 1, -1, 1], [[0, 1, 1, 1]], True, False]
    rejected = ran = 0
    for trial in range(400):
        g = json.loads(json.dumps(graph))
        i, field, key = targets[int(rng.integers(0, len(targets)))]
        value = choices[int(rng.integers(0, len(choices)))]
        if field == "attrs":
            g["nodes"][i]["attrs"][key] = value
        elif isinstance(value, int) and not isinstance(value, bool) and g["nodes"][i][field]:
            g["nodes"][i][field][int(rng.integers(0, len(g["nodes"][i][field])))] = value
        else:
            g["nodes"][i][field] = value
        h = json.loads(json.dumps(header))
        h["__metadata__"]["neurocore.graph"] = json.dumps(g)
        head = json.dumps(h).encode()
        head += b" " * (-len(head) % 8)
        path.write_bytes(struct.pack("<Q", len(head)) + head + data)
        try:
            session = nc.export.load(path)
        except ValueError as e:
            assert str(e).startswith("[load] "), str(e)
            rejected += 1
            continue
        try:
            session(rng.integers(0, 20, (3, 5)), rng.standard_normal((2, 3, 4)).astype(np.float32))
            ran += 1
        except ValueError:
            rejected += 1
    assert rejected > 130 and rejected + ran == 400
