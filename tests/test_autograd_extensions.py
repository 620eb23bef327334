"""Tensor hooks, callbacks queued for the end of backward, and custom autograd Functions, vs PyTorch."""
import numpy as np
import pytest

import neurocore as nc
from helpers import gradcheck, require_torch


def test_register_hook_on_leaf_and_non_leaf_matches_torch():
    torch = require_torch()
    a = np.random.default_rng(0).normal(size=(3, 4))
    res = {}
    for lib in (torch, nc):
        x = lib.tensor(a, requires_grad=True)
        y = x * 2
        seen = []
        y.register_hook(lambda g: seen.append(g.detach().numpy().copy()) or g * 3)  # non-leaf: replace
        x.register_hook(lambda g: g + 1)  # leaf: replace before accumulation
        (y * y).sum().backward()
        res[lib.__name__] = (x.grad.numpy().copy(), seen[0])
    for got, want in zip(res["neurocore"], res["torch"]):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_hook_handle_remove_and_context():
    x = nc.tensor([1.0, 2.0], requires_grad=True)
    h = x.register_hook(lambda g: g * 10)
    (x * 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [10, 10])
    h.remove()
    x.grad = None
    (x * 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 1])
    with x.register_hook(lambda g: g * 0):
        x.grad = None
        (x * 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0])


def test_hook_errors():
    with pytest.raises(RuntimeError, match=r"\[register_hook\].*does not require grad"):
        nc.tensor([1.0]).register_hook(lambda g: g)
    x = nc.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: nc.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(RuntimeError, match=r"\[register_hook\].*shape \(2,\)"):
        (x * 1).sum().backward()
    y = nc.tensor([1.0], requires_grad=True)
    y.register_hook(lambda g: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        (y * 2).sum().backward()
    with pytest.raises(RuntimeError, match="post accumulate"):
        (y * 2).register_post_accumulate_grad_hook(lambda t: None)


def test_post_accumulate_hook_sees_the_accumulated_grad_and_callbacks_run_at_the_end():
    w = nc.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = nc.tensor([0.5], requires_grad=True)
    events = []
    w.register_post_accumulate_grad_hook(lambda p: events.append(("w", p.grad.numpy().tolist())))

    def on_b(p):
        events.append(("b", p.grad.numpy().tolist()))
        nc.autograd.queue_callback(lambda: events.append(("end", w.grad.numpy().tolist())))
    b.register_post_accumulate_grad_hook(on_b)
    loss = (w * 2).sum() + (b * 3).sum()
    loss.backward(retain_graph=True)
    loss.backward()  # the second backward accumulates: the hook sees the sum
    assert ("w", [2.0, 2.0, 2.0]) in events and ("w", [4.0, 4.0, 4.0]) in events
    ends = [e for e in events if e[0] == "end"]
    assert len(ends) == 2 and ends[-1] == ("end", [4.0, 4.0, 4.0])
    assert events.index(ends[0]) > events.index(("w", [2.0, 2.0, 2.0]))
    with pytest.raises(RuntimeError, match="queue_callback"):
        nc.autograd.queue_callback(lambda: None)


class Exp(nc.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class ScaleAdd(nc.autograd.Function):
    """Several inputs (one not a tensor), two outputs, the forward/setup_context form."""

    @staticmethod
    def forward(a, b, k):
        return a * k + b, (a * b).sum()

    @staticmethod
    def setup_context(ctx, inputs, output):
        a, b, k = inputs
        ctx.save_for_backward(a, b)
        ctx.k = k

    @staticmethod
    def backward(ctx, g1, g2):
        a, b = ctx.saved_tensors
        return g1 * ctx.k + g2 * b, g1 + g2 * a, None


def test_custom_function_values_and_gradients():
    x0 = np.random.default_rng(1).normal(size=(2, 3))
    x = nc.tensor(x0, requires_grad=True)
    y = Exp.apply(x)
    assert y.grad_fn is not None and y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp(x0), rtol=1e-12)
    gradcheck(lambda t: Exp.apply(t), [x0])
    a0, b0 = np.random.default_rng(2).normal(size=(2, 3)), np.random.default_rng(3).normal(size=(2, 3))
    gradcheck(lambda a, b: ScaleAdd.apply(a, b, 2.5), [a0, b0])
    with nc.no_grad():
        assert not Exp.apply(nc.tensor(x0, requires_grad=True)).requires_grad


def test_custom_function_errors_and_non_differentiable_outputs():
    class Wrong(nc.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, g):
            return g

    x = nc.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\[Wrong.backward\] returned 1 gradients, expected 2"):
        Wrong.apply(x, x).sum().backward()

    class BadShape(nc.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g.sum()

    with pytest.raises(RuntimeError, match=r"\[BadShape.backward\] gradient 0 has shape \(\)"):
        BadShape.apply(x).sum().backward()

    class ArgMaxAndValue(nc.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            i = x.argmax()
            ctx.mark_non_differentiable(i)
            ctx.save_for_backward(x)
            return x.max(), i

        @staticmethod
        def backward(ctx, g, g_index):
            (x,) = ctx.saved_tensors
            return (x == x.max()).to(x.dtype) * g

    v, i = ArgMaxAndValue.apply(nc.tensor([1.0, 5.0, 2.0], requires_grad=True))
    assert not i.requires_grad and v.requires_grad


def test_custom_function_returning_its_input_keeps_the_input_a_leaf():
    class Identity(nc.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = nc.tensor([1.0, 2.0], requires_grad=True)
    y = Identity.apply(x)
    assert x.is_leaf and not y.is_leaf
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
