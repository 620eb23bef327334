"""Losses (functional and nn modules) against PyTorch: parity, gradients, stability, empty and bad inputs."""
import numpy as np
import pytest

import neurocore as nc
import neurocore.nn.functional as NF
from helpers import check_op, gradcheck, rand, require_torch

DTYPES = [np.float32, np.float64]
REDUCTIONS = ["mean", "sum", "none"]


def targets(shape, c, seed=0, ignore=None):
    t = np.random.default_rng(seed).integers(0, c, size=shape).astype(np.int64)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    return t


def probs(shape, seed=0, axis=1):
    p = rand(shape, seed=seed, low=0.1, high=1.0)
    return p / p.sum(axis=axis, keepdims=True)


# ----------------------------------------------------------------------------- cross_entropy / nll_loss

CE_SHAPES = [((5, 4), (5,)), ((4,), ()), ((3, 4, 2, 3), (3, 2, 3))]
CE_OPTS = [dict(), dict(weight=True), dict(ignore_index=1), dict(weight=True, ignore_index=2), dict(ignore_index=-100, ign=True),
           dict(label_smoothing=0.2), dict(weight=True, label_smoothing=0.1), dict(weight=True, ignore_index=0, label_smoothing=0.3)]


def _ce_case(xshape, tshape, opts, seed=0):
    c = xshape[1] if len(xshape) > 1 else xshape[0]
    opts = dict(opts)
    opts.pop("ign", False)
    tgt = targets(tshape, c, seed=seed + 1)
    if "ignore_index" in opts and tgt.ndim:
        tgt.reshape(-1)[::3] = opts["ignore_index"]  # some targets hit ignore_index (-100 too, when ign)
    w = rand((c,), seed=seed + 2, low=0.2, high=2.0) if opts.pop("weight", False) else None
    return rand(xshape, seed=seed, low=-3, high=3), tgt, w, opts


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", CE_OPTS, ids=str)
@pytest.mark.parametrize("xshape,tshape", CE_SHAPES, ids=["NC", "C", "NCd1d2"])
def test_cross_entropy_indices(xshape, tshape, opts, reduction, dtype):
    x, tgt, w, kw = _ce_case(xshape, tshape, opts)
    arrays = [x, tgt] + ([w] if w is not None else [])
    fn = lambda m, a, t, *ww: m.nn.functional.cross_entropy(a, t, *ww, reduction=reduction, **kw)  # noqa: E731
    check_op(fn, fn, arrays, dtype=dtype, grad_inputs=[0], rtol=1e-4 if dtype == np.float32 else None)
    if reduction != "none" and xshape == (5, 4):
        gradcheck(lambda a: NF.cross_entropy(a, nc.tensor(tgt), None if w is None else nc.tensor(w),
                                             reduction=reduction, **kw), [x])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", [dict(), dict(weight=True), dict(label_smoothing=0.25), dict(weight=True, label_smoothing=0.1)], ids=str)
@pytest.mark.parametrize("xshape", [(5, 4), (4,), (2, 4, 3, 2)], ids=["NC", "C", "NCd1d2"])
def test_cross_entropy_probabilities(xshape, opts, reduction, dtype):
    c = xshape[1] if len(xshape) > 1 else xshape[0]
    x = rand(xshape, low=-3, high=3)
    p = probs(xshape, seed=1, axis=1 if len(xshape) > 1 else 0)
    w = rand((c,), seed=2, low=0.2, high=2.0) if opts.get("weight") else None
    kw = {k: v for k, v in opts.items() if k != "weight"}
    arrays = [x, p] + ([w] if w is not None else [])
    fn = lambda m, a, t, *ww: m.nn.functional.cross_entropy(a, t, *ww, reduction=reduction, **kw)  # noqa: E731
    # gradients w.r.t. both logits and the soft target
    check_op(fn, fn, arrays, dtype=dtype, grad_inputs=[0, 1], rtol=1e-4 if dtype == np.float32 else None)
    if reduction != "none" and xshape == (5, 4):
        gradcheck(lambda a, t: NF.cross_entropy(a, t, None if w is None else nc.tensor(w), reduction=reduction, **kw), [x, p])


NLL_OPTS = [dict(), dict(weight=True), dict(ignore_index=2), dict(weight=True, ignore_index=0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", NLL_OPTS, ids=str)
@pytest.mark.parametrize("xshape,tshape", CE_SHAPES, ids=["NC", "C", "NCd1d2"])
def test_nll_loss(xshape, tshape, opts, reduction, dtype):
    x, tgt, w, kw = _ce_case(xshape, tshape, opts, seed=4)
    arrays = [x, tgt] + ([w] if w is not None else [])
    fn = lambda m, a, t, *ww: m.nn.functional.nll_loss(a, t, *ww, reduction=reduction, **kw)  # noqa: E731
    check_op(fn, fn, arrays, dtype=dtype, grad_inputs=[0])
    if reduction != "none" and xshape == (5, 4):
        gradcheck(lambda a: NF.nll_loss(a, nc.tensor(tgt), None if w is None else nc.tensor(w), reduction=reduction, **kw), [x])


def test_cross_entropy_all_ignored_mean_is_nan():
    fn = lambda m, a, t: m.nn.functional.cross_entropy(a, t, ignore_index=1)  # noqa: E731
    out = check_op(fn, fn, [rand((3, 4)), np.ones(3, np.int64)], dtype=np.float64)
    assert np.isnan(out.item())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["cross_entropy", "nll_via_log_softmax"])
def test_cross_entropy_stability_large_logits(fn, dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [-1e4, -1e4, -1e4 + 5.0], [1e4, -1e4, -1e4]])
    tgt = np.array([1, 2, 0, 0], np.int64)
    if fn == "cross_entropy":
        f = lambda m, a, t: m.nn.functional.cross_entropy(a, t, reduction="none")  # noqa: E731
    else:
        f = lambda m, a, t: m.nn.functional.nll_loss(m.nn.functional.log_softmax(a, 1), t, reduction="none")  # noqa: E731
    out = check_op(f, f, [x, tgt], dtype=dtype)
    assert np.all(np.isfinite(out.detach().numpy()))
    f2 = lambda m, a, t: m.nn.functional.cross_entropy(a, t, label_smoothing=0.1)  # noqa: E731
    check_op(f2, f2, [x, tgt], dtype=dtype)
    f3 = lambda m, a, t: m.nn.functional.cross_entropy(a, t)  # noqa: E731
    check_op(f3, f3, [x, probs((4, 3), seed=5)], dtype=dtype, grad_inputs=[0])


# ----------------------------------------------------------------------------- regression losses

REG = {
    "mse_loss": [dict()], "l1_loss": [dict()],
    "huber_loss": [dict(), dict(delta=0.5), dict(delta=2.0)],
    "smooth_l1_loss": [dict(), dict(beta=0.5), dict(beta=2.0), dict(beta=0.0)],
}
REG_CASES = [(f, kw) for f, kws in REG.items() for kw in kws]


def _away_from_kinks(shape, kw, seed=0):
    """input/target pairs whose differences avoid 0 and +-delta/beta (where l1/huber have kinks)."""
    x = rand(shape, seed=seed, low=-2, high=2)
    k = kw.get("delta", kw.get("beta", 1.0))
    d = rand(shape, seed=seed + 1, low=0.1, high=2.5)
    d = np.where(np.abs(d - k) < 0.1, d + 0.25, d) * np.where(rand(shape, seed=seed + 2) > 0, 1, -1)
    return x, x - d


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("fname,kw", REG_CASES, ids=[f"{f}-{kw}" for f, kw in REG_CASES])
def test_regression_losses(fname, kw, reduction, dtype):
    x, y = _away_from_kinks((4, 5), kw)
    fn = lambda m, a, b: getattr(m.nn.functional, fname)(a, b, reduction=reduction, **kw)  # noqa: E731
    check_op(fn, fn, [x, y], dtype=dtype)
    gradcheck(lambda a, b: getattr(NF, fname)(a, b, reduction=reduction, **kw), [x[:2, :3], y[:2, :3]])


@pytest.mark.parametrize("fname", ["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss"])
def test_regression_losses_scalar_and_shape_mismatch(fname):
    fn = lambda m, a, b: getattr(m.nn.functional, fname)(a, b)  # noqa: E731
    x, y = _away_from_kinks((), {})
    check_op(fn, fn, [np.asarray(x), np.asarray(y)], dtype=np.float64)
    # torch warns and broadcasts here; neurocore refuses, naming both shapes
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(4,\)"):
        fn(nc, nc.tensor(rand((3, 4))), nc.tensor(rand((4,), seed=3)))


# ----------------------------------------------------------------------------- binary cross entropy

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [None, "full", "bcast"])
def test_binary_cross_entropy(weight, reduction, dtype):
    p = rand((4, 3), low=0.05, high=0.95)
    y = rand((4, 3), seed=1, low=0.0, high=1.0)
    w = {None: None, "full": rand((4, 3), seed=2, low=0.2, high=2), "bcast": rand((3,), seed=2, low=0.2, high=2)}[weight]
    arrays = [p, y] + ([w] if w is not None else [])
    fn = lambda m, a, t, *ww: m.nn.functional.binary_cross_entropy(a, t, *ww, reduction=reduction)  # noqa: E731
    check_op(fn, fn, arrays, dtype=dtype, grad_inputs=[0], rtol=1e-4 if dtype == np.float32 else None)
    gradcheck(lambda a: NF.binary_cross_entropy(a, nc.tensor(y), None if w is None else nc.tensor(w), reduction=reduction), [p])


def test_binary_cross_entropy_target_grad():
    fn = lambda m, a, t: m.nn.functional.binary_cross_entropy(a, t)  # noqa: E731
    check_op(fn, fn, [rand((4, 3), low=0.05, high=0.95), rand((4, 3), seed=1, low=0, high=1)], dtype=np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_cross_entropy_log_clamp(dtype):
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 1e-30])
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    fn = lambda m, a, t: m.nn.functional.binary_cross_entropy(a, t, reduction="none")  # noqa: E731
    out = check_op(fn, fn, [p, y], dtype=dtype, grad=False)
    np.testing.assert_allclose(out.numpy()[[2, 3]], [100.0, 100.0])
    assert np.all(np.isfinite(out.numpy()))
    # gradients at the clamped ends are finite and match torch's
    # (torch divides by max(p * (1 - p), 1e-12): 0 where p == y, -+1e12 where p and y disagree)
    check_op(fn, fn, [np.array([0.0, 1.0, 0.0, 1.0, 0.3]), np.array([0.0, 1.0, 1.0, 0.0, 1.0])], dtype=dtype)


def test_binary_cross_entropy_out_of_range_raises():
    with pytest.raises((ValueError, RuntimeError)):
        NF.binary_cross_entropy(nc.tensor(np.array([1.5, 0.5])), nc.tensor(np.array([1.0, 0.0])))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight,pos_weight", [(None, None), ("full", None), (None, "C"), ("bcast", "C"), ("full", "full")])
def test_bce_with_logits(weight, pos_weight, reduction, dtype):
    x = rand((4, 3), low=-4, high=4)
    y = rand((4, 3), seed=1, low=0.0, high=1.0)
    pick = {None: None, "full": rand((4, 3), seed=2, low=0.2, high=2), "bcast": rand((3,), seed=2, low=0.2, high=2),
            "C": rand((3,), seed=3, low=0.2, high=3)}
    w, pw = pick[weight], (pick[pos_weight] if pos_weight != "full" else rand((4, 3), seed=4, low=0.2, high=3))
    arrays = [x, y] + [a for a in (w, pw) if a is not None]

    def fn(m, a, t, *rest):
        rest = list(rest)
        kw = dict(weight=rest.pop(0) if w is not None else None, pos_weight=rest.pop(0) if pw is not None else None)
        return m.nn.functional.binary_cross_entropy_with_logits(a, t, reduction=reduction, **kw)
    check_op(fn, fn, arrays, dtype=dtype, grad_inputs=[0, 1], rtol=1e-4 if dtype == np.float32 else None)
    gradcheck(lambda a, t: NF.binary_cross_entropy_with_logits(
        a, t, None if w is None else nc.tensor(w), reduction=reduction, pos_weight=None if pw is None else nc.tensor(pw)), [x, y])


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_stability(dtype):
    x = np.array([1e4, -1e4, 1e4, -1e4, 0.0, 50.0, -50.0])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.0, 1.0])
    pw = np.array([2.0])
    for kw in (dict(), dict(pos_weight=True)):
        def fn(m, a, t, *p):
            return m.nn.functional.binary_cross_entropy_with_logits(a, t, reduction="none", pos_weight=p[0] if p else None)
        out = check_op(fn, fn, [x, y] + ([pw] if kw else []), dtype=dtype, grad_inputs=[0, 1])
        assert np.all(np.isfinite(out.detach().numpy()))


# ----------------------------------------------------------------------------- empty and bad inputs

def test_empty_batch():
    fn = lambda m, a, t: m.nn.functional.cross_entropy(a, t)  # noqa: E731
    out = check_op(fn, fn, [np.zeros((0, 4)), np.zeros((0,), np.int64)], dtype=np.float32, grad=False)
    assert np.isnan(out.item())
    for red in ("sum", "none"):
        f = lambda m, a, t: m.nn.functional.cross_entropy(a, t, reduction=red)  # noqa: E731
        check_op(f, f, [np.zeros((0, 4)), np.zeros((0,), np.int64)], dtype=np.float32)
    f = lambda m, a, b: m.nn.functional.mse_loss(a, b)  # noqa: E731
    assert np.isnan(check_op(f, f, [np.zeros((0, 3)), np.zeros((0, 3))], dtype=np.float32, grad=False).item())


def test_bad_inputs():
    x = nc.tensor(rand((3, 4), np.float32))
    with pytest.raises(IndexError, match="out of bounds"):
        NF.cross_entropy(x, nc.tensor(np.array([0, 4, 1], np.int64)))
    with pytest.raises(IndexError, match="out of bounds"):
        NF.cross_entropy(x, nc.tensor(np.array([0, -1, 1], np.int64)))
    with pytest.raises(IndexError, match="out of bounds"):
        NF.nll_loss(x, nc.tensor(np.array([0, 7, 1], np.int64)))
    with pytest.raises(ValueError) as e:
        NF.cross_entropy(x, nc.tensor(np.array([0, 1], np.int64)))
    assert "(3, 4)" in str(e.value) and "(2,)" in str(e.value) or ("[3, 4]" in str(e.value) and "[2]" in str(e.value))
    with pytest.raises(ValueError):
        NF.cross_entropy(nc.tensor(rand((2, 3, 4), np.float32)), nc.tensor(np.zeros((2, 3), np.int64)))
    with pytest.raises(ValueError):
        NF.cross_entropy(x, nc.tensor(rand((3, 5), np.float32)))
    with pytest.raises(ValueError):
        NF.cross_entropy(x, nc.tensor(rand((4, 3), np.float32)))
    with pytest.raises(TypeError):
        NF.cross_entropy(nc.tensor(np.zeros((3, 4), np.int64)), nc.tensor(np.array([0, 1, 2], np.int64)))
    with pytest.raises(ValueError):
        NF.cross_entropy(x, nc.tensor(np.array([0, 1, 2], np.int64)), weight=nc.ones(3))
    for f in (lambda r: NF.cross_entropy(x, nc.tensor(np.array([0, 1, 2], np.int64)), reduction=r),
              lambda r: NF.nll_loss(x, nc.tensor(np.array([0, 1, 2], np.int64)), reduction=r),
              lambda r: NF.mse_loss(x, x, reduction=r), lambda r: NF.l1_loss(x, x, reduction=r),
              lambda r: NF.huber_loss(x, x, reduction=r), lambda r: NF.smooth_l1_loss(x, x, reduction=r),
              lambda r: NF.binary_cross_entropy(nc.sigmoid(x), nc.sigmoid(x), reduction=r),
              lambda r: NF.binary_cross_entropy_with_logits(x, nc.sigmoid(x), reduction=r)):
        with pytest.raises(ValueError, match="reduction"):
            f("bogus")
    with pytest.raises(ValueError):
        NF.mse_loss(x, nc.tensor(rand((3, 5), np.float32)))
    with pytest.raises(ValueError):
        NF.binary_cross_entropy_with_logits(x, nc.tensor(rand((3, 5), np.float32)))


# ----------------------------------------------------------------------------- modules

MODULES = [
    ("CrossEntropyLoss", {}, "idx"), ("CrossEntropyLoss", dict(reduction="sum", label_smoothing=0.1, ignore_index=1), "idx"),
    ("CrossEntropyLoss", dict(weight=True), "idx"), ("CrossEntropyLoss", {}, "prob"),
    ("NLLLoss", {}, "idx"), ("NLLLoss", dict(weight=True, reduction="none"), "idx"),
    ("MSELoss", {}, "reg"), ("L1Loss", dict(reduction="sum"), "reg"), ("HuberLoss", dict(delta=0.5), "reg"),
    ("SmoothL1Loss", dict(beta=0.5, reduction="none"), "reg"), ("BCELoss", {}, "bce"), ("BCELoss", dict(weight=True), "bce"),
    ("BCEWithLogitsLoss", {}, "bcel"), ("BCEWithLogitsLoss", dict(weight=True, pos_weight=True), "bcel"),
]


@pytest.mark.parametrize("name,kw,kind", MODULES, ids=[f"{m[0]}-{m[1]}-{m[2]}" for m in MODULES])
def test_loss_modules(name, kw, kind):
    torch = require_torch()
    x = rand((5, 4), low=-2, high=2)
    y = {"idx": targets((5,), 4, seed=1), "prob": probs((5, 4), seed=1), "reg": rand((5, 4), seed=1),
         "bce": rand((5, 4), seed=1, low=0, high=1), "bcel": rand((5, 4), seed=1, low=0, high=1)}[kind]
    if kind == "idx" and kw.get("ignore_index") is not None:
        y[0] = kw["ignore_index"]
    if kind == "bce":
        x = rand((5, 4), low=0.05, high=0.95)
    if kind == "idx" and name == "NLLLoss":
        x = np.log(probs((5, 4), seed=2))
    wt = rand((4,), seed=3, low=0.2, high=2)
    pwt = rand((4,), seed=4, low=0.2, high=2)

    def build(m, dtype=np.float64):
        kw2 = dict(kw)
        if kw2.get("weight"):
            kw2["weight"] = m.tensor(wt.astype(dtype))
        if kw2.get("pos_weight"):
            kw2["pos_weight"] = m.tensor(pwt.astype(dtype))
        return getattr(m.nn, name)(**kw2)
    tmod, nmod = build(torch), build(nc)
    check_op(lambda t, a, b: tmod(a, b), lambda n, a, b: nmod(a, b), [x, y], dtype=np.float64, grad_inputs=[0])
    check_op(lambda t, a, b: build(t, np.float32)(a, b), lambda n, a, b: build(n, np.float32)(a, b), [x, y],
             dtype=np.float32, grad_inputs=[0], rtol=1e-4)
    assert str(nmod) == str(tmod), f"{str(nmod)!r} != {str(tmod)!r}"
    assert list(nmod.state_dict().keys()) == list(tmod.state_dict().keys())
    assert [k for k, _ in nmod.named_buffers()] == [k for k, _ in tmod.named_buffers()]
    assert list(nmod.parameters()) == []
    for key, tv in tmod.state_dict().items():
        np.testing.assert_array_equal(nmod.state_dict()[key].numpy(), tv.numpy())
    assert nmod.reduction == tmod.reduction


def test_loss_module_reprs():
    assert str(nc.nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert str(nc.nn.MSELoss()) == "MSELoss()"
    assert repr(nc.nn.BCEWithLogitsLoss()) == "BCEWithLogitsLoss()"
    assert list(nc.nn.CrossEntropyLoss().state_dict().keys()) == []


def test_loss_module_weight_moves_with_to():
    m = nc.nn.CrossEntropyLoss(weight=nc.tensor(np.array([1.0, 2.0, 3.0], np.float32)))
    m.to(nc.float64) if hasattr(m, "to") else None
    assert "weight" in dict(m.named_buffers())


@pytest.mark.parametrize("size_average,reduce,expected", [(None, False, "none"), (False, None, "sum"), (True, True, "mean")])
def test_legacy_size_average_reduce(size_average, reduce, expected):
    torch = require_torch()
    assert nc.nn.MSELoss(size_average, reduce).reduction == expected == torch.nn.MSELoss(size_average, reduce).reduction
    x, y = rand((3, 4)), rand((3, 4), seed=1)
    fn = lambda m, a, b: m.nn.functional.mse_loss(a, b, size_average, reduce)  # noqa: E731
    check_op(fn, fn, [x, y], dtype=np.float64)
