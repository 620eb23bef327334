"""Learning-rate schedulers (nc.optim.lr_scheduler) against PyTorch: the lr sequence over 30 epochs,
ReduceLROnPlateau on scripted metrics, state_dict resume and argument validation."""
import pickle
import warnings

import numpy as np
import pytest

import neurocore as nc
from helpers import rand, require_torch

EPOCHS = 30
LRS = (0.1, 0.03)  # two parameter groups with different base lrs

SCHEDULERS = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 9], gamma=0.3)),
    ("MultiStepLR", dict(milestones=[4, 4, 7], gamma=0.5)),  # a repeated milestone applies gamma twice
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01)),
    ("CosineAnnealingLR", dict(T_max=5)),
    ("LambdaLR", dict(lr_lambda=lambda e: 0.95 ** e)),
    ("LambdaLR", dict(lr_lambda=[lambda e: 0.95 ** e, lambda e: 1.0 / (1 + e)])),
    ("LinearLR", dict(start_factor=0.25, total_iters=6)),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.1, total_iters=4)),
    ("LinearLR", dict()),
]
IDS = [f"{name}{i}" for i, (name, _) in enumerate(SCHEDULERS)]


def _optimizers(torch, name="SGD", **kwargs):
    a, b = rand((3, 2)), rand((4,), seed=1)
    n_params = [nc.tensor(a, requires_grad=True), nc.tensor(b, requires_grad=True)]
    t_params = [torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)]
    nopt = getattr(nc.optim, name)([dict(params=[n_params[0]], lr=LRS[0]), dict(params=[n_params[1]], lr=LRS[1])],
                                   **kwargs)
    topt = getattr(torch.optim, name)([dict(params=[t_params[0]], lr=LRS[0]), dict(params=[t_params[1]], lr=LRS[1])],
                                      **kwargs)
    return nopt, topt


def _sequence(opt, sched, epochs):
    out = []
    for _ in range(epochs):
        opt.step()
        sched.step()
        out.append(list(sched.get_last_lr()))
        assert out[-1] == [g["lr"] for g in opt.param_groups]
    return out


def _assert_seq(actual, expected):
    a, e = np.array(actual, dtype=np.float64), np.array(expected, dtype=np.float64)
    assert a.shape == e.shape
    np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


@pytest.mark.torch
@pytest.mark.parametrize("name,kwargs", SCHEDULERS, ids=IDS)
def test_lr_sequence_matches_torch(name, kwargs):
    torch = require_torch()
    nopt, topt = _optimizers(torch)
    nsched = getattr(nc.optim.lr_scheduler, name)(nopt, **kwargs)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    _assert_seq([nsched.get_last_lr()], [tsched.get_last_lr()])
    assert nsched.base_lrs == list(LRS)
    assert [g["initial_lr"] for g in nopt.param_groups] == list(LRS)
    _assert_seq(_sequence(nopt, nsched, EPOCHS), _sequence(topt, tsched, EPOCHS))
    assert nsched.last_epoch == tsched.last_epoch == EPOCHS


@pytest.mark.torch
@pytest.mark.parametrize("name,kwargs", SCHEDULERS[:2] + SCHEDULERS[3:5], ids=IDS[:2] + IDS[3:5])
def test_scheduler_drives_optimizer_like_torch(name, kwargs):
    """The scheduled lr is what the next optimizer step uses: Adam trajectories stay equal."""
    torch = require_torch()
    nopt, topt = _optimizers(torch, "Adam")
    nsched = getattr(nc.optim.lr_scheduler, name)(nopt, **kwargs)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    nps = [p for g in nopt.param_groups for p in g["params"]]
    tps = [p for g in topt.param_groups for p in g["params"]]
    for epoch in range(12):
        for n, t in zip(nps, tps):
            g = np.cos(t.detach().numpy()) + 0.2
            n.grad, t.grad = nc.tensor(np.cos(n.detach().numpy()) + 0.2), torch.tensor(g)
        nopt.step()
        topt.step()
        nsched.step()
        tsched.step()
        for n, t in zip(nps, tps):
            np.testing.assert_allclose(n.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"epoch {epoch}")


@pytest.mark.torch
@pytest.mark.parametrize("name,kwargs", SCHEDULERS, ids=IDS)
@pytest.mark.parametrize("via_pickle", [False, True])
def test_state_dict_resume(name, kwargs, via_pickle):
    """Save after 11 epochs, rebuild optimizer + scheduler, load both state_dicts: the continuation
    equals the uninterrupted run (and torch's)."""
    torch = require_torch()
    nopt, topt = _optimizers(torch)
    full = _sequence(nopt, getattr(nc.optim.lr_scheduler, name)(nopt, **kwargs), EPOCHS)
    _assert_seq(full, _sequence(topt, getattr(torch.optim.lr_scheduler, name)(topt, **kwargs), EPOCHS))

    nopt, _ = _optimizers(torch)
    sched = getattr(nc.optim.lr_scheduler, name)(nopt, **kwargs)
    head = _sequence(nopt, sched, 11)
    osd, ssd = nopt.state_dict(), sched.state_dict()
    assert "optimizer" not in ssd
    assert ssd["last_epoch"] == 11
    if via_pickle and name != "LambdaLR":
        osd, ssd = pickle.loads(pickle.dumps((osd, ssd)))
    # keep going on the original: the saved dicts must not change
    _sequence(nopt, sched, 3)

    nopt2, _ = _optimizers(torch)
    sched2 = getattr(nc.optim.lr_scheduler, name)(nopt2, **kwargs)
    nopt2.load_state_dict(osd)
    sched2.load_state_dict(ssd)
    assert sched2.get_last_lr() == head[-1]
    tail = _sequence(nopt2, sched2, EPOCHS - 11)
    _assert_seq(head + tail, full)


@pytest.mark.torch
def test_resume_with_last_epoch():
    """Constructing with last_epoch=k on an optimizer that has initial_lr continues like torch."""
    torch = require_torch()
    nopt, topt = _optimizers(torch)
    for opt in (nopt, topt):
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nsched = nc.optim.lr_scheduler.StepLR(nopt, step_size=3, gamma=0.5, last_epoch=4)
        tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=3, gamma=0.5, last_epoch=4)
    _assert_seq([nsched.get_last_lr()], [tsched.get_last_lr()])
    _assert_seq(_sequence(nopt, nsched, 10), _sequence(topt, tsched, 10))
    nopt, _ = _optimizers(torch)
    with pytest.raises(KeyError):
        nc.optim.lr_scheduler.StepLR(nopt, step_size=3, last_epoch=4)


@pytest.mark.torch
@pytest.mark.parametrize("name,kwargs", [("StepLR", dict(step_size=3, gamma=0.5)), ("ExponentialLR", dict(gamma=0.9)),
                                         ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01)),
                                         ("MultiStepLR", dict(milestones=[2, 5, 9], gamma=0.3)),
                                         ("LinearLR", dict(start_factor=0.25, total_iters=6))])
def test_step_with_explicit_epoch(name, kwargs):
    """step(epoch) (deprecated in torch) uses the closed form where torch has one."""
    torch = require_torch()
    nopt, topt = _optimizers(torch)
    nsched = getattr(nc.optim.lr_scheduler, name)(nopt, **kwargs)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    seq_n, seq_t = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in [1, 2, 6, 7, 3, 10, 15]:
            nopt.step()
            topt.step()
            nsched.step(epoch)
            tsched.step(epoch)
            seq_n.append(nsched.get_last_lr())
            seq_t.append(tsched.get_last_lr())
    _assert_seq(seq_n, seq_t)


# --------------------------------------------------------------------------------------------------
# ReduceLROnPlateau
# --------------------------------------------------------------------------------------------------
METRICS = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.85, 0.85, 0.8499, 0.85, 0.86, 0.87, 0.5, 0.5, 0.5, 0.5, 0.5,
           0.49995, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.39, 0.39, 0.39, 0.39, 0.39, 0.39, 0.39,
           0.39, 0.39, 0.39, 0.39, 0.39]

PLATEAU = [
    dict(factor=0.5, patience=2, cooldown=2, min_lr=0.004),
    dict(factor=0.5, patience=2, cooldown=0),
    dict(factor=0.3, patience=0, cooldown=1, min_lr=[0.01, 0.001]),
    dict(factor=0.5, patience=2, cooldown=2, threshold_mode="abs", threshold=0.02),
    dict(mode="max", factor=0.5, patience=2, cooldown=2, min_lr=0.004),
    dict(mode="max", factor=0.5, patience=1, threshold_mode="abs", threshold=0.05),
    dict(factor=0.5, patience=1, eps=0.05),  # reductions smaller than eps are skipped
    dict(),
]


def _plateau_metrics(kwargs):
    return [2.0 - m for m in METRICS] if kwargs.get("mode") == "max" else list(METRICS)


@pytest.mark.torch
@pytest.mark.parametrize("kwargs", PLATEAU, ids=[str(i) for i in range(len(PLATEAU))])
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    torch = require_torch()
    nopt, topt = _optimizers(torch)
    nsched = nc.optim.lr_scheduler.ReduceLROnPlateau(nopt, **kwargs)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kwargs)
    assert nsched.get_last_lr() == list(LRS)
    seq_n, seq_t = [], []
    for i, m in enumerate(_plateau_metrics(kwargs)):
        nopt.step()
        topt.step()
        nsched.step(nc.tensor(m, dtype=nc.float64) if i % 3 == 0 else m)  # a 0-d tensor metric is accepted too
        tsched.step(m)
        seq_n.append(list(nsched.get_last_lr()))
        seq_t.append(list(tsched.get_last_lr()))
        assert seq_n[-1] == [g["lr"] for g in nopt.param_groups]
        assert nsched.num_bad_epochs == tsched.num_bad_epochs, f"epoch {i}"
        assert nsched.cooldown_counter == tsched.cooldown_counter, f"epoch {i}"
        assert nsched.best == tsched.best, f"epoch {i}"
    _assert_seq(seq_n, seq_t)
    if kwargs.get("patience") == 2:
        assert len({tuple(s) for s in seq_t}) > 2  # the script does reduce the lr several times


@pytest.mark.torch
def test_reduce_lr_on_plateau_state_dict_resume():
    torch = require_torch()
    kwargs = dict(factor=0.5, patience=2, cooldown=2, min_lr=0.004)
    nopt, topt = _optimizers(torch)
    nsched = nc.optim.lr_scheduler.ReduceLROnPlateau(nopt, **kwargs)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kwargs)
    expected = []
    for m in METRICS:
        tsched.step(m)
        expected.append(list(tsched.get_last_lr()))
    got = []
    for m in METRICS[:15]:
        nsched.step(m)
        got.append(list(nsched.get_last_lr()))
    osd, ssd = pickle.loads(pickle.dumps((nopt.state_dict(), nsched.state_dict())))
    assert "optimizer" not in ssd
    nopt2, _ = _optimizers(torch)
    nsched2 = nc.optim.lr_scheduler.ReduceLROnPlateau(nopt2, **kwargs)
    nopt2.load_state_dict(osd)
    nsched2.load_state_dict(ssd)
    for m in METRICS[15:]:
        nsched2.step(m)
        got.append(list(nsched2.get_last_lr()))
    _assert_seq(got, expected)


def test_reduce_lr_on_plateau_bad_args():
    p = nc.tensor(rand((2,)), requires_grad=True)
    opt = nc.optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError):
        nc.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError):
        nc.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="maximum")
    with pytest.raises(ValueError):
        nc.optim.lr_scheduler.ReduceLROnPlateau(opt, threshold_mode="relative")
    with pytest.raises(ValueError):
        nc.optim.lr_scheduler.ReduceLROnPlateau(opt, min_lr=[0.1, 0.2])


def test_scheduler_bad_args():
    p = nc.tensor(rand((2,)), requires_grad=True)
    opt = nc.optim.SGD([p], lr=0.1)
    with pytest.raises(TypeError):
        nc.optim.lr_scheduler.StepLR(object(), step_size=2)
    with pytest.raises(ValueError):
        nc.optim.lr_scheduler.LambdaLR(opt, [lambda e: 1.0, lambda e: 2.0])
    with pytest.raises(ValueError):
        nc.optim.lr_scheduler.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError):
        nc.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, end_factor=1.5)
