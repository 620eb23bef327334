"""Indexing, slicing, assignment, joining and splitting vs PyTorch."""
import numpy as np
import pytest

import neurocore as nc
from helpers import check_op, gradcheck, rand, require_torch

KEYS = [
    (1,), (-1,), (slice(None), -1), (slice(None), -1, slice(None)), (Ellipsis, 0), (slice(1, None), slice(None, None, 2)),
    (None, 0), (0, None, slice(1, 3)), (slice(None, None, 3),), (Ellipsis,), (1, 2, 3), (slice(-2, None), Ellipsis, -1),
    (slice(5, 1),),
]


@pytest.mark.parametrize("key", KEYS, ids=[str(k) for k in KEYS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_basic_indexing_parity(key, dtype):
    check_op(lambda t, a: a[key], lambda n, a: a[key], [rand((3, 4, 5))], dtype=dtype)


@pytest.mark.parametrize("key", KEYS[:8], ids=[str(k) for k in KEYS[:8]])
def test_basic_indexing_gradcheck(key):
    gradcheck(lambda a: a[key], [rand((3, 4, 5))])


def test_basic_index_is_a_view():
    base = nc.tensor(np.arange(12.0).reshape(3, 4))
    v = base[1:, ::2]
    v.mul_(10)
    expected = np.arange(12.0).reshape(3, 4)
    expected[1:, ::2] *= 10
    np.testing.assert_array_equal(base.numpy(), expected)
    base[0, 0] = -1.0
    assert base.numpy()[0, 0] == -1.0


ADVANCED = [
    lambda m: (m.tensor([0, 2, 2]),),
    lambda m: (slice(None), m.tensor([3, 0])),
    lambda m: (m.tensor([0, 1]), m.tensor([1, 3])),
    lambda m: (m.tensor([[0], [2]]), slice(1, 3), m.tensor([1, 4])),
    lambda m: (m.tensor([1, 0]), Ellipsis, 2),
]


@pytest.mark.parametrize("make_key", ADVANCED)
def test_advanced_indexing_parity_with_repeats(make_key):
    check_op(lambda t, a: a[make_key(t)], lambda n, a: a[make_key(n)], [rand((3, 4, 5))], dtype=np.float64)


def test_bool_mask_and_list_indexing():
    torch = require_torch()
    x = rand((4, 5))
    t, n = torch.tensor(x), nc.tensor(x)
    np.testing.assert_array_equal(n[n > 0].numpy(), t[t > 0].numpy())
    np.testing.assert_array_equal(n[[0, 3]].numpy(), t[[0, 3]].numpy())
    np.testing.assert_array_equal(n[:, [True, False, True, False, True]].numpy(), t[:, [True, False, True, False, True]].numpy())


def test_setitem_parity_and_autograd():
    torch = require_torch()
    x = rand((3, 4))
    for key, value in [((1,), 5.0), ((slice(None), 0), [1.0, 2.0, 3.0]), ((Ellipsis, slice(1, 3)), 0.5)]:
        t, n = torch.tensor(x), nc.tensor(x)
        t[key] = torch.tensor(value) if isinstance(value, list) else value
        n[key] = nc.tensor(value, dtype=nc.float64) if isinstance(value, list) else value
        np.testing.assert_array_equal(n.numpy(), t.numpy())
    # out[i] = h: the buffer gets a history; gradients reach h and not the overwritten values.
    h_np = rand((4,), seed=3)
    th = torch.tensor(h_np, requires_grad=True)
    nh = nc.tensor(h_np, requires_grad=True)
    tw = torch.tensor(x, requires_grad=True)
    nw = nc.tensor(x, requires_grad=True)
    tout, nout = tw * 1, nw * 1
    tout[1] = th * 2
    nout[1] = nh * 2
    g = rand((3, 4), seed=5)
    (tout * torch.tensor(g)).sum().backward()
    (nout * nc.tensor(g)).sum().backward()
    np.testing.assert_allclose(nh.grad.numpy(), th.grad.numpy())
    np.testing.assert_allclose(nw.grad.numpy(), tw.grad.numpy())


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_stack_parity(dim):
    arrays = [rand((2, 3, 4), seed=i) for i in range(3)]
    check_op(lambda t, *a: t.cat(a, dim), lambda n, *a: n.cat(a, dim), arrays, dtype=np.float64)
    check_op(lambda t, *a: t.stack(a, dim), lambda n, *a: n.stack(a, dim), arrays, dtype=np.float64)
    gradcheck(lambda *a: nc.cat(a, dim), [rand((2, 2, 3), seed=i) for i in range(2)])


def test_cat_promotes_and_checks_shapes():
    out = nc.cat([nc.tensor([1, 2]), nc.tensor([0.5])])
    assert out.dtype == nc.float32
    with pytest.raises(ValueError, match=r"\[cat\].*tensor 1 has shape \(2, 4\)"):
        nc.cat([nc.zeros(2, 3), nc.zeros(2, 4)])
    with pytest.raises(ValueError, match=r"\[stack\]"):
        nc.stack([nc.zeros(2), nc.zeros(3)])


@pytest.mark.parametrize("how", [("split", 2), ("split", [1, 3, 1]), ("chunk", 3), ("chunk", 2), ("unbind", None)])
def test_split_chunk_unbind_parity(how):
    name, arg = how
    call = (lambda m, a: getattr(a, name)(arg, 1)) if arg is not None else (lambda m, a: a.unbind(1))
    check_op(lambda t, a: tuple(call(t, a)), lambda n, a: tuple(call(n, a)), [rand((3, 5, 2))], dtype=np.float64)


def test_narrow_select_index_select_flip_repeat_parity():
    idx = np.array([2, 0, 2])
    check_op(lambda t, a: a.narrow(1, 1, 2), lambda n, a: a.narrow(1, 1, 2), [rand((3, 4))], dtype=np.float64)
    check_op(lambda t, a: a.select(0, -1), lambda n, a: a.select(0, -1), [rand((3, 4))], dtype=np.float64)
    check_op(lambda t, a: t.index_select(a, 0, t.tensor(idx)), lambda n, a: n.index_select(a, 0, n.tensor(idx)),
             [rand((3, 4))], dtype=np.float64)
    check_op(lambda t, a: a.flip(0, 1), lambda n, a: a.flip(0, 1), [rand((3, 4))], dtype=np.float64)
    check_op(lambda t, a: a.repeat(2, 1, 3), lambda n, a: a.repeat(2, 1, 3), [rand((3, 4))], dtype=np.float64)


def test_index_errors():
    x = nc.zeros(3, 4)
    with pytest.raises(IndexError, match=r"\[index\] index 5 is out of bounds for dimension 0 with size 3"):
        x[5]
    with pytest.raises(IndexError, match=r"\[index\]"):
        x[nc.tensor([0, 7])]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[::-1]
    with pytest.raises(IndexError, match=r"\[narrow\]"):
        x.narrow(0, 2, 5)
