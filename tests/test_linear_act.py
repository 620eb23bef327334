"""The fused feed-forward op act(x W^T + b) (`_core._linear_act`, used by the Transformer layers'
feed-forward step): the same values and gradients as linear followed by the activation (bit for
bit), PyTorch parity, float64 finite differences, double backward, and bad input."""
import numpy as np
import pytest

import neurocore as nc
from neurocore import _core, nn
from neurocore.nn import _fusion
from neurocore.nn import functional as F
from helpers import require_torch, rand, assert_close, gradcheck

UNFUSED = {"relu": F.relu, "gelu": F.gelu}


def run(fn, arrays, g):
    ts = [None if a is None else nc.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward(nc.tensor(g))
    return [out.detach().numpy()] + [t.grad.numpy() for t in ts if t is not None]


@pytest.mark.parametrize("act", ["relu", "gelu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape,bias", [((37, 24), True), ((3, 5, 24), True), ((2, 24), False), ((0, 24), True)])
def test_equals_linear_then_activation(act, dtype, x_shape, bias):
    arrays = [rand(x_shape, dtype, seed=1, low=-3, high=3), rand((40, 24), dtype, seed=2),
              rand((40,), dtype, seed=3) if bias else None]
    g = rand(x_shape[:-1] + (40,), dtype, seed=4)
    fused = run(lambda x, w, b=None: _core._linear_act(x, w, b, act), arrays, g)
    plain = run(lambda x, w, b=None: UNFUSED[act](F.linear(x, w, b)), arrays, g)
    for name, a, b in zip(("output", "input", "weight", "bias"), fused, plain):
        assert np.array_equal(a, b), name


@pytest.mark.torch
@pytest.mark.parametrize("act", ["relu", "gelu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vs_torch(act, dtype):
    torch = require_torch()
    arrays = [rand((2, 33, 48), dtype, seed=1, low=-2, high=2), rand((70, 48), dtype, seed=2), rand((70,), dtype, seed=3)]
    g = rand((2, 33, 70), dtype, seed=4)
    got = run(lambda x, w, b: _core._linear_act(x, w, b, act), arrays, g)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = getattr(torch.nn.functional, act)(torch.nn.functional.linear(*ts))
    out.backward(torch.tensor(g))
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for name, n, t in zip(("output", "input", "weight", "bias"), got, [out] + [t.grad for t in ts]):
        assert_close(n, t, what=name, **tol)


@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_gradcheck(act):
    gradcheck(lambda x, w, b: _core._linear_act(x, w, b, act),
              [rand((4, 5), seed=1, low=-2, high=2), rand((6, 5), seed=2), rand((6,), seed=3)])


@pytest.mark.torch
@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_double_backward_vs_torch(act):
    torch = require_torch()
    arrays = [rand((5, 6), seed=1, low=-2, high=2), rand((7, 6), seed=2), rand((7,), seed=3)]
    res = []
    for lib, fn in ((torch, lambda x, w, b: getattr(torch.nn.functional, act)(torch.nn.functional.linear(x, w, b))),
                    (nc, lambda x, w, b: _core._linear_act(x, w, b, act))):
        ts = [lib.tensor(a, requires_grad=True) for a in arrays]
        out = fn(*ts)
        first = lib.autograd.grad((out * out).sum(), ts, create_graph=True)
        second = lib.autograd.grad(sum((g * g).sum() for g in first), ts)
        res.append([g.detach().numpy() for g in list(first) + list(second)])
    for n, t in zip(*res):
        np.testing.assert_allclose(n, t, rtol=1e-10, atol=1e-12)


def test_relu_keeps_nan():
    x = nc.tensor(np.array([[np.nan, 1.0], [-1.0, 2.0]], dtype=np.float32))
    w = nc.tensor(np.eye(2, dtype=np.float32))
    y = _core._linear_act(x, w, None, "relu").numpy()
    assert np.isnan(y[0, 0]) and y[1, 0] == 0 and y[1, 1] == 2


def test_transformer_layer_uses_it_and_hooks_still_run():
    """The layer's result is the same with the fused step as with a hook-carrying linear1 (which
    takes the unfused path so that the hook runs)."""
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation="gelu")
    x = nc.tensor(rand((5, 3, 16), np.float32))
    fused = layer(x).detach().numpy()
    seen = []
    layer.linear1.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    hooked = layer(x).detach().numpy()
    assert seen == [(5, 3, 32)]
    assert np.array_equal(fused, hooked)


def test_bad_input():
    x, w = nc.zeros(3, 4), nc.zeros(5, 4)
    with pytest.raises(ValueError, match=r"\[linear_act\] activation must be 'relu' or 'gelu'"):
        _core._linear_act(x, w, None, "tanh")
    with pytest.raises(ValueError, match=r"\[linear\] input has 3 features, weight expects 4"):
        _core._linear_act(nc.zeros(2, 3), w, None, "relu")
    with pytest.raises(ValueError, match=r"\[linear\] bias shape \(4,\) doesn't match out_features 5"):
        _core._linear_act(x, w, nc.zeros(4), "relu")


@pytest.mark.parametrize("dtype", [nc.float32, nc.float64])
@pytest.mark.parametrize("batch", [1, 7, 300])
def test_sequential_inference_fuses_linear_relu_exactly(dtype, batch):
    # Under no_grad, Sequential runs Linear+ReLU as one _linear_act call (ReLU in the GEMM's
    # store): the same bits as the modules one by one, with and without bias, 1-D and 3-D input.
    nc.manual_seed(0)
    model = nn.Sequential(nn.Linear(50, 33), nn.ReLU(), nn.Dropout(0.2), nn.Linear(33, 17, bias=False), nn.ReLU(),
                          nn.Linear(17, 5)).to(dtype)
    model.eval()
    for x in (nc.randn(batch, 50, dtype=dtype), nc.randn(2, batch, 50, dtype=dtype), nc.randn(50, dtype=dtype)):
        with nc.no_grad():
            fused = model(x)
            stepwise = x
            for m in model:
                stepwise = m(stepwise)
        assert np.array_equal(fused.numpy(), stepwise.numpy())
        assert np.array_equal(model(x).detach().numpy(), stepwise.numpy())


def test_sequential_linear_relu_fusion_only_when_unobservable(monkeypatch):
    # The fused call is taken under no_grad for plain modules only: not with autograd on, not
    # when either module has a hook (the hook must see the intermediate output).
    calls = []
    real = _core._linear_act
    monkeypatch.setattr(_core, "_linear_act", lambda *a: calls.append(a[-1]) or real(*a))
    real_plan = _core._InferencePlan

    def plan(steps):  # a compiled plan (nn/_fusion.py) runs its fused steps in C++: count them there
        run, fused = real_plan(steps), sum(step[0] == _fusion._LINEAR_RELU for step in steps)
        return lambda x: calls.extend(["relu"] * fused) or run(x)
    monkeypatch.setattr(_core, "_InferencePlan", plan)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU())
    x = nc.randn(3, 6)
    with nc.no_grad():
        model(x)
    assert calls == ["relu"]
    model(x)  # autograd on: Linear then ReLU
    assert calls == ["relu"]
    seen = []
    model[0].register_forward_hook(lambda m, i, o: seen.append(o.min().item()))
    with nc.no_grad():
        y = model(x)
    assert calls == ["relu"] and len(seen) == 1 and (y.numpy() >= 0).all()
    assert seen[0] == F.linear(x, model[0].weight, model[0].bias).min().item()
    pre = nn.Sequential(nn.Linear(6, 4), nn.ReLU())
    pre[1].register_forward_pre_hook(lambda m, i: seen.append("pre"))
    with nc.no_grad():
        pre(x)
    assert calls == ["relu"] and seen[-1] == "pre"
