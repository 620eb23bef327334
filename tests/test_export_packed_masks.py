"""nc.export of packed sequences (pack_padded_sequence -> RNN/LSTM/GRU -> pad_packed_sequence, the
lengths a model input) and of boolean attention masks (scaled_dot_product_attention's bool
attn_mask, MultiheadAttention's bool key_padding_mask and attn_mask, the Transformer layers'
src_key_padding_mask): the runtime, through Python and through the C ABI, gives the eager model's
outputs (float32, within 1e-5 relative to the output's scale) at batch sizes 1, 4 and 9, for
lengths and masks drawn per call; lengths the runtime can't honour raise clear errors."""
import ctypes
from pathlib import Path

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from neurocore.nn import functional as F
from neurocore.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from seq_models import close, eager

BATCHES = (1, 4, 9)


def c_abi_run(path, xs):
    """The model's outputs through the C ABI (neurocore_runtime.h) on float32 copies of xs."""
    lib = ctypes.CDLL(str(Path(nc.__file__).parent / "lib" / "libneurocore_runtime.so"))
    lib.nc_session_open.restype = ctypes.c_void_p
    lib.nc_session_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.nc_session_close.argtypes = [ctypes.c_void_p]
    lib.nc_session_num_outputs.argtypes = [ctypes.c_void_p]
    lib.nc_session_output_shape.argtypes = [ctypes.c_void_p] + [ctypes.c_void_p] * 2 + [ctypes.c_int, ctypes.c_void_p,
                                                                                     ctypes.c_int, ctypes.c_char_p,
                                                                                     ctypes.c_size_t]
    lib.nc_session_run.argtypes = [ctypes.c_void_p] + [ctypes.c_void_p] * 5 + [ctypes.c_char_p, ctypes.c_size_t]
    err = ctypes.create_string_buffer(512)
    s = lib.nc_session_open(str(path).encode(), err, 512)
    assert s, err.value
    try:
        xs = [np.ascontiguousarray(x, dtype=np.float32) for x in xs]
        dims = [(ctypes.c_int64 * max(x.ndim, 1))(*x.shape) for x in xs]
        shapes = (ctypes.POINTER(ctypes.c_int64) * len(xs))(*[ctypes.cast(d, ctypes.POINTER(ctypes.c_int64))
                                                              for d in dims])
        ranks = (ctypes.c_int * len(xs))(*[x.ndim for x in xs])
        outs = []
        for i in range(lib.nc_session_num_outputs(s)):
            buf = (ctypes.c_int64 * 16)()
            rank = lib.nc_session_output_shape(s, shapes, ranks, i, buf, 16, err, 512)
            assert rank >= 0, err.value
            outs.append(np.empty(tuple(buf[:rank]), np.float32))
        ins = (ctypes.c_void_p * len(xs))(*[x.ctypes.data for x in xs])
        out_ptrs = (ctypes.c_void_p * len(outs))(*[o.ctypes.data for o in outs])
        caps = (ctypes.c_int64 * len(outs))(*[o.size for o in outs])
        assert lib.nc_session_run(s, ins, shapes, ranks, out_ptrs, caps, err, 512) == 0, err.value
        return outs
    finally:
        lib.nc_session_close(s)


def check_roundtrip(tmp_path, model, make_inputs, batch_dim=0):
    """Exports with a dynamic batch on make_inputs(3) and compares the runtime (Python and C ABI)
    with eager on fresh inputs at each of BATCHES."""
    model.eval()
    path = tmp_path / "m.ncm"
    nc.export.save(model, path, tuple(make_inputs(3)), batch_dim=batch_dim)
    session = nc.export.load(path)
    for b in BATCHES:
        xs = make_inputs(b)
        want = eager(model, xs)
        got = session(*xs)
        got = list(got) if isinstance(got, tuple) else [got]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            close(g, w)
        for g, w in zip(c_abi_run(path, xs), want):
            close(g, w)
    return session, path


class PackedRnn(nn.Module):
    """The common PyTorch pattern: pack the padded batch by its lengths, run the layer, unpack."""

    def __init__(self, layer, sort=False, total_length=None, with_state=False, head=True):
        super().__init__()
        self.layer, self.sort, self.total_length, self.with_state = layer, sort, total_length, with_state
        self.head = nn.Linear(layer.hidden_size * (2 if layer.bidirectional else 1), 3) if head else None

    def forward(self, x, lengths, *state):
        packed = pack_padded_sequence(x, lengths, batch_first=self.layer.batch_first, enforce_sorted=self.sort)
        hx = None
        if self.with_state:
            hx = (state[0], state[1]) if isinstance(self.layer, nn.LSTM) else state[0]
        out, h = self.layer(packed, hx)
        padded, out_lengths = pad_packed_sequence(out, batch_first=self.layer.batch_first,
                                                  total_length=self.total_length)
        h = h[0] if isinstance(h, tuple) else h
        y = self.head(padded) if self.head is not None else padded
        return y, h


def packed_inputs(layer, T, with_state=False, sort=False, fill=True, seed=0):
    rng = np.random.default_rng(seed)
    D = 2 if layer.bidirectional else 1

    def make(b):
        lengths = rng.integers(1, T + 1, size=b)
        if fill:
            lengths[rng.integers(b)] = T  # eager pads to the longest sequence: make it the padded length
        if sort:
            lengths = np.sort(lengths)[::-1].copy()
        shape = (b, T, layer.input_size) if layer.batch_first else (T, b, layer.input_size)
        xs = [rng.standard_normal(shape).astype(np.float32), lengths.astype(np.int64)]
        if with_state:
            xs.append(rng.standard_normal((layer.num_layers * D, b, layer.hidden_size)).astype(np.float32))
            if isinstance(layer, nn.LSTM):
                xs.append(rng.standard_normal((layer.num_layers * D, b, layer.hidden_size)).astype(np.float32))
        return xs
    return make


@pytest.mark.parametrize("kind,kwargs", [
    ("LSTM", dict(batch_first=True)),
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("GRU", dict(batch_first=True, bidirectional=True)),
    ("GRU", dict(num_layers=2)),
    ("RNN", dict(nonlinearity="relu", batch_first=True)),
    ("RNN", dict(bidirectional=True, num_layers=2)),
])
def test_packed_recurrent_layers_match_eager(tmp_path, kind, kwargs):
    nc.manual_seed(3)
    layer = getattr(nn, kind)(5, 6, **kwargs)
    model = PackedRnn(layer)
    dims = [0, 0] if layer.batch_first else [1, 0]
    session, _ = check_roundtrip(tmp_path, model, packed_inputs(layer, 7), batch_dim=dims)
    assert "pack" in session.describe() and "unpack" in session.describe()


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_packed_sorted_with_state_and_total_length(tmp_path, kind):
    nc.manual_seed(4)
    layer = getattr(nn, kind)(4, 5, batch_first=True, bidirectional=True)
    model = PackedRnn(layer, sort=True, total_length=9, with_state=True)
    dims = [0, 0, 1] + ([1] if kind == "LSTM" else [])
    # total_length: the longest sample may be shorter than the padded input
    check_roundtrip(tmp_path, model, packed_inputs(layer, 6, with_state=True, sort=True, fill=False), batch_dim=dims)


def test_packed_lengths_checked_at_run_time(tmp_path):
    nc.manual_seed(5)
    layer = nn.LSTM(3, 4, batch_first=True)
    model = PackedRnn(layer, head=False).eval()
    make = packed_inputs(layer, 5)
    nc.export.save(model, tmp_path / "m.ncm", tuple(make(2)))
    session = nc.export.load(tmp_path / "m.ncm")
    x, lengths = make(3)
    with pytest.raises(ValueError, match=r"\[pack in module .*length 6(\.0+)? of sample 1 is not an integer in "
                                         r"\[1, 5\]"):
        session(x, np.array([5, 6, 2]))
    with pytest.raises(ValueError, match=r"not an integer in \[1, 5\]"):
        session(x, np.array([5, 0, 2]))
    with pytest.raises(ValueError, match=r"\[unpack in module .*longest sequence has 4 steps but the padded batch "
                                         r"has 5.*total_length"):
        session(x, np.array([4, 3, 2]))
    sorted_model = PackedRnn(layer, sort=True, head=False).eval()
    nc.export.save(sorted_model, tmp_path / "s.ncm", (x, np.array([5, 4, 2])))
    with pytest.raises(ValueError, match="must be sorted in decreasing order"):
        nc.export.load(tmp_path / "s.ncm")(x, np.array([2, 5, 4]))


def test_packed_export_errors_name_the_problem(tmp_path):
    layer = nn.GRU(3, 4, batch_first=True)

    class ListLengths(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = layer

        def forward(self, x):
            out, _ = self.gru(pack_padded_sequence(x, [2, 1], batch_first=True))
            return pad_packed_sequence(out, batch_first=True)[0]

    x = np.zeros((2, 2, 3), np.float32)
    with pytest.raises(nc.export.ExportError, match="lengths must be a model input tensor"):
        nc.export.save(ListLengths(), tmp_path / "m.ncm", (x,), dynamic_batch=False)

    class UsesData(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = layer

        def forward(self, x, lengths):
            out, _ = self.gru(pack_padded_sequence(x, lengths, batch_first=True))
            return out.data * 2

    with pytest.raises(nc.export.ExportError, match="op 'mul' uses a PackedSequence's data"):
        nc.export.save(UsesData(), tmp_path / "m.ncm", (x, np.array([2, 1])))


class SdpaBoolMask(nn.Module):
    def forward(self, q, k, v, mask):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def bool_mask(rng, shape):
    m = rng.random(shape) < 0.7
    m[..., 0] = True  # every query keeps a key (a fully masked row is 0 in both, but keep it typical)
    return m


def test_sdpa_bool_attn_mask(tmp_path):
    rng = np.random.default_rng(6)

    def make(b):
        q = rng.standard_normal((b, 2, 5, 4)).astype(np.float32)
        k = rng.standard_normal((b, 2, 6, 4)).astype(np.float32)
        v = rng.standard_normal((b, 2, 6, 3)).astype(np.float32)
        mask = bool_mask(rng, (b, 1, 5, 6))
        mask[0, 0, 2] = False  # a query with every key masked out: its output is 0
        return [q, k, v, mask]
    session, _ = check_roundtrip(tmp_path, SdpaBoolMask(), make)
    q, k, v, mask = make(2)
    assert np.all(session(q, k, v, mask)[0, :, 2] == 0)


class MhaMasks(nn.Module):
    def __init__(self, batch_first):
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=batch_first)

    def forward(self, x, key_padding_mask, attn_mask):
        out, weights = self.mha(x, x, x, key_padding_mask=key_padding_mask, attn_mask=attn_mask)
        return out, weights


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_bool_masks(tmp_path, batch_first):
    nc.manual_seed(7)
    rng = np.random.default_rng(7)
    L = 5

    def make(b):
        x = rng.standard_normal((b, L, 8) if batch_first else (L, b, 8)).astype(np.float32)
        pad = rng.random((b, L)) < 0.3
        pad[:, 0] = False  # True: a padded key (masked out)
        attn = np.triu(np.ones((L, L), bool), 1)  # True: not allowed (the causal mask as bool)
        return [x, pad, attn]
    check_roundtrip(tmp_path, MhaMasks(batch_first), make, batch_dim=[0 if batch_first else 1, 0, None])


class EncoderWithPadding(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.decoder = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.1, batch_first=True)

    def forward(self, src, tgt, src_pad, tgt_pad):
        memory = self.encoder(src, src_key_padding_mask=src_pad)
        return self.decoder(tgt, memory, tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)


def test_transformer_key_padding_masks(tmp_path):
    nc.manual_seed(8)
    rng = np.random.default_rng(8)

    def make(b):
        src = rng.standard_normal((b, 6, 8)).astype(np.float32)
        tgt = rng.standard_normal((b, 4, 8)).astype(np.float32)
        src_pad = np.zeros((b, 6), bool)
        tgt_pad = np.zeros((b, 4), bool)
        for i in range(b):  # padding at the end of each sample, as a batch of sentences has
            src_pad[i, rng.integers(2, 7):] = True
            tgt_pad[i, rng.integers(1, 5):] = True
        return [src, tgt, src_pad, tgt_pad]
    check_roundtrip(tmp_path, EncoderWithPadding(), make)


def test_mask_computed_in_forward_is_an_error(tmp_path):
    class Computed(nn.Module):
        def forward(self, x):
            return nc.where(x > 0, x, x * 2)

    with pytest.raises(nc.export.ExportError, match=r"op '\w+' is not supported by export"):
        nc.export.save(Computed(), tmp_path / "m.ncm", (np.ones((2, 3), np.float32),))


class PaddedEncoderAndSdpa(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)

    def forward(self, x, pad, keep):
        y = self.layer(x, src_key_padding_mask=pad)
        q = y.reshape(y.shape[0], y.shape[1], 2, 4).transpose(1, 2)
        return F.scaled_dot_product_attention(q, q, q, attn_mask=keep)


@pytest.mark.parametrize("opset", [17, 23])
def test_onnx_export_of_bool_masks(opset):
    """ONNX expresses the bool masks: Where for masked_fill, and for SDPA's bool attn_mask the
    opset-23 Attention op's bool mask, or Where(mask, 0, -inf) added to the scores."""
    import io
    from test_onnx_export import require
    onnx, ort = require("onnx"), require("onnxruntime")
    nc.manual_seed(9)
    rng = np.random.default_rng(9)
    model = PaddedEncoderAndSdpa().eval()

    def make(b):
        x = rng.standard_normal((b, 5, 8)).astype(np.float32)
        pad = np.zeros((b, 5), bool)
        for i in range(b):
            pad[i, rng.integers(2, 6):] = True
        return [x, pad, bool_mask(rng, (b, 1, 5, 5))]
    names = ["x", "pad", "keep"]
    f = io.BytesIO()
    proto = nc.onnx.export(model, tuple(nc.tensor(a) for a in make(3)), f, input_names=names, output_names=["y"],
                           dynamic_axes={n: {0: "batch"} for n in names}, opset_version=opset)
    onnx.checker.check_model(proto, full_check=True)
    sess = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    for b in (1, 4):
        xs = make(b)
        close(sess.run(None, dict(zip(names, xs)))[0], eager(model, xs)[0])
