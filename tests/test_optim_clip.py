"""neurocore.nn.utils.clip_grad_norm_ / clip_grad_value_ vs torch.nn.utils (one fused call each)."""
import math

import numpy as np
import pytest

import neurocore as nc
from neurocore.nn.utils import clip_grad_norm_, clip_grad_value_
from helpers import require_torch

pytestmark = pytest.mark.torch

SHAPES = [(4, 5), (7,), (), (2, 3, 2)]
TOLS = {np.float32: dict(rtol=1e-5, atol=1e-7), np.float64: dict(rtol=1e-10, atol=1e-14)}


def pair(torch, dtype, seed=0, scale=1.0, with_none=True):
    """Matching torch/neurocore params with grads; the last param has no grad."""
    rng = np.random.default_rng(seed)
    grads = [np.asarray(rng.uniform(-1, 1, size=s) * scale).astype(dtype) for s in SHAPES]
    t_ps, n_ps = [], []
    for g in grads:
        t_ps.append(torch.zeros(g.shape, dtype=torch.float32 if dtype == np.float32 else torch.float64,
                                requires_grad=True))
        t_ps[-1].grad = torch.tensor(g)
        n_ps.append(nc.tensor(np.zeros(g.shape, dtype), requires_grad=True))
        n_ps[-1].grad = nc.tensor(g)
    if with_none:
        t_ps.append(torch.zeros(3, requires_grad=True))
        n_ps.append(nc.tensor(np.zeros(3, np.float32), requires_grad=True))
    return t_ps, n_ps


def assert_grads(t_ps, n_ps, tol):
    for tp, np_ in zip(t_ps, n_ps):
        if tp.grad is None:
            assert np_.grad is None
        else:
            np.testing.assert_allclose(np_.grad.numpy(), tp.grad.numpy(), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, -math.inf, 0, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(dtype, norm_type, max_norm):
    torch = require_torch()
    t_ps, n_ps = pair(torch, dtype)
    t_total = torch.nn.utils.clip_grad_norm_(t_ps, max_norm, norm_type=norm_type)
    n_total = clip_grad_norm_(n_ps, max_norm, norm_type=norm_type)
    assert n_total.shape == () and n_total.dtype == (nc.float32 if dtype == np.float32 else nc.float64)
    np.testing.assert_allclose(n_total.numpy(), t_total.numpy(), **TOLS[dtype])
    assert_grads(t_ps, n_ps, TOLS[dtype])


def test_clip_grad_norm_single_tensor_and_empty():
    torch = require_torch()
    t_ps, n_ps = pair(torch, np.float64, seed=1, scale=10.0)
    t_total = torch.nn.utils.clip_grad_norm_(t_ps[0], 1.0)
    n_total = clip_grad_norm_(n_ps[0], 1.0)
    np.testing.assert_allclose(n_total.numpy(), t_total.numpy(), rtol=1e-12)
    assert_grads(t_ps, n_ps, TOLS[np.float64])
    empty = clip_grad_norm_([nc.tensor(np.zeros(2), requires_grad=True)], 1.0)
    assert float(empty) == 0.0


def test_clip_grad_norm_nonfinite():
    torch = require_torch()
    t_ps, n_ps = pair(torch, np.float64, seed=2)
    bad = np.array([1.0, np.nan])
    t_p, n_p = torch.zeros(2, dtype=torch.float64, requires_grad=True), nc.tensor(np.zeros(2), requires_grad=True)
    t_p.grad, n_p.grad = torch.tensor(bad), nc.tensor(bad)
    with pytest.raises(RuntimeError, match=r"\[clip_grad_norm_\] The total norm of order 2.0 for gradients .* "
                                           "non-finite"):
        clip_grad_norm_(n_ps + [n_p], 1.0, error_if_nonfinite=True)
    t_total = torch.nn.utils.clip_grad_norm_(t_ps + [t_p], 1.0)
    n_total = clip_grad_norm_(n_ps + [n_p], 1.0)
    assert math.isnan(float(n_total)) and math.isnan(float(t_total))
    assert np.isnan(n_ps[0].grad.numpy()).all() and torch.isnan(t_ps[0].grad).all()


def test_clip_grad_norm_thread_count_invariant():
    rng = np.random.default_rng(3)
    g = rng.standard_normal(300_001).astype(np.float32)
    old = nc.get_num_threads()
    totals, grads = [], []
    try:
        for threads in (1, 2, 3):
            nc.set_num_threads(threads)
            p = nc.tensor(np.zeros_like(g), requires_grad=True)
            p.grad = nc.tensor(g)
            totals.append(float(clip_grad_norm_([p], 1.0)))
            grads.append(p.grad.numpy())
    finally:
        nc.set_num_threads(old)
    assert totals[0] == totals[1] == totals[2]
    np.testing.assert_array_equal(grads[0], grads[1])
    np.testing.assert_array_equal(grads[0], grads[2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value_matches_torch(dtype):
    torch = require_torch()
    t_ps, n_ps = pair(torch, dtype, seed=4, scale=2.0)
    n_ps[1].grad = nc.tensor(np.array([np.nan, -5, 5, 0.1, -0.1, 0.3, 9], dtype))
    t_ps[1].grad = torch.tensor(np.array([np.nan, -5, 5, 0.1, -0.1, 0.3, 9], dtype))
    torch.nn.utils.clip_grad_value_(t_ps, 0.25)
    assert clip_grad_value_(n_ps, 0.25) is None
    assert_grads(t_ps, n_ps, dict(rtol=0, atol=0))


def test_clip_non_contiguous_grad_in_place():
    a = np.random.default_rng(5).uniform(-3, 3, (3, 4))
    p = nc.tensor(np.zeros((4, 3)), requires_grad=True)
    p.grad = nc.tensor(a).transpose(0, 1)
    assert not p.grad.is_contiguous()
    clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad.numpy(), np.clip(a.T, -1, 1))
    total = clip_grad_norm_([p], 0.1)
    np.testing.assert_allclose(float(total), np.linalg.norm(np.clip(a, -1, 1)), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(p.grad.numpy()), 0.1, rtol=1e-5)


def test_clip_bad_input():
    with pytest.raises(TypeError, match=r"\[clip_grad_norm_\] expected tensors, got float"):
        clip_grad_norm_([1.0], 1.0)
    with pytest.raises(TypeError, match=r"\[clip_grad_value_\] expected tensors, got str"):
        clip_grad_value_(["x"], 1.0)
    with pytest.raises(ValueError):
        clip_grad_norm_([nc.tensor(np.zeros(2), requires_grad=True)], 1.0, norm_type="two")
