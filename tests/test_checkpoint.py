"""Activation checkpointing (neurocore.utils.checkpoint): the same outputs and gradients as the plain
run, dropout masks replayed, parameters of a module trained with use_reentrant=False when no input
needs a gradient, checkpoint_sequential, nothing kept between forward and backward, errors."""
import warnings

import numpy as np
import pytest

import neurocore as nc
import neurocore.nn as nn
from neurocore.utils.checkpoint import checkpoint, checkpoint_sequential


def _net():
    nc.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 16), nn.ReLU(),
                         nn.Linear(16, 3))


def _grads(net, x):
    return [p.grad.numpy().copy() for p in net.parameters()] + [x.grad.numpy().copy()]


def _run(use_ckpt, use_reentrant, segments=None):
    net = _net()
    x = nc.tensor(np.random.default_rng(1).standard_normal((5, 6)).astype(np.float32), requires_grad=True)
    nc.manual_seed(7)  # the dropout draw
    if not use_ckpt:
        y = net(x)
    elif segments:
        y = checkpoint_sequential(net, segments, x, use_reentrant=use_reentrant)
    else:
        y = net[3:](checkpoint(lambda t: net[:3](t), x, use_reentrant=use_reentrant))
    (y * y).sum().backward()
    return y.detach().numpy(), _grads(net, x)


@pytest.mark.parametrize("use_reentrant", [True, False])
@pytest.mark.parametrize("segments", [None, 1, 2, 3])
def test_same_outputs_and_gradients_as_without(use_reentrant, segments):
    y0, g0 = _run(False, use_reentrant)
    y1, g1 = _run(True, use_reentrant, segments)
    np.testing.assert_array_equal(y1, y0)
    for a, b in zip(g1, g0):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_module_parameters_without_input_grad():
    lin = nn.Linear(4, 2)
    x = nc.randn(3, 4)
    checkpoint(lin, x, use_reentrant=False).sum().backward()
    np.testing.assert_allclose(lin.weight.grad.numpy(), np.tile(x.numpy().sum(0), (2, 1)), rtol=1e-6)
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad"):
        out = checkpoint(lin, x, use_reentrant=True)
    assert not out.requires_grad


def test_forward_keeps_nothing_and_backward_runs_again():
    calls = []

    def f(t, scale=1.0):
        calls.append(nc.is_grad_enabled())
        return (t.exp() * scale).sin()

    x = nc.randn(4, requires_grad=True)
    y = checkpoint(f, x, scale=2.0, use_reentrant=False)
    assert calls == [False]  # the first run records no history
    y.sum().backward()
    assert calls == [False, True]
    ref = x.detach().requires_grad_(True)
    f(ref, 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), ref.grad.numpy(), rtol=1e-6)
    with nc.no_grad():  # nothing to save memory for: runs once, plainly
        checkpoint(f, x, use_reentrant=False)
    assert calls[-1] is False and len(calls) == 4


def test_errors():
    with pytest.raises(TypeError, match=r"\[checkpoint\].*Tensor.*int"):
        checkpoint(lambda t: 3, nc.randn(2, requires_grad=True), use_reentrant=False)
    with pytest.raises(ValueError, match=r"\[checkpoint_sequential\].*segments"):
        checkpoint_sequential(_net(), 9, nc.randn(2, 6))
