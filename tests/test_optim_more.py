"""Adadelta, Adamax, NAdam, RAdam, LBFGS and the OneCycleLR / CosineAnnealingWarmRestarts /
SequentialLR schedulers against PyTorch: trajectories from the same weights for every option,
state_dict layouts, argument errors."""
import numpy as np
import pytest

import neurocore as nc
from helpers import TOL, rand, require_torch

SHAPES = [(5, 3), (3,), (2, 2, 2)]
CONFIGS = [
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1)),
    ("Adadelta", dict(lr=0.5, maximize=True, foreach=False)),
    ("Adamax", dict(lr=0.05)),
    ("Adamax", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adamax", dict(lr=0.05, maximize=True, foreach=True)),
    ("NAdam", dict(lr=0.05)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, betas=(0.8, 0.95))),
    ("NAdam", dict(lr=0.05, maximize=True, eps=1e-6)),
    ("RAdam", dict(lr=0.05)),
    ("RAdam", dict(lr=0.05, weight_decay=0.1)),
    ("RAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.05, betas=(0.5, 0.8), maximize=True, foreach=False)),
]
IDS = [f"{n}-" + "-".join(f"{k}={v}" for k, v in kw.items()) for n, kw in CONFIGS]


def _grad(x, c):
    return (np.sin(x) * c + 0.1 * x).astype(x.dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_trajectory_matches_torch(name, kwargs, dtype):
    torch = require_torch()
    arrays = [rand(s, dtype, seed=i) for i, s in enumerate(SHAPES)]
    coeffs = [rand(s, np.float64, seed=50 + i, low=0.5, high=2.0) for i, s in enumerate(SHAPES)]
    np_ = [nc.tensor(a.copy(), requires_grad=True) for a in arrays]
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    nopt, topt = getattr(nc.optim, name)(np_, **kwargs), getattr(torch.optim, name)(tp, **kwargs)
    tol = dict(TOL[dtype])
    if dtype == np.float32:
        tol["rtol"] = 2e-5  # float32 rounding of the two libraries' operation orders, 20 steps
    for step in range(20):
        for p, c in zip(np_, coeffs):
            p.grad = nc.tensor(_grad(p.detach().numpy().copy(), c))
        for p, c in zip(tp, coeffs):
            p.grad = torch.tensor(_grad(p.detach().numpy().copy(), c))
        nopt.step()
        topt.step()
        for i, (a, b) in enumerate(zip(np_, tp)):
            assert a.dtype == (nc.float64 if dtype == np.float64 else nc.float32)
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), err_msg=f"step {step + 1} param {i}",
                                       **tol)
    n_sd, t_sd = nopt.state_dict(), topt.state_dict()
    assert n_sd["param_groups"][0].keys() <= t_sd["param_groups"][0].keys() | {"foreach"}
    for k, v in t_sd["state"][0].items():
        got = n_sd["state"][0][k]
        np.testing.assert_allclose(np.asarray(got.tolist() if hasattr(got, "tolist") else got, np.float64),
                                   v.detach().numpy().astype(np.float64), err_msg=k, **tol)
    # resuming from torch's state_dict continues torch's trajectory
    resumed = [nc.tensor(p.detach().numpy().copy(), requires_grad=True) for p in tp]
    ropt = getattr(nc.optim, name)(resumed, **kwargs)
    ropt.load_state_dict(t_sd)
    for p, q, c in zip(resumed, tp, coeffs):
        p.grad = nc.tensor(_grad(p.detach().numpy().copy(), c))
        q.grad = torch.tensor(_grad(q.detach().numpy().copy(), c))
    ropt.step()
    topt.step()
    for a, b in zip(resumed, tp):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **tol)


def test_update_bumps_version_and_skips_params_without_grad():
    a, b = nc.nn.Parameter(nc.ones(3)), nc.nn.Parameter(nc.ones(2))
    opt = nc.optim.RAdam([a, b], lr=0.1)
    a.grad = nc.ones(3)
    v = a._version
    opt.step()
    assert a._version > v and b.tolist() == [1.0, 1.0] and b not in opt.state


@pytest.mark.parametrize("name,kwargs", [
    ("Adadelta", dict(lr=-1)), ("Adadelta", dict(rho=1.5)), ("Adadelta", dict(eps=-1)),
    ("Adadelta", dict(weight_decay=-1)), ("Adamax", dict(betas=(1.0, 0.9))), ("Adamax", dict(betas=(0.9, -0.1))),
    ("NAdam", dict(momentum_decay=-1)), ("NAdam", dict(eps=-1)), ("RAdam", dict(lr=-0.1)),
    ("RAdam", dict(weight_decay=-1)), ("LBFGS", dict(lr=-1))])
def test_argument_errors_match_torch(name, kwargs):
    torch = require_torch()
    with pytest.raises(ValueError) as expected:
        getattr(torch.optim, name)([torch.zeros(1, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError) as got:
        getattr(nc.optim, name)([nc.zeros(1, requires_grad=True)], **kwargs)
    assert str(got.value) == str(expected.value)


# --- LBFGS -------------------------------------------------------------------------------------------

def _run_lbfgs(lib, x0, loss_fn, kwargs, steps):
    """Loss at every closure evaluation, final point and LBFGS's counters."""
    x = lib.tensor(x0.copy(), requires_grad=True)
    opt = lib.optim.LBFGS([x], **kwargs)
    evaluations = []

    def closure():
        opt.zero_grad()
        loss = loss_fn(x)
        loss.backward()
        evaluations.append(float(loss.detach()))
        return loss
    for _ in range(steps):
        opt.step(closure)
    return evaluations, x.detach().numpy().copy(), opt.state[x]["n_iter"], opt.state[x]["func_evals"]


def _rosenbrock(x):
    return ((1 - x[0::2]) ** 2 + 100 * (x[1::2] - x[0::2] ** 2) ** 2).sum()


def _convex(x):
    return (x * x * (1 + 0.5 * x * x)).sum() + (x[1:] * x[:-1]).sum() * 0.3 - x.sum()


LBFGS_CASES = [dict(), dict(line_search_fn="strong_wolfe"), dict(history_size=3, max_iter=7),
               dict(lr=0.5, line_search_fn="strong_wolfe", history_size=2, max_eval=30),
               dict(tolerance_grad=1e-3, tolerance_change=1e-4, line_search_fn="strong_wolfe")]


@pytest.mark.parametrize("kwargs", LBFGS_CASES)
def test_lbfgs_matches_torch(kwargs):
    """Every closure evaluation (so every iterate, line-search trial and stopping decision)
    agrees with PyTorch: a well-conditioned problem run to convergence, and the first dozen
    iterations on Rosenbrock (further on, its ill-conditioning amplifies rounding differences of
    dot products into visibly different iterates in either library)."""
    torch = require_torch()
    x0 = np.array([-1.2, 1.0, -0.5, 0.8, 0.3, -0.4], np.float64)
    for loss_fn, steps, extra in ((_convex, 3, {}), (_rosenbrock, 1, dict(max_iter=min(kwargs.get("max_iter", 12), 12)))):
        kw = dict(kwargs, **extra)
        t_evals, t_x, t_iter, t_fe = _run_lbfgs(torch, x0, loss_fn, kw, steps)
        n_evals, n_x, n_iter, n_fe = _run_lbfgs(nc, x0, loss_fn, kw, steps)
        assert (len(n_evals), n_iter, n_fe) == (len(t_evals), t_iter, t_fe), loss_fn.__name__
        np.testing.assert_allclose(n_evals, t_evals, rtol=1e-9, atol=1e-12, err_msg=loss_fn.__name__)
        np.testing.assert_allclose(n_x, t_x, rtol=1e-8, atol=1e-10, err_msg=loss_fn.__name__)


def test_lbfgs_trains_a_model_like_torch_float32():
    torch = require_torch()
    X = rand((32, 4), np.float32, seed=3)
    y = (X @ np.array([1.0, -2.0, 0.5, 3.0], np.float32) + 0.3).reshape(-1, 1)
    w0 = rand((1, 4), np.float32, seed=4)
    finals = []
    for lib in (torch, nc):
        lin = lib.nn.Linear(4, 1)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor(w0))
            lin.bias.copy_(lib.tensor(np.zeros(1, np.float32)))
        opt = lib.optim.LBFGS(lin.parameters(), line_search_fn="strong_wolfe", max_iter=10)
        Xt, yt = lib.tensor(X), lib.tensor(y)

        def closure():
            opt.zero_grad()
            loss = ((lin(Xt) - yt) ** 2).mean()
            loss.backward()
            return loss
        for _ in range(3):
            opt.step(closure)
        finals.append(float(closure().detach()))
    assert finals[1] < 1e-6 and finals[0] < 1e-6


def test_lbfgs_errors():
    torch = require_torch()
    p = nc.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        nc.optim.LBFGS([{"params": [p]}, {"params": [nc.zeros(1, requires_grad=True)]}])
    q = torch.ones(1, requires_grad=True)

    def closure():
        loss = (q ** 2).sum()
        loss.backward()
        return loss
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):  # PyTorch finds out in step()
        torch.optim.LBFGS([q], line_search_fn="wolfe").step(closure)
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        nc.optim.LBFGS([p], line_search_fn="wolfe")


# --- schedulers --------------------------------------------------------------------------------------

def _lr_trace(lib, make_opt, make_sched, steps, epochs=None):
    p = lib.zeros(1, requires_grad=True)
    opt = make_opt(lib, p)
    sched = make_sched(lib, opt)
    trace = []
    for i in range(steps):
        opt.step()
        if epochs is None:
            sched.step()
        else:
            sched.step(epochs[i])
        group = opt.param_groups[0]
        trace.append((group["lr"], group.get("momentum"), group.get("betas", (None,))[0], *sched.get_last_lr()))
    return trace, sched


SGD = lambda lib, p: lib.optim.SGD([p], lr=0.1, momentum=0.9)  # noqa: E731
ADAM = lambda lib, p: lib.optim.Adam([p], lr=0.1)  # noqa: E731

SCHEDULES = [
    ("onecycle", SGD, lambda lib, o: lib.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=20), 19),
    ("onecycle-adam-linear", ADAM, lambda lib, o: lib.optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.5, epochs=3, steps_per_epoch=5, anneal_strategy="linear", pct_start=0.4), 14),
    ("onecycle-3phase", SGD, lambda lib, o: lib.optim.lr_scheduler.OneCycleLR(
        o, max_lr=[2.0], total_steps=30, three_phase=True, div_factor=10.0, final_div_factor=100.0,
        base_momentum=0.8, max_momentum=0.9), 29),
    ("onecycle-nomomentum", SGD, lambda lib, o: lib.optim.lr_scheduler.OneCycleLR(
        o, max_lr=1.0, total_steps=10, cycle_momentum=False), 9),
    ("warm-restarts", SGD, lambda lib, o: lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=4), 20),
    ("warm-restarts-mult", SGD, lambda lib, o: lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        o, T_0=3, T_mult=2, eta_min=0.01), 25),
    ("sequential", SGD, lambda lib, o: lib.optim.lr_scheduler.SequentialLR(
        o, [lib.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=4),
            lib.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10)], milestones=[4]), 16),
    ("sequential-3", SGD, lambda lib, o: lib.optim.lr_scheduler.SequentialLR(
        o, [lib.optim.lr_scheduler.ExponentialLR(o, gamma=0.5), lib.optim.lr_scheduler.StepLR(o, 2),
            lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3)], milestones=[3, 7]), 15),
]


@pytest.mark.parametrize("name,make_opt,make_sched,steps", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_scheduler_matches_torch(name, make_opt, make_sched, steps):
    torch = require_torch()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_trace, t_sched = _lr_trace(torch, make_opt, make_sched, steps)
    n_trace, n_sched = _lr_trace(nc, make_opt, make_sched, steps)
    np.testing.assert_allclose(np.array(n_trace, dtype=float), np.array(t_trace, dtype=float), rtol=1e-12,
                               atol=1e-15)


def test_warm_restarts_fractional_epochs_match_torch():
    torch = require_torch()
    import warnings
    epochs = [0.5, 1.25, 2.0, 3.7, 4.1, 9.5, 10.0, 22.3]
    make = lambda lib, o: lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=3)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_trace, _ = _lr_trace(torch, SGD, make, len(epochs), epochs)
    n_trace, _ = _lr_trace(nc, SGD, make, len(epochs), epochs)
    np.testing.assert_allclose(np.array(n_trace, float), np.array(t_trace, float), rtol=1e-12)


@pytest.mark.parametrize("make", [
    lambda lib, o: lib.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0),
    lambda lib, o: lib.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=0),
    lambda lib, o: lib.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, epochs=2, steps_per_epoch=-1),
    lambda lib, o: lib.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=5, pct_start=1.5),
    lambda lib, o: lib.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=5, anneal_strategy="exp"),
    lambda lib, o: lib.optim.lr_scheduler.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=5),
    lambda lib, o: lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=0),
    lambda lib, o: lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0),
    lambda lib, o: lib.optim.lr_scheduler.SequentialLR(o, [], milestones=[]),
    lambda lib, o: lib.optim.lr_scheduler.SequentialLR(o, [lib.optim.lr_scheduler.StepLR(o, 2)], milestones=[3]),
])
def test_scheduler_errors_match_torch(make):
    torch = require_torch()
    with pytest.raises(ValueError) as expected:
        make(torch, SGD(torch, torch.zeros(1, requires_grad=True)))
    with pytest.raises(ValueError) as got:
        make(nc, SGD(nc, nc.zeros(1, requires_grad=True)))
    assert str(got.value) == str(expected.value)


def test_onecycle_too_many_steps_raises_like_torch():
    sched = nc.optim.lr_scheduler.OneCycleLR(SGD(nc, nc.zeros(1, requires_grad=True)), max_lr=1.0, total_steps=2)
    sched.step()
    sched.step()
    with pytest.raises(ValueError, match="Tried to step 3 times. The specified number of total steps is 2"):
        sched.step()
