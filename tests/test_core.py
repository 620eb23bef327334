"""Core tensor, autograd, arithmetic, matmul/linear, sum/mean and view ops."""
import numpy as np
import pytest

import neurocore as nc
from helpers import check_op, gradcheck, rand


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("shapes", [[(3, 4), (3, 4)], [(3, 4), (4,)], [(2, 1, 4), (3, 1)], [(5,), ()]])
def test_arith_parity(op, shapes, dtype):
    arrays = [rand(s, seed=i) + (2.0 if op == "div" and i == 1 else 0.0) for i, s in enumerate(shapes)]
    check_op(lambda t, a, b: getattr(t, op)(a, b), lambda n, a, b: getattr(n, op)(a, b), arrays, dtype=dtype)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_arith_gradcheck(op):
    gradcheck(lambda a, b: getattr(nc, op)(a, b), [rand((2, 3)), rand((3,), seed=2) + 2.0])


@pytest.mark.parametrize("shapes", [[(3, 4), (4, 5)], [(4,), (4, 2)], [(3, 4), (4,)], [(4,), (4,)],
                                   [(2, 3, 4), (4, 5)], [(2, 1, 3, 4), (5, 4, 2)], [(7, 1), (1, 9)]])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_parity(shapes, dtype):
    arrays = [rand(s, seed=i) for i, s in enumerate(shapes)]
    check_op(lambda t, a, b: t.matmul(a, b), lambda n, a, b: a @ b, arrays, dtype=dtype, rtol=1e-4 if dtype == np.float32 else None)


def test_matmul_gradcheck():
    gradcheck(lambda a, b: nc.matmul(a, b), [rand((2, 3, 4)), rand((4, 2), seed=3)])
    gradcheck(lambda a, b: nc.matmul(a, b), [rand((4,)), rand((2, 4, 3), seed=3)])


@pytest.mark.parametrize("bias", [True, False])
def test_linear_parity_and_gradcheck(bias):
    arrays = [rand((5, 3, 4)), rand((6, 4), seed=1)] + ([rand((6,), seed=2)] if bias else [])
    check_op(lambda t, *a: t.nn.functional.linear(*a), lambda n, *a: n.linear(*a), arrays, rtol=1e-4)
    gradcheck(lambda *a: nc.linear(*a), arrays)


@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, True)])
@pytest.mark.parametrize("fn", ["sum", "mean"])
def test_sum_mean(fn, dim, keepdim):
    x = rand((3, 4, 5))
    check_op(lambda t, a: getattr(a, fn)(dim=dim, keepdim=keepdim) if dim is not None else getattr(a, fn)(),
             lambda n, a: getattr(a, fn)(dim=dim, keepdim=keepdim), [x], dtype=np.float64)
    gradcheck(lambda a: getattr(a, fn)(dim=dim, keepdim=keepdim), [rand((2, 3, 2))])


def test_sum_thread_independent():
    x = nc.tensor(rand((1 << 20,), np.float32))
    nc.set_num_threads(1)
    a = x.sum().item()
    nc.set_num_threads(2)
    b = x.sum().item()
    assert a == b


def test_views_share_storage_and_backprop():
    x = nc.tensor(rand((2, 3, 4)), requires_grad=True)
    y = x.permute(2, 0, 1).reshape(4, 6).transpose(0, 1).unsqueeze(0).squeeze(0)
    assert y.shape == (6, 4)
    gradcheck(lambda a: a.permute(2, 0, 1).reshape(4, 6).t().unsqueeze(1).expand(6, 3, 4).flatten(), [rand((2, 3, 4))])
    base = nc.tensor(np.arange(6.0))
    v = base.view(2, 3)
    v.mul_(2.0)
    np.testing.assert_array_equal(base.numpy(), np.arange(6.0) * 2)


def test_numpy_zero_copy_both_ways():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = nc.from_numpy(arr)
    arr[0, 0] = 42
    assert t[0, 0].item() == 42 if hasattr(nc.Tensor, "__getitem__") else t.numpy()[0, 0] == 42
    back = t.numpy()
    back[1, 2] = -1
    assert arr[1, 2] == -1
    assert nc.tensor(arr).numpy() is not arr


def test_dtype_promotion():
    i = nc.tensor([1, 2, 3])
    f = nc.tensor([1.0, 2.0, 3.0])
    assert i.dtype == nc.int64 and f.dtype == nc.float32
    assert (i + 1).dtype == nc.int64
    assert (i * 2.5).dtype == nc.float32
    assert (i / 2).dtype == nc.float32
    assert (f + nc.tensor(1.0, dtype=nc.float64)).dtype == nc.float32
    assert (f + nc.tensor([1.0], dtype=nc.float64)).dtype == nc.float64


def test_backward_twice_raises_and_retain_graph_works():
    x = nc.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_inplace_on_saved_tensor_raises():
    x = nc.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1.0
    y = (h * h).sum()
    h.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_inplace_on_leaf_requiring_grad_raises():
    x = nc.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x.add_(1.0)
    with nc.no_grad():
        x.add_(1.0)
    np.testing.assert_allclose(x.detach().numpy(), [2.0, 3.0])


def test_inplace_history_rebased():
    gradcheck(lambda a, b: _inplace_chain(a, b), [rand((3,)), rand((3,), seed=4) + 2.0])


def _inplace_chain(a, b):
    h = a * 1.0
    h.mul_(b)
    h.add_(a)
    h.div_(b)
    return h


def test_no_grad_and_detach():
    x = nc.tensor([1.0], requires_grad=True)
    with nc.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    z = (x * 2).detach()
    assert not z.requires_grad and z.is_leaf

    @nc.no_grad()
    def f(t):
        return t * 3
    assert not f(x).requires_grad


def test_nonleaf_grad_and_retain_grad():
    x = nc.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [6.0, 12.0])
    np.testing.assert_allclose(x.grad.numpy(), [18.0, 36.0])


def test_grad_accumulates_and_autograd_grad():
    x = nc.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 4.0])
    y = (x * x * x).sum()
    (g,) = nc.autograd.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), [3.0, 12.0])
    (g2,) = nc.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(g2.numpy(), [6.0, 12.0])
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 4.0])


def test_backward_with_gradient_argument():
    x = nc.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    with pytest.raises(RuntimeError, match="scalar outputs"):
        y.backward()
    y.backward(nc.tensor([1.0, 0.5]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_bad_shapes_raise_clear_errors():
    a, b = nc.tensor(rand((3, 4))), nc.tensor(rand((5, 6)))
    with pytest.raises(ValueError, match=r"\[matmul\].*\(3, 4\).*\(5, 6\)"):
        a @ b
    with pytest.raises(ValueError, match=r"\[add\].*\(3, 4\).*\(5, 6\)"):
        a + b
    with pytest.raises(ValueError, match=r"\[linear\] input has 783 features, weight expects 784"):
        nc.linear(nc.zeros(32, 783) if hasattr(nc, "zeros") else nc.tensor(np.zeros((32, 783), np.float32)),
                  nc.tensor(np.zeros((10, 784), np.float32)))
    with pytest.raises(ValueError, match=r"\[view\]"):
        a.view(5, 5)
    with pytest.raises(TypeError, match=r"\[matmul\]"):
        nc.tensor([[1, 2]]) @ nc.tensor([[1.0], [2.0]])
