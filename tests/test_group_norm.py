"""GroupNorm, InstanceNorm1d/2d/3d, LocalResponseNorm and their functional forms against PyTorch:
values and gradients (float32/64), running statistics, state_dict layouts, reprs, finite
differences and errors."""
import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from neurocore.nn import functional as F
from helpers import TOL, assert_close, check_op, gradcheck, rand, require_torch


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,groups", [((2, 6, 5), 3), ((3, 4, 3, 2), 2), ((3, 4), 2), ((1, 6, 2, 2, 2), 1)])
def test_group_norm_vs_torch(shape, groups, dtype):
    c = shape[1]
    x, w, b = rand(shape, seed=1, low=-3, high=5), rand((c,), seed=2), rand((c,), seed=3)
    check_op(lambda t, x, w, b: t.nn.functional.group_norm(x, groups, w, b, 1e-4),
             lambda nc, x, w, b: F.group_norm(x, groups, w, b, 1e-4), [x, w, b], dtype)


def test_group_norm_without_affine_and_module():
    torch = require_torch()
    x = rand((2, 6, 4), np.float32, seed=4)
    assert_close(F.group_norm(nc.tensor(x), 2), torch.nn.functional.group_norm(torch.tensor(x), 2), rtol=1e-5,
                 atol=1e-5)
    for kwargs in [{}, {"affine": False}, {"bias": False}, {"eps": 1e-3}]:
        ours, theirs = nn.GroupNorm(3, 6, **kwargs), torch.nn.GroupNorm(3, 6, **kwargs)
        assert repr(ours) == repr(theirs)
        assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
            {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
        ours.load_state_dict({k: nc.tensor(v.numpy() + 0.5) for k, v in theirs.state_dict().items()})
        theirs.load_state_dict({k: v + 0.5 for k, v in theirs.state_dict().items()})
        assert_close(ours(nc.tensor(x)), theirs(torch.tensor(x)), rtol=1e-5, atol=1e-5, what=str(kwargs))


def test_group_norm_gradcheck():
    gradcheck(lambda x, w, b: F.group_norm(x, 2, w, b), [rand((2, 4, 3), seed=5), rand((4,), seed=6),
                                                          rand((4,), seed=7)])


def test_group_norm_errors():
    with pytest.raises(ValueError, match=r"\[GroupNorm\] num_channels 6 must be divisible by num_groups 4"):
        nn.GroupNorm(4, 6)
    with pytest.raises(RuntimeError, match=r"group_norm.*divisible.*\(2, 6, 3\)"):
        F.group_norm(nc.zeros(2, 6, 3), 4)
    with pytest.raises(ValueError, match=r"GroupNorm.*4 channels.*\(2, 6, 3\)"):
        nn.GroupNorm(2, 4)(nc.zeros(2, 6, 3))
    with pytest.raises(RuntimeError, match="weight of shape"):
        F.group_norm(nc.zeros(2, 6, 3), 2, nc.ones(4))
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 4\)"):
        F.group_norm(nc.zeros(1, 4), 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 3)])
def test_instance_norm_functional_vs_torch(shape, dtype):
    c = shape[1]
    x, w, b = rand(shape, seed=8, low=-2, high=4), rand((c,), seed=9), rand((c,), seed=10)
    check_op(lambda t, x, w, b: t.nn.functional.instance_norm(x, weight=w, bias=b, eps=1e-3),
             lambda nc, x, w, b: F.instance_norm(x, weight=w, bias=b, eps=1e-3), [x, w, b], dtype)


@pytest.mark.parametrize("cls,shape", [("InstanceNorm1d", (3, 4, 6)), ("InstanceNorm2d", (2, 4, 3, 5)),
                                       ("InstanceNorm2d", (4, 3, 5)), ("InstanceNorm3d", (2, 4, 2, 3, 2))])
def test_instance_norm_modules_running_stats(cls, shape):
    """Training updates the running stats as PyTorch does (batch mean of the per-instance statistics,
    unbiased variance); eval normalises with them; state_dict keys, shapes and values match."""
    torch = require_torch()
    kwargs = dict(affine=True, track_running_stats=True, momentum=0.3)
    ours = getattr(nn, cls)(4, **kwargs, dtype=nc.float64)
    theirs = getattr(torch.nn, cls)(4, **kwargs, dtype=torch.float64)
    assert repr(ours) == repr(theirs)
    ours.load_state_dict({k: nc.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    for step in range(2):
        x = rand(shape, np.float64, seed=11 + step, low=-1, high=3)
        xn, xt = nc.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yn, yt = ours(xn), theirs(xt)
        assert_close(yn, yt, **TOL[np.float64])
        g = rand(yt.shape, np.float64, seed=20)
        (yn * nc.tensor(g)).sum().backward()
        (yt * torch.tensor(g)).sum().backward()
        assert_close(xn.grad, xt.grad, **TOL[np.float64])
        assert_close(ours.weight.grad, theirs.weight.grad, **TOL[np.float64])
    sd_ours, sd_theirs = ours.state_dict(), theirs.state_dict()
    assert list(sd_ours) == list(sd_theirs)
    for k in sd_theirs:
        assert_close(sd_ours[k], sd_theirs[k], **TOL[np.float64], what=k)
    ours.eval(), theirs.eval()
    x = rand(shape, np.float64, seed=30)
    assert_close(ours(nc.tensor(x)), theirs(torch.tensor(x)), **TOL[np.float64])


def test_instance_norm_defaults_and_eval_without_running_stats():
    torch = require_torch()
    ours, theirs = nn.InstanceNorm1d(3), torch.nn.InstanceNorm1d(3)
    assert repr(ours) == repr(theirs) and list(ours.state_dict()) == list(theirs.state_dict()) == []
    ours.eval(), theirs.eval()  # without running stats, eval uses the input's statistics too
    x = rand((2, 3, 5), np.float32, seed=31)
    assert_close(ours(nc.tensor(x)), theirs(torch.tensor(x)), rtol=1e-5, atol=1e-5)
    m = nn.InstanceNorm2d(2, affine=True, track_running_stats=True)
    assert [k for k in m.state_dict()] == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


def test_instance_norm_gradcheck():
    gradcheck(lambda x, w, b: F.instance_norm(x, weight=w, bias=b), [rand((2, 2, 4), seed=32), rand((2,), seed=33),
                                                                     rand((2,), seed=34)])


def test_instance_norm_errors():
    with pytest.raises(ValueError, match=r"InstanceNorm2d.*3D or 4D.*\(2, 3\)"):
        nn.InstanceNorm2d(3)(nc.zeros(2, 3))
    with pytest.raises(ValueError, match=r"match num_features \(4\), but got: 3"):
        nn.InstanceNorm1d(4, affine=True)(nc.zeros(2, 3, 5))
    with pytest.warns(UserWarning, match="does not match num_features"):
        nn.InstanceNorm1d(4)(nc.zeros(2, 3, 5))
    with pytest.raises(ValueError, match=r"more than 1 spatial element.*\(2, 3, 1\)"):
        F.instance_norm(nc.zeros(2, 3, 1))
    with pytest.raises(RuntimeError, match="running_mean and running_var must be given"):
        F.instance_norm(nc.zeros(2, 3, 4), use_input_stats=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,size", [((2, 5, 4), 3), ((2, 6, 3, 2), 2), ((1, 4, 2, 2, 3), 5)])
def test_local_response_norm_vs_torch(shape, size, dtype):
    x = rand(shape, seed=40, low=-3, high=3)
    check_op(lambda t, x: t.nn.functional.local_response_norm(x, size, 0.1, 0.6, 1.5),
             lambda nc, x: F.local_response_norm(x, size, 0.1, 0.6, 1.5), [x], dtype)


def test_local_response_norm_module_and_errors():
    torch = require_torch()
    assert repr(nn.LocalResponseNorm(3)) == repr(torch.nn.LocalResponseNorm(3))
    gradcheck(lambda x: F.local_response_norm(x, 3, 0.5, 0.75, 1.0), [rand((1, 4, 3), seed=41)])
    with pytest.raises(ValueError, match=r"local_response_norm.*3D or higher.*\(2, 3\)"):
        nn.LocalResponseNorm(2)(nc.zeros(2, 3))
