"""neurocore -> nc.onnx.export -> ONNX Runtime equals neurocore (float32, 1e-5 relative), also at batch
sizes other than the example's when dynamic_axes says so; the graph passes onnx.checker with
full_check; a loaded model is written back with its trained weights; bad calls raise clearly."""
import io
import os

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn


def require(name):
    try:
        return __import__(name)
    except ImportError:
        if os.environ.get("NEUROCORE_REQUIRE_TORCH") == "1":
            pytest.fail(f"{name} is required (NEUROCORE_REQUIRE_TORCH=1) but not installed")
        pytest.skip(f"{name} not installed")


def randomise_norms(model):
    """Non-trivial normalisation weights and running statistics, so the export must carry them."""
    rng = np.random.default_rng(0)
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.dtype == nc.float32 and t.dim() == 1 and ("running" in name or isinstance(
                model.get_submodule(name.rsplit(".", 1)[0]), (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm))):
            low = 0.5 if name.endswith(("running_var", "weight")) else -0.5
            t.data.copy_(nc.tensor(rng.uniform(low, low + 1.0, tuple(t.shape)).astype(np.float32)))
    return model


class SimpleCNN(nn.Module):  # the seed guide's CNN, written with neurocore.nn
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(),
                                        nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class Mixed(nn.Module):
    """Ops beyond Sequential: residual add, concatenation, permute, mean, scalar arithmetic, matmul."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 6, 3, padding=1)
        self.ln = nn.LayerNorm(6)
        self.proj = nn.Linear(6, 6)

    def forward(self, x):  # x: (N, 4, L)
        h = nn.functional.silu(self.conv(x)).permute(0, 2, 1)   # (N, L, 6)
        h = self.ln(h) + self.proj(h) * 0.5                        # Linear on 3-D input
        scores = nc.softmax(h.matmul(h.transpose(1, 2)) / 2.0, dim=-1)
        mixed = scores.matmul(h)
        return nc.cat([mixed.mean(dim=1), (1.0 - h).sum(dim=1)], dim=1)


def models():
    return {
        "SimpleCNN": (SimpleCNN, (3, 32, 32)),
        "KerasCNN": (lambda: nn.Sequential(
            nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding="same"),
            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 3 * 3, 32), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(32, 10), nn.Softmax(dim=1)), (1, 14, 14)),
        "MLP": (lambda: nn.Sequential(
            nn.Linear(64, 128), nn.BatchNorm1d(128), nn.GELU(), nn.Dropout(0.2), nn.Linear(128, 64), nn.LayerNorm(64),
            nn.Tanh(), nn.Linear(64, 32), nn.ELU(0.5), nn.Linear(32, 16), nn.LeakyReLU(0.1), nn.Linear(16, 10),
            nn.LogSoftmax(dim=-1)), (64,)),
        "Activations": (lambda: nn.Sequential(
            nn.Linear(10, 12), nn.SELU(), nn.Linear(12, 12), nn.Softplus(), nn.Linear(12, 12), nn.Sigmoid(),
            nn.Linear(12, 12), nn.Hardtanh(-0.5, 0.5), nn.Linear(12, 12), nn.Mish(), nn.Linear(12, 12),
            nn.GELU(approximate="tanh"), nn.Linear(12, 12), nn.ReLU6(), nn.Linear(12, 4)), (10,)),
        "ConvPools": (lambda: nn.Sequential(
            nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ConvTranspose2d(4, 3, 3, stride=2,
                                                                                       padding=1, output_padding=1),
            nn.AvgPool2d(3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=1, padding=1, dilation=1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 5)), (2, 12, 12)),
        "Mixed": (Mixed, (4, 9)),
        "NoAffine": (lambda: nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4, affine=False), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.LayerNorm(16, elementwise_affine=False), nn.Softplus(beta=2.0), nn.Linear(16, 3)), (2, 6, 6)),
    }


def run_ort(proto, feeds):
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sess = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


@pytest.mark.parametrize("name", list(models()))
@pytest.mark.parametrize("opset", [17, 21])
def test_export_runs_in_onnxruntime(name, opset):
    onnx = require("onnx")
    make, shape = models()[name]
    nc.manual_seed(0)
    model = randomise_norms(make())
    x = nc.randn(3, *shape)
    proto = nc.onnx.export(model, x, None, input_names=["x"], output_names=["y"],
                           dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=opset)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == opset
    assert model.training  # export traces in eval mode and restores the mode
    model.eval()
    initializers = {i.name for i in proto.graph.initializer}
    assert {k for k, _ in model.named_parameters()} <= initializers
    for batch in (3, 1, 7):
        xb = nc.randn(batch, *shape)
        with nc.no_grad():
            expected = model(xb).numpy()
        got = run_ort(proto, {"x": xb.numpy()})[0]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(expected).max()))
    # and back: nc.onnx.load of the export equals the model
    back = nc.onnx.load(proto)
    np.testing.assert_allclose(back(x).detach().numpy(), model(x).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_static_export_to_path_and_file(tmp_path):
    onnx = require("onnx")
    nc.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 3), nn.ReLU())
    x = nc.randn(2, 5)
    nc.onnx.export(model, (x,), tmp_path / "m.onnx")
    proto = onnx.load(tmp_path / "m.onnx")
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [2, 5]
    assert proto.graph.input[0].name == "input" and proto.graph.output[0].name == "output"
    buf = io.BytesIO()
    nc.onnx.export(model, x, buf, opset_version=21)
    np.testing.assert_allclose(run_ort(onnx.load_from_string(buf.getvalue()), {"input": x.numpy()})[0],
                               model(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_loaded_model_exports_back_with_trained_weights(tmp_path):
    """nc.onnx.load -> fine-tune -> nc.onnx.export: ONNX Runtime sees the new weights."""
    require("onnx")
    nc.manual_seed(2)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2))
    x = nc.randn(4, 6)
    loaded = nc.onnx.load(nc.onnx.export(model, x, None, input_names=["x"], dynamic_axes={"x": [0]}))
    opt = nc.optim.Adam(loaded.parameters(), lr=0.05)
    loss = loaded(x).square().mean()
    loss.backward()
    opt.step()
    proto = nc.onnx.export(loaded, None, tmp_path / "tuned.onnx")
    xb = nc.randn(9, 6)
    got = run_ort(proto, {"x": xb.numpy()})[0]
    np.testing.assert_allclose(got, loaded(xb).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(got - model(xb).detach().numpy()).max() > 1e-3


def test_export_errors():
    require("onnx")
    model = nn.Sequential(nn.Linear(4, 2))
    x = nc.randn(2, 4)
    for opset in (16, 24):
        with pytest.raises(ValueError, match=f"opset_version {opset} is not supported"):
            nc.onnx.export(model, x, None, opset_version=opset)
    with pytest.raises(ValueError, match="dynamic_axes names 'z'"):
        nc.onnx.export(model, x, None, dynamic_axes={"z": [0]})
    with pytest.raises(TypeError, match="args must be"):
        nc.onnx.export(model, "x", None)

    class Untraceable(nn.Module):
        def forward(self, x):
            return x * float(x.sum().item())  # data-dependent: not a graph
    with pytest.raises(nc.onnx.OnnxError, match=r"\[onnx.export\]"):
        nc.onnx.export(Untraceable(), x, None)

    class BatchDependent(nn.Module):
        def forward(self, x):
            return x.reshape(x.shape[0] // 2, 2, x.shape[1] * 2 // 2).sum(dim=1)  # fine for even batches only
    with pytest.raises(nc.onnx.OnnxError):
        nc.onnx.export(BatchDependent(), x, None, input_names=["x"], dynamic_axes={"x": [0, 1]})


def test_dynamic_batch_and_length():
    """Two dynamic axes (batch and sequence length) through Conv1d (traced as unsqueeze/conv2d/squeeze),
    permutes, a Linear on 3-D input, attention-style matmuls and reductions."""
    onnx = require("onnx")
    nc.manual_seed(3)
    model = Mixed()
    proto = nc.onnx.export(model, nc.randn(2, 4, 9), None, input_names=["seq"],
                           dynamic_axes={"seq": {0: "batch", 2: "length"}}, opset_version=18)
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 4, "length"]
    assert [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim][1] == 12
    onnx.checker.check_model(proto, full_check=True)
    for shape in ((2, 4, 9), (5, 4, 3), (1, 4, 17)):
        x = nc.randn(*shape)
        np.testing.assert_allclose(run_ort(proto, {"seq": x.numpy()})[0], model(x).detach().numpy(), rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.parametrize("size", [5, 6, 7, 8])
def test_ceil_mode_pooling(size):
    """PyTorch's ceil mode drops a last window that would start in the padding, ONNX's keeps it: the
    export reproduces PyTorch's windows (or, for averages that count padding, refuses clearly)."""
    require("onnx")
    x = nc.randn(1, 2, size, size + 1)
    for k, s, p in ((2, 2, 0), (3, 2, 1), (3, 3, 1), (2, 3, 1), (4, 3, 2)):
        for layer in (nn.MaxPool2d(k, s, p, ceil_mode=True), nn.AvgPool2d(k, s, p, ceil_mode=True),
                      nn.AvgPool2d(k, s, p, ceil_mode=True, count_include_pad=False)):
            expected = layer(x).numpy()
            try:
                proto = nc.onnx.export(layer, x, None, opset_version=19)
            except nc.onnx.OnnxError as e:
                assert isinstance(layer, nn.AvgPool2d) and layer.count_include_pad, str(e)
                assert "ceil_mode and count_include_pad" in str(e)
                continue
            got = run_ort(proto, {"input": x.numpy()})[0]
            assert got.shape == expected.shape, (layer, got.shape, expected.shape)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=repr(layer))


def test_several_outputs_named():
    """Outputs that are the same value twice, or read by later ops, keep their names."""
    require("onnx")

    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            h = nc.relu(self.fc(x))
            return h, h * 2.0, h

    nc.manual_seed(4)
    model = Heads()
    x = nc.randn(2, 4)
    proto = nc.onnx.export(model, x, None, input_names=["x"], output_names=["a", "b", "c"])
    assert [o.name for o in proto.graph.output] == ["a", "b", "c"]
    got = run_ort(proto, {"x": x.numpy()})
    for g, e in zip(got, model(x)):
        np.testing.assert_allclose(g, e.detach().numpy(), rtol=1e-5, atol=1e-6)
