"""ONNX's fused LSTM/GRU/RNN in nc.onnx.load: PyTorch exports (gate order converted) equal PyTorch,
gradients reach the ONNX-layout weights; hand-built graphs (layout=1, GRU linear_before_reset=0,
reverse and bidirectional) equal ONNX Runtime."""
import io
import warnings

import numpy as np
import pytest

import neurocore as nc
from helpers import require_torch
from test_onnx_ops import compare, make_model, require, rng_array


def export(model, x, names=("x",), dynamic=True):
    torch = require_torch()
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), f, dynamo=False, opset_version=17, input_names=list(names),
                          dynamic_axes={"x": {0: "batch"}} if dynamic else None)
    return f.getvalue()


def simple_rnn(kind):
    """The seed's SimpleRNN (h0 created in forward, the last step into a Linear), with nn.RNN or its
    LSTM/GRU variant."""
    torch = require_torch()
    tnn = torch.nn

    class SimpleRNN(tnn.Module):
        def __init__(self, input_size=5, hidden_size=8, num_classes=3):
            super().__init__()
            self.hidden_size = hidden_size
            self.rnn = getattr(tnn, kind)(input_size, hidden_size, batch_first=True)
            self.fc = tnn.Linear(hidden_size, num_classes)

        def forward(self, x):
            h0 = torch.zeros(1, x.size(0), self.hidden_size)
            out, _ = self.rnn(x, (h0, h0) if kind == "LSTM" else h0)
            return self.fc(out[:, -1, :])

    return SimpleRNN()


ONNX_ORDER = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}  # PyTorch gate blocks in ONNX's order


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_seed_simple_rnn_equals_pytorch(kind):
    torch = require_torch()
    require("onnx")
    torch.manual_seed(0)
    model = simple_rnn(kind).eval()
    loaded = nc.onnx.load(export(model, torch.randn(2, 6, 5)))
    x = torch.randn(4, 6, 5, generator=torch.Generator().manual_seed(1))
    out_t = model(x)
    out_n = loaded(x.numpy())
    np.testing.assert_allclose(out_n.detach().numpy(), out_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    # gradients: ONNX's W/R/B hold PyTorch's weight_ih/weight_hh/biases with the gate blocks reordered
    out_t.square().sum().backward()
    out_n.square().sum().backward()
    H, gates = 8, len(ONNX_ORDER[kind])
    rnn = model.rnn
    grads = {tuple(p.shape): p.grad.numpy() for p in loaded.parameters() if p.dim() == 3 or p.dim() == 2}

    def reorder(a):
        return np.concatenate([a[g * H:(g + 1) * H] for g in ONNX_ORDER[kind]], axis=0)
    w_grad = grads[(1, gates * H, 5)][0]
    r_grad = grads[(1, gates * H, H)][0]
    b_grad = grads[(1, 2 * gates * H)][0]
    np.testing.assert_allclose(w_grad, reorder(rnn.weight_ih_l0.grad.numpy()), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(r_grad, reorder(rnn.weight_hh_l0.grad.numpy()), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(b_grad, np.concatenate([reorder(rnn.bias_ih_l0.grad.numpy()),
                                                       reorder(rnn.bias_hh_l0.grad.numpy())]), rtol=1e-4, atol=1e-6)


def test_stacked_bidirectional_layers_equal_pytorch():
    torch = require_torch()
    require("onnx")
    tnn = torch.nn

    class Stack(tnn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = tnn.LSTM(4, 6, num_layers=2, bidirectional=True)
            self.gru = tnn.GRU(12, 5, bidirectional=True)
            self.rnn = tnn.RNN(10, 3, nonlinearity="relu")

        def forward(self, x):
            y, _ = self.lstm(x)
            y, _ = self.gru(y)
            y, h = self.rnn(y)
            return y, h

    torch.manual_seed(2)
    model = Stack().eval()
    x = torch.randn(7, 3, 4)
    loaded = nc.onnx.load(export(model, x, dynamic=False))
    for got, want in zip(loaded(x.numpy()), model(x)):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_hand_built_recurrent_nodes_equal_onnxruntime(direction):
    """Time-major nodes against ONNX Runtime; the batch-major layout (layout=1, which ONNX Runtime's CPU
    kernels refuse) against the time-major result transposed."""
    onnx = require("onnx")
    h = onnx.helper
    D, H, I, T, B = (2 if direction == "bidirectional" else 1), 4, 3, 5, 2
    x = rng_array((T, B, I), 1)
    for kind, gates, extra in (("LSTM", 4, {}), ("GRU", 3, {"linear_before_reset": 0}),
                               ("GRU", 3, {"linear_before_reset": 1}), ("RNN", 1, {})):
        inits = {"W": rng_array((D, gates * H, I), 2, -0.5, 0.5), "R": rng_array((D, gates * H, H), 3, -0.5, 0.5),
                 "B": rng_array((D, 2 * gates * H), 4, -0.5, 0.5), "h0": rng_array((D, B, H), 5)}
        outputs = ["Y", "Y_h"] + (["Y_c"] if kind == "LSTM" else [])
        node = h.make_node(kind, ["x", "W", "R", "B", "", "h0"], outputs, hidden_size=H, direction=direction, **extra)
        model = make_model([node], {"x": x}, outputs, inits)
        compare(model, {"x": x}, atol=1e-5)
        time_major = nc.onnx.load(model)(x)
        batch_inits = dict(inits, h0=inits["h0"].transpose(1, 0, 2).copy())
        node = h.make_node(kind, ["x", "W", "R", "B", "", "h0"], outputs, hidden_size=H, direction=direction,
                           layout=1, **extra)
        xb = x.transpose(1, 0, 2).copy()
        batch_major = nc.onnx.load(make_model([node], {"x": xb}, outputs, batch_inits, ))(xb)
        np.testing.assert_allclose(batch_major[0].detach().numpy(),
                                   time_major[0].detach().numpy().transpose(2, 0, 1, 3), rtol=1e-6, atol=1e-7)
        for got, want in zip(batch_major[1:], time_major[1:]):
            np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy().transpose(1, 0, 2), rtol=1e-6,
                                       atol=1e-7)
