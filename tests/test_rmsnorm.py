"""nn.RMSNorm / F.rms_norm against PyTorch: outputs and gradients (input and weight), eps=None,
no affine, several trailing dims, float32/float64; finite differences; double backward; errors."""
import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from neurocore.nn import functional as F
from helpers import require_torch, rand, check_op, gradcheck


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,norm", [((6, 10), (10,)), ((3, 5, 7), (5, 7)), ((2, 3, 129), (129,)), ((4,), (4,))])
@pytest.mark.parametrize("eps", [None, 1e-3])
def test_parity(dtype, shape, norm, eps):
    w = rand(norm, seed=3, low=0.5, high=1.5)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    check_op(lambda t, x, w: t.nn.functional.rms_norm(x, norm, w, eps),
             lambda n, x, w: F.rms_norm(x, norm, w, eps), [rand(shape, seed=1), w], dtype, **tol)
    check_op(lambda t, x: t.nn.functional.rms_norm(x, norm, None, eps),
             lambda n, x: F.rms_norm(x, norm, None, eps), [rand(shape, seed=2)], dtype, **tol)


@pytest.mark.torch
def test_module_matches_torch():
    torch = require_torch()
    for kw in [dict(), dict(eps=1e-6), dict(elementwise_affine=False)]:
        tm, nm = torch.nn.RMSNorm([3, 4], **kw), nn.RMSNorm([3, 4], **kw)
        assert repr(nm) == repr(tm)
        assert list(nm.state_dict().keys()) == list(tm.state_dict().keys())
    nm = nn.RMSNorm(8)
    assert np.all(nm.weight.detach().numpy() == 1)
    assert nm(nc.zeros(2, 8)).detach().numpy().tolist() == [[0.0] * 8] * 2


def test_gradcheck():
    gradcheck(lambda x, w: F.rms_norm(x, (5,), w, 1e-5), [rand((3, 5), seed=1), rand((5,), seed=2)])
    gradcheck(lambda x: F.rms_norm(x, (2, 3), None, 1e-5), [rand((4, 2, 3), seed=3)])


@pytest.mark.torch
def test_double_backward_matches_torch():
    torch = require_torch()
    x, w, gy = rand((3, 5), seed=3), rand((5,), seed=4), rand((3, 5), seed=5)
    results = []
    for lib, fn in [(torch, torch.nn.functional.rms_norm), (nc, F.rms_norm)]:
        ts = [lib.tensor(a, requires_grad=True) for a in (x, w)]
        y = fn(ts[0], (5,), ts[1], 1e-5)
        grads = lib.autograd.grad((y * lib.tensor(gy)).sum(), ts, create_graph=True)
        second = sum((g * g).sum() for g in grads)
        results.append([g.detach().numpy() for g in lib.autograd.grad(second, ts)])
    for t, n in zip(*results):
        np.testing.assert_allclose(n, t, rtol=1e-9, atol=1e-11)


def test_thread_count_does_not_change_results():
    x = nc.tensor(rand((300, 64), np.float32), requires_grad=True)
    w = nc.tensor(rand((64,), np.float32), requires_grad=True)
    before = nc.get_num_threads()
    res = []
    for t in (1, 2):
        nc.set_num_threads(t)
        x.grad = w.grad = None
        y = F.rms_norm(x, (64,), w)
        y.backward(nc.tensor(rand((300, 64), np.float32, seed=5)))
        res.append((y.detach().numpy(), x.grad.numpy(), w.grad.numpy()))
    nc.set_num_threads(before)
    for a, b in zip(*res):
        assert np.array_equal(a, b)


def test_errors():
    with pytest.raises(RuntimeError, match=r"\[rms_norm\] Given normalized_shape=\(5,\)"):
        F.rms_norm(nc.zeros(3, 4), (5,))
    with pytest.raises(RuntimeError, match=r"\[rms_norm\] expected weight of shape \(4,\)"):
        F.rms_norm(nc.zeros(3, 4), (4,), nc.ones(3))
    with pytest.raises(TypeError, match=r"\[rms_norm\] expected a floating-point input"):
        F.rms_norm(nc.zeros(3, 4, dtype=nc.int64), (4,))
