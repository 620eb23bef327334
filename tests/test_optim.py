"""Optimizers (nc.optim) against PyTorch: 20-step trajectories from the same weights for every
option, parameter groups, zero_grad, state_dict round trips (also through nc.save/nc.load and from
a torch optimizer), step(closure), argument validation and thread independence."""
import copy

import numpy as np
import pytest

import neurocore as nc
from helpers import TOL, rand, require_torch

SHAPES = [(5, 3), (3,), (2, 2, 2)]
STEPS = 20

# (class name, kwargs): every option of every optimizer; the same kwargs work for torch.optim.
CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.05)),
    ("SGD", dict(lr=0.1, momentum=0.8, weight_decay=0.05, maximize=True)),
    ("SGD", dict(lr=0.1, maximize=True)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, maximize=True)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, amsgrad=True)),
    ("AdamW", dict(lr=0.05, weight_decay=0.3, amsgrad=True, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.2, eps=1e-6,
                     maximize=True)),
]
IDS = [f"{name}-" + ("-".join(f"{k}={v}" for k, v in kw.items())) for name, kw in CONFIGS]



def _arrays(dtype, seed=0):
    return [rand(s, dtype, seed=seed + i) for i, s in enumerate(SHAPES)]


def _coeffs(seed=50):
    return [rand(s, np.float64, seed=seed + i, low=0.5, high=2.0) for i, s in enumerate(SHAPES)]


def _grad(x, c):
    """The synthetic gradient: a fixed numpy function of the current parameter values."""
    return (np.sin(x) * c + 0.1 * x).astype(x.dtype)


def _nc_params(arrays):
    return [nc.tensor(a.copy(), requires_grad=True) for a in arrays]


def _torch_params(torch, arrays):
    return [torch.tensor(a.copy(), requires_grad=True) for a in arrays]


def _set_nc_grads(params, coeffs):
    for p, c in zip(params, coeffs):
        p.grad = nc.tensor(_grad(p.detach().numpy().copy(), c))


def _set_torch_grads(torch, params, coeffs):
    for p, c in zip(params, coeffs):
        p.grad = torch.tensor(_grad(p.detach().numpy().copy(), c))


def _np(p):
    return p.detach().numpy().copy()


def _compare(nc_params, torch_params, tol, what):
    for i, (a, b) in enumerate(zip(nc_params, torch_params)):
        np.testing.assert_allclose(_np(a), _np(b), err_msg=f"{what}, param {i}", **tol)


def _nc_run(opt, params, coeffs, steps):
    for _ in range(steps):
        _set_nc_grads(params, coeffs)
        opt.step()


# --------------------------------------------------------------------------------------------------
# trajectories against torch
# --------------------------------------------------------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_trajectory_matches_torch(name, kwargs, dtype):
    torch = require_torch()
    arrays, coeffs = _arrays(dtype), _coeffs()
    np_, tp = _nc_params(arrays), _torch_params(torch, arrays)
    nopt = getattr(nc.optim, name)(np_, **kwargs)
    topt = getattr(torch.optim, name)(tp, **kwargs)
    tol = TOL[dtype]
    for step in range(STEPS):
        _set_nc_grads(np_, coeffs)
        _set_torch_grads(torch, tp, coeffs)
        nopt.step()
        topt.step()
        for p in np_:
            assert p.dtype == (nc.float64 if dtype == np.float64 else nc.float32)
        _compare(np_, tp, tol, f"{name} {kwargs} step {step + 1}")


@pytest.mark.torch
@pytest.mark.parametrize("name,kwargs", [c for c in CONFIGS if c[0] in ("SGD", "Adam", "RMSprop")][::2])
def test_trajectory_with_lr_changed_between_steps(name, kwargs):
    """Changing group['lr'] between steps (what schedulers do) is picked up by the next step."""
    torch = require_torch()
    arrays, coeffs = _arrays(np.float64), _coeffs()
    np_, tp = _nc_params(arrays), _torch_params(torch, arrays)
    nopt = getattr(nc.optim, name)(np_, **kwargs)
    topt = getattr(torch.optim, name)(tp, **kwargs)
    for step in range(12):
        lr = kwargs["lr"] * (0.7 ** step)
        nopt.param_groups[0]["lr"] = lr
        topt.param_groups[0]["lr"] = lr
        _set_nc_grads(np_, coeffs)
        _set_torch_grads(torch, tp, coeffs)
        nopt.step()
        topt.step()
        _compare(np_, tp, TOL[np.float64], f"step {step + 1}")


# --------------------------------------------------------------------------------------------------
# parameter groups, params without grad, zero_grad
# --------------------------------------------------------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize("name,g0,g1", [
    ("SGD", dict(lr=0.05, momentum=0.9), dict(lr=0.2, nesterov=True, momentum=0.5, weight_decay=0.1)),
    ("Adam", dict(lr=0.01), dict(lr=0.1, amsgrad=True, betas=(0.5, 0.9))),
    ("AdamW", dict(weight_decay=0.5), dict(lr=0.1, amsgrad=True)),
    ("RMSprop", dict(centered=True), dict(lr=0.05, momentum=0.5)),
    # (torch's Adagrad fills its eager "sum" state from the constructor's initial_accumulator_value,
    # not the group's, so a per-group initial_accumulator_value is not compared here)
    ("Adagrad", dict(lr_decay=0.1), dict(lr=0.3, weight_decay=0.2)),
])
def test_param_groups_match_torch(name, g0, g1):
    torch = require_torch()
    arrays, coeffs = _arrays(np.float64), _coeffs()
    np_, tp = _nc_params(arrays), _torch_params(torch, arrays)
    nopt = getattr(nc.optim, name)([dict(params=np_[:2], **g0), dict(params=[np_[2]], **g1)], lr=0.02)
    topt = getattr(torch.optim, name)([dict(params=tp[:2], **g0), dict(params=[tp[2]], **g1)], lr=0.02)
    assert len(nopt.param_groups) == 2
    assert nopt.param_groups[0]["lr"] == topt.param_groups[0]["lr"]
    assert nopt.param_groups[1]["lr"] == topt.param_groups[1]["lr"]
    for step in range(STEPS):
        _set_nc_grads(np_, coeffs)
        _set_torch_grads(torch, tp, coeffs)
        nopt.step()
        topt.step()
        _compare(np_, tp, TOL[np.float64], f"step {step + 1}")


def test_add_param_group_after_construction():
    torch = require_torch()
    arrays, coeffs = _arrays(np.float64), _coeffs()
    np_, tp = _nc_params(arrays), _torch_params(torch, arrays)
    nopt = nc.optim.Adam(np_[:2], lr=0.05)
    topt = torch.optim.Adam(tp[:2], lr=0.05)
    for step in range(10):
        if step == 4:
            nopt.add_param_group(dict(params=np_[2], lr=0.2))
            topt.add_param_group(dict(params=tp[2], lr=0.2))
            assert nopt.param_groups[1]["betas"] == (0.9, 0.999)
        _set_nc_grads(np_, coeffs)
        _set_torch_grads(torch, tp, coeffs)
        nopt.step()
        topt.step()
        _compare(np_, tp, TOL[np.float64], f"step {step + 1}")


@pytest.mark.torch
@pytest.mark.parametrize("name,kwargs", [c for c in CONFIGS if c[0] != "Adagrad"][::3] + [CONFIGS[-1]])
def test_param_without_grad_is_skipped(name, kwargs):
    torch = require_torch()
    arrays, coeffs = _arrays(np.float64), _coeffs()
    np_, tp = _nc_params(arrays), _torch_params(torch, arrays)
    nopt = getattr(nc.optim, name)(np_, **kwargs)
    topt = getattr(torch.optim, name)(tp, **kwargs)
    frozen = arrays[1].copy()
    for step in range(5):
        _set_nc_grads(np_, coeffs)
        _set_torch_grads(torch, tp, coeffs)
        np_[1].grad = None
        tp[1].grad = None
        nopt.step()
        topt.step()
        np.testing.assert_array_equal(_np(np_[1]), frozen)
        _compare(np_, tp, TOL[np.float64], f"step {step + 1}")
    if name == "Adagrad":  # state is created eagerly (as in torch) but is not advanced
        assert int(nopt.state[np_[1]]["step"]) == 0
        np.testing.assert_array_equal(nopt.state[np_[1]]["sum"].numpy(),
                                      np.full(SHAPES[1], kwargs.get("initial_accumulator_value", 0.0)))
    else:
        assert np_[1] not in nopt.state or not nopt.state[np_[1]]
    nsd, tsd = nopt.state_dict(), topt.state_dict()
    assert sorted(nsd["state"]) == sorted(tsd["state"])


def test_zero_grad():
    params = _nc_params(_arrays(np.float64))
    opt = nc.optim.SGD(params, lr=0.1, momentum=0.9)
    _set_nc_grads(params, _coeffs())
    params[2].grad = None
    opt.zero_grad()
    assert all(p.grad is None for p in params)

    _set_nc_grads(params, _coeffs())
    opt.zero_grad(set_to_none=False)
    for p, s in zip(params, SHAPES):
        assert p.grad is not None
        assert tuple(p.grad.shape) == s
        np.testing.assert_array_equal(p.grad.numpy(), np.zeros(s))
    # zeroed (not None) grads still take part in the step: SGD without momentum/decay leaves p unchanged
    before = [_np(p) for p in params]
    nc.optim.SGD(params, lr=0.1).step()
    for p, b in zip(params, before):
        np.testing.assert_array_equal(_np(p), b)


def test_zero_grad_after_backward():
    w = nc.tensor(rand((4, 3)), requires_grad=True)
    x = nc.tensor(rand((2, 4), seed=3))
    opt = nc.optim.SGD([w], lr=0.1)
    (x @ w).sum().backward()
    g1 = w.grad.numpy().copy()
    opt.zero_grad(set_to_none=False)
    (x @ w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), g1)  # not accumulated on top of the old gradient
    opt.zero_grad()
    assert w.grad is None
    (x @ w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), g1)


# --------------------------------------------------------------------------------------------------
# state_dict
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,via_file", [(np.float64, False), (np.float64, True), (np.float32, False)])
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_state_dict_resume_equals_uninterrupted(name, kwargs, dtype, via_file, tmp_path):
    arrays, coeffs = _arrays(dtype), _coeffs()
    cls = getattr(nc.optim, name)

    ref = _nc_params(arrays)
    ref_opt = cls(ref, **kwargs)
    _nc_run(ref_opt, ref, coeffs, STEPS)

    first = _nc_params(arrays)
    opt = cls(first, **kwargs)
    _nc_run(opt, first, coeffs, STEPS // 2)
    sd = opt.state_dict()
    if via_file:
        nc.save(sd, tmp_path / "opt.pt")
        sd = nc.load(tmp_path / "opt.pt")
    # keep stepping the original: the saved state_dict must not alias the live state
    _nc_run(opt, first, coeffs, 3)

    second = _nc_params(arrays)
    replay = cls(second, **kwargs)
    _nc_run(replay, second, coeffs, STEPS // 2)  # same parameter values as at the save point
    resumed_params = [nc.tensor(_np(p), requires_grad=True) for p in second]
    fresh = cls(resumed_params, lr=123.0)  # every hyperparameter comes from the state_dict
    fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["lr"] == kwargs["lr"]
    _nc_run(fresh, resumed_params, coeffs, STEPS - STEPS // 2)
    for i, (a, b) in enumerate(zip(resumed_params, ref)):
        np.testing.assert_array_equal(_np(a), _np(b), err_msg=f"param {i}")
        assert a.dtype == b.dtype


@pytest.mark.torch
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_state_dict_layout_matches_torch(name, kwargs):
    torch = require_torch()
    arrays, coeffs = _arrays(np.float64), _coeffs()
    np_, tp = _nc_params(arrays), _torch_params(torch, arrays)
    nopt = getattr(nc.optim, name)([dict(params=np_[:1]), dict(params=np_[1:], lr=0.03)], **kwargs)
    topt = getattr(torch.optim, name)([dict(params=tp[:1]), dict(params=tp[1:], lr=0.03)], **kwargs)
    for _ in range(3):
        _set_nc_grads(np_, coeffs)
        _set_torch_grads(torch, tp, coeffs)
        nopt.step()
        topt.step()
    nsd, tsd = nopt.state_dict(), topt.state_dict()
    assert set(nsd) == {"state", "param_groups"}
    assert len(nsd["param_groups"]) == len(tsd["param_groups"]) == 2
    for ng, tg in zip(nsd["param_groups"], tsd["param_groups"]):
        assert ng["params"] == tg["params"]
        assert all(isinstance(i, int) for i in ng["params"])
        assert set(ng) <= set(tg), f"keys torch does not have: {set(ng) - set(tg)}"
        for k in ng:
            if k != "params":
                assert ng[k] == tg[k], k
    assert sorted(nsd["state"]) == sorted(tsd["state"])
    assert sorted(tsd["state"]) == ([] if name == "SGD" and "momentum" not in kwargs else [0, 1, 2])
    for idx in tsd["state"]:
        ns, ts = nsd["state"][idx], tsd["state"][idx]
        assert set(ns) == set(ts), f"param {idx}: {sorted(ns)} != {sorted(ts)}"
        for k, tv in ts.items():
            nv = ns[k]
            if k == "step":
                assert float(nv.item() if hasattr(nv, "item") else nv) == float(tv)
            else:
                assert isinstance(nv, nc.Tensor)
                np.testing.assert_allclose(nv.numpy(), tv.numpy(), err_msg=f"state[{idx}][{k}]",
                                           **TOL[np.float64])


@pytest.mark.torch
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_load_torch_state_dict_then_continue(name, kwargs):
    torch = require_torch()
    arrays, coeffs = _arrays(np.float64), _coeffs()
    tp = _torch_params(torch, arrays)
    topt = getattr(torch.optim, name)(tp, **kwargs)
    for _ in range(STEPS // 2):
        _set_torch_grads(torch, tp, coeffs)
        topt.step()
    np_ = [nc.tensor(_np(p), requires_grad=True) for p in tp]
    nopt = getattr(nc.optim, name)(np_, lr=0.5)
    nopt.load_state_dict(copy.deepcopy(topt.state_dict()))
    assert nopt.param_groups[0]["lr"] == kwargs["lr"]
    for step in range(STEPS // 2):
        _set_nc_grads(np_, coeffs)
        _set_torch_grads(torch, tp, coeffs)
        nopt.step()
        topt.step()
        _compare(np_, tp, TOL[np.float64], f"step {STEPS // 2 + step + 1}")
    # and the state it ends with has torch's layout and values
    nsd, tsd = nopt.state_dict(), topt.state_dict()
    for idx, ts in tsd["state"].items():
        assert set(nsd["state"][idx]) == set(ts)
        assert float(nsd["state"][idx].get("step", nc.tensor(0.0)).item()) == float(ts.get("step", 0))


def test_load_state_dict_rejects_mismatched_groups():
    params = _nc_params(_arrays(np.float64))
    opt = nc.optim.Adam(params)
    other = nc.optim.Adam([dict(params=params[:1]), dict(params=params[1:])])
    with pytest.raises(ValueError):
        opt.load_state_dict(other.state_dict())
    small = nc.optim.Adam(params[:2])
    with pytest.raises(ValueError):
        opt.load_state_dict(small.state_dict())


# --------------------------------------------------------------------------------------------------
# step(closure)
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_step_closure_returns_loss(name):
    w = nc.tensor(rand((3, 2)), requires_grad=True)
    x = nc.tensor(rand((4, 3), seed=5))
    opt = getattr(nc.optim, name)([w], lr=0.1)
    calls = []

    def closure():
        opt.zero_grad()
        loss = ((x @ w) ** 2).sum()
        loss.backward()
        calls.append(loss)
        return loss

    before = _np(w)
    with nc.no_grad():  # step enables grad for the closure, as torch does
        out = opt.step(closure)
    assert len(calls) == 1
    assert out is calls[0]
    assert not np.array_equal(_np(w), before)
    assert opt.step() is None


# --------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------
ALL = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]


@pytest.mark.parametrize("name", ALL)
def test_negative_lr(name):
    p = nc.tensor(rand((3,)), requires_grad=True)
    with pytest.raises(ValueError, match="^Invalid learning rate: -1$"):
        getattr(nc.optim, name)([p], lr=-1)


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("betas", [(1.0, 0.999), (0.9, 1.0), (-0.1, 0.999), (0.9, -0.5)])
def test_bad_betas(name, betas):
    p = nc.tensor(rand((3,)), requires_grad=True)
    with pytest.raises(ValueError, match="beta"):
        getattr(nc.optim, name)([p], betas=betas)


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(momentum=-0.1)), ("SGD", dict(weight_decay=-1)), ("SGD", dict(nesterov=True)),
    ("SGD", dict(nesterov=True, momentum=0.9, dampening=0.1)),
    ("Adam", dict(eps=-1)), ("Adam", dict(weight_decay=-1)),
    ("RMSprop", dict(alpha=-1)), ("RMSprop", dict(momentum=-1)), ("RMSprop", dict(eps=-1)),
    ("Adagrad", dict(lr_decay=-1)), ("Adagrad", dict(initial_accumulator_value=-1)), ("Adagrad", dict(eps=-1)),
])
def test_bad_hyperparameters(name, kwargs):
    p = nc.tensor(rand((3,)), requires_grad=True)
    with pytest.raises(ValueError):
        getattr(nc.optim, name)([p], **kwargs)


@pytest.mark.parametrize("name", ALL)
def test_bad_params(name):
    cls = getattr(nc.optim, name)
    p = nc.tensor(rand((3,)), requires_grad=True)
    q = nc.tensor(rand((2,)), requires_grad=True)
    with pytest.raises(TypeError):
        cls([1.0])
    with pytest.raises(TypeError):
        cls([p, 1.0])
    with pytest.raises(TypeError):
        cls(p)  # a bare tensor, not an iterable of tensors
    with pytest.raises(ValueError, match="non-leaf"):
        cls([p * 2.0])
    with pytest.raises(ValueError, match="empty"):
        cls([])
    with pytest.raises(ValueError, match="more than one parameter group"):
        cls([dict(params=[p]), dict(params=[q, p])])
    with pytest.raises(ValueError, match="more than one parameter group"):
        cls([p, q, p])
    opt = cls([p])
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group(dict(params=[p]))
    assert len(opt.param_groups) == 1
    with pytest.raises(TypeError):
        opt.add_param_group(dict(params={q}))  # sets are unordered


# --------------------------------------------------------------------------------------------------
# thread independence
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kwargs", [("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
                                         ("AdamW", dict(lr=0.01)),
                                         ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                         ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
                                         ("Adagrad", dict(lr=0.1, lr_decay=0.01))])
def test_thread_independent(name, kwargs):
    n = 1 << 18
    x0 = rand((n,), np.float32, seed=7)
    c = rand((n,), np.float64, seed=8, low=0.5, high=2.0)
    saved = nc.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            nc.set_num_threads(threads)
            p = nc.tensor(x0.copy(), requires_grad=True)
            opt = getattr(nc.optim, name)([p], **kwargs)
            for _ in range(5):
                p.grad = nc.tensor(_grad(_np(p), c))
                opt.step()
            results.append(_np(p))
    finally:
        nc.set_num_threads(saved)
    assert nc.get_num_threads() == saved
    np.testing.assert_array_equal(results[0], results[1])
    assert not np.array_equal(results[0], x0)
