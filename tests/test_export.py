"""nc.export: traced models written to one safetensors file and run by the C++ runtime give the
eager model's outputs (float32, within 1e-5 relative to the output's scale) at batch sizes other
than the example's; untraceable models are rejected naming the module."""
import json
import struct

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from neurocore.nn import functional as F


def _close(got, want, rtol=1e-5):
    want = np.asarray(want)
    scale = max(float(np.max(np.abs(want))), 1e-30) if want.size else 1.0
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def _eager(model, *xs):
    with nc.no_grad():
        out = model(*[nc.tensor(np.array(x)) for x in xs])
    return out.numpy() if isinstance(out, nc.Tensor) else tuple(o.numpy() for o in out)


def _roundtrip(tmp_path, model, shapes, batches=(1, 5, 17), seed=0, dynamic_batch=True):
    """Exports at the first shape's batch 3 and compares with eager at other batch sizes."""
    rng = np.random.default_rng(seed)
    model.eval()
    example = tuple(rng.standard_normal((3,) + s).astype(np.float32) for s in shapes)
    path = tmp_path / "m.ncm"
    nc.export.save(model, path, example, dynamic_batch=dynamic_batch)
    session = nc.export.load(path)
    for b in (batches if dynamic_batch else (3,)):
        xs = [rng.standard_normal((b,) + s).astype(np.float32) for s in shapes]
        got, want = session(*xs), _eager(model, *xs)
        if isinstance(want, tuple):
            for g, w in zip(got, want):
                _close(g, w)
        else:
            _close(got, want)
    return session, path


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 12)
        self.fc2 = nn.Linear(12, 12)
        self.norm = nn.LayerNorm(12)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        h = self.fc2(h) * 0.5 + x
        return self.norm(h) - 1.0


class ChannelAffine(nn.Module):
    """Broadcasting between layers: a (C, 1) scale over (N, C, L) and a (L,) shift."""

    def __init__(self, c, length):
        super().__init__()
        self.scale = nn.Parameter(nc.randn(c, 1))
        self.shift = nn.Parameter(nc.randn(length))

    def forward(self, x):
        return (x * self.scale + self.shift) / 2.0 - (1.0 / (x * x + 1.0))


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 4)
        self.b = nn.Linear(6, 3)

    def forward(self, x, y):
        z = x + y
        return F.softmax(self.a(z), dim=1), nc.cat([self.b(z), self.a(y)], dim=1).tanh()


class TokenMixer(nn.Module):
    """Shape ops between layers: view with the batch size, permute, matmul, mean."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.mix = nn.Parameter(nc.randn(5, 5) * 0.3)

    def forward(self, x):  # x (N, 40)
        t = x.float().view(x.shape[0], 5, 8)
        t = self.proj(t)
        t = self.mix @ t
        t = t.transpose(1, 2).contiguous()
        return t.mean(dim=2) + t.sum(dim=(1, 2), keepdim=True).squeeze(2) / 40.0


def test_mlp_with_dropout_and_activations(tmp_path):
    nc.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 32), nn.GELU(),
                          nn.Linear(32, 16), nn.SiLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 16),
                          nn.LeakyReLU(0.1), nn.Linear(16, 16), nn.ELU(), nn.Linear(16, 16), nn.Sigmoid(),
                          nn.Linear(16, 16), nn.Softplus(), nn.Linear(16, 16), nn.Hardtanh(-0.5, 0.5),
                          nn.Linear(16, 16), nn.Mish(), nn.Linear(16, 16), nn.SELU(), nn.Linear(16, 16),
                          nn.GELU(approximate="tanh"), nn.Linear(16, 10), nn.LogSoftmax(dim=1))
    session, _ = _roundtrip(tmp_path, model, [(20,)])
    lines = session.describe().splitlines()
    assert lines[0].startswith("linear+relu")  # ReLU fused into the GEMM store, dropout gone
    assert not any("dropout" in line for line in lines)


def test_cnn_with_batchnorm_folded(tmp_path):
    nc.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, stride=2, padding="valid", groups=2, bias=False), nn.BatchNorm2d(16),
                          nn.ReLU(inplace=True), nn.AvgPool2d(2, ceil_mode=True), nn.Conv2d(16, 8, 1, dilation=1),
                          nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(), nn.Linear(32, 10), nn.BatchNorm1d(10),
                          nn.Softmax(dim=-1))
    # Non-trivial running statistics, as after training.
    rng = np.random.default_rng(3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) or isinstance(m, nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(nc.tensor(rng.standard_normal(n).astype(np.float32)))
            m.running_var.copy_(nc.tensor(rng.uniform(0.5, 2.0, n).astype(np.float32)))
            m.weight.data = nc.tensor(rng.uniform(0.5, 1.5, n).astype(np.float32))
            m.bias.data = nc.tensor(rng.standard_normal(n).astype(np.float32))
    session, _ = _roundtrip(tmp_path, model, [(3, 17, 19)])
    ops = [line.split()[0] for line in session.describe().splitlines()]
    assert "batch_norm" not in ops and ops.count("conv2d+relu") == 2 and "linear" in ops


def test_conv1d_transposed_and_pools(tmp_path):
    nc.manual_seed(2)
    model = nn.Sequential(nn.Conv1d(4, 6, 5, padding=2), ChannelAffine(6, 23), nn.ReLU(),
                          nn.MaxPool1d(3, stride=2, padding=1),
                          nn.AvgPool1d(2), nn.ConvTranspose1d(6, 4, 4, stride=2, padding=1), nn.BatchNorm1d(4),
                          nn.AdaptiveAvgPool1d(5), nn.Flatten(), nn.Linear(20, 3))
    _roundtrip(tmp_path, model, [(4, 23)])


def test_conv_transpose2d_and_padding_same(tmp_path):
    nc.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(2, 4, (3, 2), padding="same", dilation=(2, 1)), nn.Tanh(),
                          nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1, groups=1),
                          nn.ReLU(), nn.ConvTranspose2d(3, 6, 2, stride=1, groups=3, bias=False),
                          nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True), nn.Softmax(dim=1),
                          nn.LogSoftmax(dim=2))
    _roundtrip(tmp_path, model, [(2, 7, 6)])


def test_residual_layernorm_and_scalars(tmp_path):
    nc.manual_seed(4)
    _roundtrip(tmp_path, Residual(), [(12,)])


def test_two_inputs_two_outputs(tmp_path):
    nc.manual_seed(5)
    session, _ = _roundtrip(tmp_path, TwoHeads(), [(6,), (6,)])
    assert session.input_names == ["input0", "input1"] and session.output_names == ["output0", "output1"]


def test_shape_ops_follow_the_batch(tmp_path):
    nc.manual_seed(6)
    _roundtrip(tmp_path, TokenMixer(), [(40,)])


def test_fixed_batch_rejects_other_shapes(tmp_path):
    nc.manual_seed(7)
    model = nn.Sequential(nn.Linear(4, 2))
    session, _ = _roundtrip(tmp_path, model, [(4,)], dynamic_batch=False)
    with pytest.raises(ValueError, match=r"input 'input0' has shape \(2, 4\), the model expects \(3, 4\)"):
        session(np.zeros((2, 4), np.float32))
    dyn = tmp_path / "d.ncm"
    nc.export.save(model, dyn, (np.zeros((3, 4), np.float32),))
    with pytest.raises(ValueError, match=r"has shape \(2, 5\), the model expects \(-1, 4\)"):
        nc.export.load(dyn)(np.zeros((2, 5), np.float32))


def test_accepts_tensors_and_read_only_arrays(tmp_path):
    nc.manual_seed(8)
    model = nn.Sequential(nn.Linear(5, 3))
    path = tmp_path / "m.ncm"
    nc.export.save(model, path, (nc.randn(2, 5),))
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    x.setflags(write=False)
    session = nc.export.load(path)
    _close(session(x), _eager(model, x))
    _close(session(nc.tensor(x.copy())), _eager(model, x))
    _close(session(x.astype(np.float64)), _eager(model, x))


def test_file_is_plain_safetensors(tmp_path):
    nc.manual_seed(9)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    path = tmp_path / "m.ncm"
    nc.export.save(model, path, (np.ones((1, 1, 6, 6), np.float32),))
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__")
    assert meta["neurocore.format"] == "neurocore-model" and meta["neurocore.format_version"] == "1"
    assert json.loads(meta["neurocore.inputs"]) == [{"name": "input0", "shape": [-1, 1, 6, 6], "dtype": "float32"}]
    assert json.loads(meta["neurocore.outputs"])[0]["shape"] == [-1, 3]
    graph = json.loads(meta["neurocore.graph"])
    assert [node["op"] for node in graph["nodes"]] == ["conv2d", "reshape", "linear"]
    data = raw[8 + n:]
    state = model.state_dict()
    assert sorted(header) == sorted(state)
    for name, entry in header.items():
        b, e = entry["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype="<f4").reshape(entry["shape"])
        np.testing.assert_array_equal(arr, state[name].numpy())
    try:
        from safetensors.numpy import load_file
    except ImportError:  # the package is optional; the parse above checks the same layout
        return
    loaded = load_file(str(path))
    for name in state:
        np.testing.assert_array_equal(loaded[name], state[name].numpy())


def test_save_is_atomic_and_keeps_old_file_on_error(tmp_path):
    path = tmp_path / "m.ncm"
    path.write_bytes(b"old")

    class Bad(nn.Module):
        def forward(self, x):
            return x.exp()

    with pytest.raises(nc.export.ExportError):
        nc.export.save(Bad(), path, (np.ones((2, 2), np.float32),))
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.ncm"]


# --- untraceable models ----------------------------------------------------------------------

class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        h = self.fc(x)
        if h.sum() > 0:
            return h
        return -h


class ItemUser(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) * float(x[0, 0])


class NumpyUser(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return nc.tensor(self.fc(x).numpy() * 2)


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4))
        self.inner = nn.Sequential(Exp())

    def forward(self, x):
        return self.inner(self.body(x))


class Exp(nn.Module):
    def forward(self, x):
        return nc.exp(x)


class ConstantInForward(nn.Module):
    def forward(self, x):
        return x + nc.tensor(np.arange(4, dtype=np.float32))  # data made in forward (zeros/ones/full are fine)


class InPlaceAlias(nn.Module):
    """y aliases h; h is changed in place after y was taken: eager sees the change."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        # on values without autograd history (the library itself refuses a stale view of a tensor
        # that requires grad), so that only the tracer's check stands between this and a wrong graph
        h = x * 2 - 1
        y = h.view(-1)
        h.relu_()
        return self.fc(y.view(-1, 4) + h)


class BatchDependent(nn.Module):
    def forward(self, x):
        return x * 2 if x.shape[0] % 2 else x + 1


@pytest.mark.parametrize("model,match", [
    (DataDependent(), r"op '__gt__' is not supported by export .*module 'DataDependent'"),
    (ItemUser(), r"not supported by export|reads tensor data"),
    (NumpyUser(), r"'numpy' reads tensor data into Python"),
    (Unsupported(), r"op 'exp' is not supported by export .*in module 'inner.0'"),
    (ConstantInForward(), r"neither an input, a parameter or buffer"),
    (InPlaceAlias(), r"overwritten by an in-place op"),
])
def test_untraceable_models_raise_naming_the_module(tmp_path, model, match):
    with pytest.raises(nc.export.ExportError, match=match):
        nc.export.save(model, tmp_path / "m.ncm", (np.ones((2, 4), np.float32),))


def test_batch_dependent_shape_is_rejected_with_dynamic_batch(tmp_path):
    with pytest.raises(nc.export.ExportError, match="records different graphs at batch sizes 2 and 3"):
        nc.export.save(BatchDependent(), tmp_path / "m.ncm", (np.ones((2, 4), np.float32),))
    nc.export.save(BatchDependent(), tmp_path / "m.ncm", (np.ones((2, 4), np.float32),), dynamic_batch=False)


def test_tracing_leaves_the_library_unpatched(tmp_path):
    before = (nc._core.add, nc.Tensor.__add__, nc.exp, nc.Tensor.item, nn.Module.__call__)
    with pytest.raises(nc.export.ExportError):
        nc.export.save(Unsupported(), tmp_path / "m.ncm", (np.ones((2, 4), np.float32),))
    nc.export.save(Residual(), tmp_path / "m.ncm", (np.ones((2, 12), np.float32),))
    assert before == (nc._core.add, nc.Tensor.__add__, nc.exp, nc.Tensor.item, nn.Module.__call__)
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    assert model.training
    nc.export.save(model, tmp_path / "m.ncm", (np.ones((2, 3), np.float32),))
    assert model.training and model[1].training
