"""PReLU, Hardswish, Hardsigmoid, LogSigmoid, Softmin, Softmax2d, Softsign, Tanhshrink, Threshold,
CELU, GLU, Hardshrink, Softshrink (modules and F. forms) against PyTorch: values and gradients in
float32/64 (breakpoints included), reprs, state_dict, in-place forms, finite differences, errors."""
import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from neurocore.nn import functional as F
from helpers import TOL, assert_close, check_op, gradcheck, rand, require_torch

# The breakpoints of the piecewise functions, where the gradient convention matters.
BREAKS = np.array([-3.0, 3.0, 0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0])

FUNCTIONS = [  # (name, args, kwargs)
    ("hardswish", (), {}), ("hardsigmoid", (), {}), ("logsigmoid", (), {}), ("softmin", (), {"dim": 1}),
    ("softsign", (), {}), ("tanhshrink", (), {}), ("threshold", (0.5, -2.0), {}), ("celu", (), {}),
    ("celu", (), {"alpha": 0.5}), ("glu", (), {}), ("glu", (), {"dim": 0}), ("hardshrink", (), {}),
    ("softshrink", (), {"lambd": 1.0}),
]


def _input(dtype):
    x = rand((6, 8), np.float64, seed=1, low=-5, high=5)
    x.reshape(-1)[:BREAKS.size] = BREAKS
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,args,kwargs", FUNCTIONS)
def test_functional_vs_torch(name, args, kwargs, dtype):
    # PyTorch's hardsigmoid gradient uses a float32 1/6 even for float64 input.
    tol = dict(rtol=1e-7) if name == "hardsigmoid" and dtype == np.float64 else {}
    check_op(lambda t, x: getattr(t.nn.functional, name)(x, *args, **kwargs),
             lambda nc, x: getattr(F, name)(x, *args, **kwargs), [_input(dtype)], dtype, **tol)


MODULES = [  # (name, args, kwargs)
    ("Hardswish", (), {}), ("Hardsigmoid", (), {}), ("LogSigmoid", (), {}), ("Softmin", (1,), {}),
    ("Softmin", (), {}), ("Softsign", (), {}), ("Tanhshrink", (), {}), ("Threshold", (0.1, 20.0), {}),
    ("CELU", (), {}), ("CELU", (0.5,), {}), ("GLU", (), {}), ("GLU", (0,), {}), ("Hardshrink", (), {}),
    ("Softshrink", (0.3,), {}), ("Softmax2d", (), {}), ("PReLU", (), {}), ("PReLU", (4, 0.1), {}),
]


@pytest.mark.parametrize("name,args,kwargs", MODULES)
def test_modules_vs_torch(name, args, kwargs):
    torch = require_torch()
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    x = rand((2, 4, 3, 2), np.float64, seed=2, low=-5, high=5)
    xn, xt = nc.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(p.double() + torch.tensor(rand(tuple(p.shape), np.float64, seed=3)))
    theirs.double(), ours.double()
    ours.load_state_dict({k: nc.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    yn, yt = ours(xn), theirs(xt)
    assert_close(yn, yt, **TOL[np.float64])
    g = rand(tuple(yt.shape), np.float64, seed=4)
    (yn * nc.tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    grad_tol = dict(TOL[np.float64], rtol=1e-7) if name == "Hardsigmoid" else TOL[np.float64]  # float32 1/6
    assert_close(xn.grad, xt.grad, **grad_tol)
    for (k, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert_close(p.grad, q.grad, **TOL[np.float64], what=k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xshape,wshape", [((3, 4, 5), (4,)), ((3, 4), (1,)), ((5,), (1,)), ((), (1,)),
                                           ((2, 3, 2, 2), (3,))])
def test_prelu_vs_torch(xshape, wshape, dtype):
    x = rand(xshape, seed=5, low=-2, high=2)
    if x.ndim:
        x.reshape(-1)[0] = 0.0  # the breakpoint
    check_op(lambda t, x, w: t.nn.functional.prelu(x, w), lambda nc, x, w: F.prelu(x, w),
             [x, rand(wshape, seed=6)], dtype)


def test_logsigmoid_is_stable_for_large_inputs():
    torch = require_torch()
    x = np.array([-1000.0, -200.0, -30.0, -1e-3, 0.0, 1e-3, 30.0, 200.0, 1000.0])
    for dtype in (np.float32, np.float64):
        xn = nc.tensor(x.astype(dtype), requires_grad=True)
        xt = torch.tensor(x.astype(dtype), requires_grad=True)
        yn, yt = F.logsigmoid(xn), torch.nn.functional.logsigmoid(xt)
        assert np.all(np.isfinite(yn.detach().numpy()))
        assert_close(yn, yt, **TOL[dtype])
        yn.sum().backward()
        yt.sum().backward()
        assert_close(xn.grad, xt.grad, **TOL[dtype])
    # Relative accuracy where log(sigmoid(x)) ~ -exp(-x) underflows 1 + exp(-x) to 1.
    big = np.array([10.0, 30.0, 50.0, 100.0])
    np.testing.assert_allclose(F.logsigmoid(nc.tensor(big)).numpy(), -np.log1p(np.exp(-big)), rtol=1e-12)


def test_celu_large_inputs_keep_finite_gradients():
    x = nc.tensor(np.array([-100.0, 0.0, 100.0, 500.0], np.float32), requires_grad=True)
    F.celu(x, 0.5).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("name,args", [("hardswish", ()), ("hardsigmoid", ()), ("threshold", (0.2, 7.0)),
                                       ("celu", (0.7,))])
def test_inplace_forms(name, args):
    torch = require_torch()
    x = rand((3, 5), np.float32, seed=7, low=-4, high=4)
    xn, xt = nc.tensor(x), torch.tensor(x)
    yn = getattr(F, name)(xn, *args, inplace=True)
    getattr(torch.nn.functional, name)(xt, *args, inplace=True)
    assert_close(xn, xt, **TOL[np.float32])
    assert_close(yn, xt, **TOL[np.float32])


def test_gradcheck():
    x = rand((3, 4), seed=8, low=-4, high=4)
    gradcheck(lambda x, w: F.prelu(x, w), [x, rand((4,), seed=9)])
    gradcheck(lambda x: F.hardswish(x) + F.celu(x, 0.6) + F.logsigmoid(x) + F.softsign(x) + F.softmin(x, 1), [x])
    gradcheck(lambda x: F.glu(x, 1), [x])


def test_errors():
    with pytest.raises(RuntimeError, match=r"glu.*dimension 1 is size 5.*\(2, 5\)"):
        F.glu(nc.zeros(2, 5), 1)
    with pytest.raises(RuntimeError, match="glu does not support scalars"):
        F.glu(nc.tensor(1.0))
    with pytest.raises(RuntimeError, match=r"prelu.*found 3 parameters.*\(2, 4\)"):
        nn.PReLU(3)(nc.zeros(2, 4))
    with pytest.raises(ValueError, match=r"Softmax2d.*3D or 4D.*\(2, 4\)"):
        nn.Softmax2d()(nc.zeros(2, 4))
    with pytest.raises(ValueError, match="celu"):
        F.celu(nc.zeros(2), 0.0)
    with pytest.raises(RuntimeError, match="softshrink"):
        F.softshrink(nc.zeros(2), -1.0)


def test_module_paths():
    torch = require_torch()
    import neurocore.nn.modules.activation as mine
    import torch.nn.modules.activation as theirs
    for name in mine.__all__:
        assert hasattr(theirs, name) and getattr(mine, name) is getattr(nn, name)
