"""optim.swa_utils against PyTorch: AveragedModel (SWA, EMA by avg_fn and multi_avg_fn, with and
without buffers), SWALR's learning rates, update_bn's running statistics; state_dict layout; errors."""
import numpy as np
import pytest

import neurocore as nc
import neurocore.nn as nn
from neurocore.optim import swa_utils
from helpers import require_torch


def _pair(torch):
    def build(lib):
        return lib.nn.Sequential(lib.nn.Linear(4, 6), lib.nn.BatchNorm1d(6), lib.nn.ReLU(), lib.nn.Linear(6, 2))
    t, n = build(torch), build(nc)
    n.load_state_dict({k: nc.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    return t, n


def _train_step(lib, model, opt, x):
    opt.zero_grad()
    (model(x) ** 2).mean().backward()
    opt.step()


@pytest.mark.parametrize("kind", ["swa", "ema_fn", "ema_multi", "swa_buffers"])
def test_averaged_model_matches_torch(kind):
    torch = require_torch()
    tm, nm = _pair(torch)
    kw = {"swa": {}, "ema_fn": "avg_fn", "ema_multi": "multi_avg_fn", "swa_buffers": {"use_buffers": True}}[kind]

    def make(lib, model, utils):
        if kind == "ema_fn":
            return utils.AveragedModel(model, avg_fn=utils.get_ema_avg_fn(0.9))
        if kind == "ema_multi":
            return utils.AveragedModel(model, multi_avg_fn=utils.get_ema_multi_avg_fn(0.9))
        return utils.AveragedModel(model, **kw)
    import torch.optim.swa_utils as tswa
    ta, na = make(torch, tm, tswa), make(nc, nm, swa_utils)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1)
    nopt = nc.optim.SGD(nm.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.standard_normal((8, 4)).astype(np.float32)
        _train_step(torch, tm, topt, torch.tensor(x))
        _train_step(nc, nm, nopt, nc.tensor(x))
        ta.update_parameters(tm)
        na.update_parameters(nm)
    ts, ns = ta.state_dict(), na.state_dict()
    assert list(ts) == list(ns)
    for k in ts:
        np.testing.assert_allclose(ns[k].numpy(), ts[k].numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    ta.eval(), na.eval()
    np.testing.assert_allclose(na(nc.tensor(x)).detach().numpy(), ta(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strategy,anneal", [("cos", 3), ("linear", 4), ("cos", 0)])
def test_swalr_matches_torch(strategy, anneal):
    torch = require_torch()
    tp = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    np_ = [nn.Parameter(nc.zeros(2)), nn.Parameter(nc.zeros(2))]
    topt = torch.optim.SGD([{"params": tp[:1]}, {"params": tp[1:], "lr": 0.5}], lr=1.0)
    nopt = nc.optim.SGD([{"params": np_[:1]}, {"params": np_[1:], "lr": 0.5}], lr=1.0)
    import torch.optim.swa_utils as tswa
    ts = tswa.SWALR(topt, swa_lr=[0.05, 0.01], anneal_epochs=anneal, anneal_strategy=strategy)
    ns = swa_utils.SWALR(nopt, swa_lr=[0.05, 0.01], anneal_epochs=anneal, anneal_strategy=strategy)
    for _ in range(7):
        np.testing.assert_allclose(ns.get_last_lr(), ts.get_last_lr(), rtol=1e-12)
        topt.step(), nopt.step()
        ts.step(), ns.step()


def test_update_bn_matches_torch():
    torch = require_torch()
    tm, nm = _pair(torch)
    rng = np.random.default_rng(1)
    data = [rng.standard_normal((5, 4)).astype(np.float32) * 3 + 1 for _ in range(4)]
    tm.eval(), nm.eval()
    import torch.optim.swa_utils as tswa
    tswa.update_bn([(torch.tensor(d), 0) for d in data], tm)
    swa_utils.update_bn([(nc.tensor(d), 0) for d in data], nm)
    assert not nm.training and nm[1].momentum == 0.1
    for k in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        np.testing.assert_allclose(nm.state_dict()[k].numpy(), tm.state_dict()[k].numpy(), rtol=1e-5, err_msg=k)


def test_errors():
    opt = nc.optim.SGD([nn.Parameter(nc.zeros(2))], lr=1.0)
    with pytest.raises(ValueError, match=r"\[SWALR\].*anneal_strategy"):
        swa_utils.SWALR(opt, 0.1, anneal_strategy="step")
    with pytest.raises(ValueError, match=r"\[SWALR\].*one value per parameter group"):
        swa_utils.SWALR(opt, [0.1, 0.2])
    with pytest.raises(ValueError, match=r"\[AveragedModel\].*only one"):
        swa_utils.AveragedModel(nn.Linear(2, 2), avg_fn=swa_utils.get_ema_avg_fn(),
                                multi_avg_fn=swa_utils.get_ema_multi_avg_fn())
