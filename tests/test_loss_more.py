"""KLDivLoss, MarginRankingLoss, CosineEmbeddingLoss, TripletMarginLoss, PoissonNLLLoss,
GaussianNLLLoss, CTCLoss (functional and modules) against PyTorch: values and gradients for every
option and reduction, finite-difference gradients in float64, and PyTorch's errors."""
import warnings

import numpy as np
import pytest

import neurocore as nc
import neurocore.nn.functional as NF
from helpers import check_op, gradcheck, rand, require_torch

REDUCTIONS = ["mean", "sum", "none"]
DTYPES = [np.float32, np.float64]


def _signs(shape, seed):
    return np.where(np.random.default_rng(seed).random(shape) < 0.5, -1.0, 1.0)


def _quiet(fn):
    def wrapped(*a, **k):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*a, **k)
    return wrapped


# --- KLDivLoss ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target, dtype):
    logits = rand((4, 5), seed=1)
    inp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    target = rand((4, 5), seed=2, low=0.0, high=1.0)
    target[0, :2] = 0.0  # 0 log 0 = 0
    if log_target:
        target = np.log(target + 0.1)
    kw = dict(reduction=reduction, log_target=log_target)
    check_op(_quiet(lambda t, a, b: t.nn.functional.kl_div(a, b, **kw)),
             _quiet(lambda n, a, b: NF.kl_div(a, b, **kw)), [inp, target], dtype=dtype, grad_inputs=[0])
    check_op(_quiet(lambda t, a, b: t.nn.KLDivLoss(**kw)(a, b)), _quiet(lambda n, a, b: nc.nn.KLDivLoss(**kw)(a, b)),
             [inp, target + (0.5 if not log_target else 0.0)], dtype=dtype)  # gradient wrt a positive target too


def test_kl_div_mean_warns_and_gradcheck():
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        NF.kl_div(nc.zeros(2, 3), nc.ones(2, 3))
    gradcheck(lambda a, b: NF.kl_div(a, b, reduction="batchmean"), [rand((3, 4), seed=3),
                                                                      rand((3, 4), seed=4, low=0.1, high=1.0)])
    with pytest.raises(ValueError, match="bogus is not a valid value for reduction"):
        NF.kl_div(nc.zeros(2), nc.ones(2), reduction="bogus")


# --- MarginRanking, CosineEmbedding ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_margin_ranking(reduction, dtype):
    a, b, y = rand((7,), seed=1), rand((7,), seed=2), _signs((7,), 3)
    for margin in (0.0, 0.3):
        check_op(lambda t, a, b, y: t.nn.MarginRankingLoss(margin, reduction=reduction)(a, b, y),
                 lambda n, a, b, y: nc.nn.MarginRankingLoss(margin, reduction=reduction)(a, b, y), [a, b, y],
                 dtype=dtype, grad_inputs=[0, 1])
    gradcheck(lambda a, b: NF.margin_ranking_loss(a, b, nc.tensor(y), margin=0.25, reduction=reduction), [a, b])


def test_margin_ranking_dim_error_matches_torch():
    torch = require_torch()
    with pytest.raises(RuntimeError) as expected:
        torch.nn.functional.margin_ranking_loss(torch.zeros(3), torch.zeros(3), torch.zeros(1, 3))
    with pytest.raises(RuntimeError) as got:
        NF.margin_ranking_loss(nc.zeros(3), nc.zeros(3), nc.zeros(1, 3))
    assert str(got.value) == str(expected.value).replace("torch.Size", "neurocore.Size")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cosine_embedding(reduction, dtype):
    a, b, y = rand((6, 4), seed=1), rand((6, 4), seed=2), _signs((6,), 5)
    for margin in (0.0, -0.2, 0.4):
        check_op(lambda t, a, b, y: t.nn.CosineEmbeddingLoss(margin, reduction=reduction)(a, b, y),
                 lambda n, a, b, y: nc.nn.CosineEmbeddingLoss(margin, reduction=reduction)(a, b, y), [a, b, y],
                 dtype=dtype, grad_inputs=[0, 1])
    check_op(lambda t, a, b: t.nn.functional.cosine_embedding_loss(a, b, t.tensor(-1.0, dtype=a.dtype)),
             lambda n, a, b: NF.cosine_embedding_loss(a, b, nc.tensor(-1.0, dtype=a.dtype)),
             [a[0], b[0]], dtype=dtype)
    gradcheck(lambda a, b: NF.cosine_embedding_loss(a, b, nc.tensor(y), margin=-0.1, reduction=reduction), [a, b])


def test_cosine_embedding_shape_errors_match_torch():
    torch = require_torch()
    for shapes in (((3,), (3,), (3,)), ((2, 3), (2, 3), ())):
        with pytest.raises(RuntimeError) as expected:
            torch.nn.functional.cosine_embedding_loss(*(torch.ones(s) for s in shapes))
        with pytest.raises(RuntimeError) as got:
            NF.cosine_embedding_loss(*(nc.ones(*s) for s in shapes))
        assert str(got.value) == str(expected.value)


# --- TripletMarginLoss, pairwise_distance, cosine_similarity -----------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_triplet_margin(reduction, dtype):
    a, p, n = rand((5, 4), seed=1), rand((5, 4), seed=2), rand((5, 4), seed=3)
    for kw in (dict(), dict(margin=0.5, p=1.0), dict(p=3.0, swap=True, eps=1e-3), dict(margin=2.0, swap=True)):
        check_op(lambda t, a, p, n: t.nn.TripletMarginLoss(reduction=reduction, **kw)(a, p, n),
                 lambda m, a, p, n: nc.nn.TripletMarginLoss(reduction=reduction, **kw)(a, p, n), [a, p, n],
                 dtype=dtype)
    gradcheck(lambda a, p, n: NF.triplet_margin_loss(a, p, n, margin=1.5, swap=True, reduction=reduction),
              [a, p, n])


def test_triplet_errors_match_torch():
    torch = require_torch()
    for t_call, n_call in (
            (lambda: torch.nn.TripletMarginLoss(margin=0), lambda: nc.nn.TripletMarginLoss(margin=0)),
            (lambda: torch.nn.functional.triplet_margin_loss(torch.ones(2, 3), torch.ones(2, 3), torch.ones(3)),
             lambda: NF.triplet_margin_loss(nc.ones(2, 3), nc.ones(2, 3), nc.ones(3))),
            (lambda: torch.nn.functional.triplet_margin_loss(torch.ones(3), torch.ones(3), torch.ones(3), margin=-1),
             lambda: NF.triplet_margin_loss(nc.ones(3), nc.ones(3), nc.ones(3), margin=-1))):
        with pytest.raises((ValueError, RuntimeError)) as expected:
            t_call()
        with pytest.raises(expected.type) as got:
            n_call()
        assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pairwise_distance_and_cosine_similarity(dtype):
    a, b = rand((4, 3), seed=1), rand((4, 3), seed=2)
    for p in (1.0, 2.0, 3.5):
        check_op(lambda t, a, b: t.nn.PairwiseDistance(p)(a, b), lambda n, a, b: nc.nn.PairwiseDistance(p)(a, b),
                 [a, b], dtype=dtype)
    check_op(lambda t, a, b: t.nn.functional.pairwise_distance(a, b, keepdim=True),
             lambda n, a, b: NF.pairwise_distance(a, b, keepdim=True), [a, b], dtype=dtype)
    for dim in (0, 1):
        check_op(lambda t, a, b: t.nn.CosineSimilarity(dim)(a, b), lambda n, a, b: nc.nn.CosineSimilarity(dim)(a, b),
                 [a, b], dtype=dtype)


# --- Poisson / Gaussian NLL --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_poisson_nll(reduction, dtype):
    target = np.array([[0.0, 1.0, 2.0, 5.0], [3.0, 0.5, 7.0, 1.5]])
    for kw in (dict(), dict(full=True), dict(log_input=False), dict(log_input=False, full=True, eps=1e-4)):
        x = rand((2, 4), seed=1) if kw.get("log_input", True) else rand((2, 4), seed=1, low=0.2, high=3.0)
        check_op(lambda t, x, y: t.nn.PoissonNLLLoss(reduction=reduction, **kw)(x, y),
                 lambda n, x, y: nc.nn.PoissonNLLLoss(reduction=reduction, **kw)(x, y), [x, target], dtype=dtype,
                 grad_inputs=[0])
        gradcheck(lambda x: NF.poisson_nll_loss(x, nc.tensor(target), reduction=reduction, **kw), [x])
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        NF.poisson_nll_loss(nc.zeros(2), nc.zeros(2), reduction="avg")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gaussian_nll(reduction, dtype):
    x, y = rand((3, 4), seed=1), rand((3, 4), seed=2)
    var_full = rand((3, 4), seed=3, low=0.0, high=1.0)
    var_full[0, 0] = 1e-9  # below eps: clamped, gradient passed through
    for var, kw in ((var_full, dict()), (rand((3,), seed=4, low=0.1, high=1.0), dict(full=True)),
                    (rand((3, 1), seed=5, low=0.1, high=1.0), dict(eps=1e-3))):
        check_op(lambda t, x, y, v: t.nn.GaussianNLLLoss(reduction=reduction, **kw)(x, y, v),
                 lambda n, x, y, v: nc.nn.GaussianNLLLoss(reduction=reduction, **kw)(x, y, v), [x, y, var],
                 dtype=dtype)
    check_op(lambda t, x, y: t.nn.functional.gaussian_nll_loss(x, y, 0.7, reduction=reduction),
             lambda n, x, y: NF.gaussian_nll_loss(x, y, 0.7, reduction=reduction), [x, y], dtype=dtype)
    gradcheck(lambda x, v: NF.gaussian_nll_loss(x, nc.tensor(y), v, full=True, reduction=reduction),
              [x, rand((3, 4), seed=6, low=0.2, high=1.0)])


@pytest.mark.parametrize("call", [
    lambda lib: lib.nn.functional.gaussian_nll_loss(lib.ones(3, 4), lib.ones(3, 4), lib.ones(3, 2)),
    lambda lib: lib.nn.functional.gaussian_nll_loss(lib.ones(3, 4), lib.ones(3, 4), -lib.ones(3, 4)),
    lambda lib: lib.nn.functional.gaussian_nll_loss(lib.ones(3, 4), lib.ones(3, 4), -1.0),
    lambda lib: lib.nn.functional.gaussian_nll_loss(lib.ones(3, 4), lib.ones(3, 4), lib.ones(3, 4),
                                                    reduction="avg")])
def test_gaussian_nll_errors_match_torch(call):
    torch = require_torch()
    with pytest.raises(ValueError) as expected:
        call(torch)
    with pytest.raises(ValueError) as got:
        call(nc)
    assert str(got.value) == str(expected.value)


# --- CTCLoss -----------------------------------------------------------------------------------------

T, N, C = 12, 4, 6


def _ctc_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, N, C))
    targets = rng.integers(1, C, size=(N, 5))
    targets[1, 1] = targets[1, 0]  # a repeated label needs a blank between the two
    return x, targets, [12, 10, 12, 7], [5, 3, 4, 2]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("concatenated", [False, True])
def test_ctc_matches_torch(reduction, concatenated, dtype):
    x, targets, il, tl = _ctc_data()
    if concatenated:
        targets = np.concatenate([targets[n, :tl[n]] for n in range(N)])
    check_op(lambda t, x: t.nn.CTCLoss(reduction=reduction)(t.log_softmax(x, 2), t.tensor(targets), t.tensor(il),
                                                            t.tensor(tl)),
             lambda n, x: nc.nn.CTCLoss(reduction=reduction)(NF.log_softmax(x, 2), nc.tensor(targets), nc.tensor(il),
                                                             nc.tensor(tl)), [x], dtype=dtype)
    # the gradient given for log_probs themselves is PyTorch's (exp(lp) - posterior)
    check_op(lambda t, lp: t.nn.functional.ctc_loss(lp, t.tensor(targets), il, tl, reduction=reduction),
             lambda n, lp: NF.ctc_loss(lp, nc.tensor(targets), il, tl, reduction=reduction),
             [np.log(np.exp(x) / np.exp(x).sum(2, keepdims=True))], dtype=dtype)


def test_ctc_blank_unbatched_infinite_and_zero_infinity():
    x, targets, il, tl = _ctc_data(1)
    blank2 = np.where(targets == 2, 0, targets)  # blank=2: no target label may be 2
    check_op(lambda t, x: t.nn.functional.ctc_loss(t.log_softmax(x, 2), t.tensor(blank2), il, tl, blank=2),
             lambda n, x: NF.ctc_loss(NF.log_softmax(x, 2), nc.tensor(blank2), il, tl, blank=2), [x],
             dtype=np.float64)
    check_op(lambda t, x: t.nn.functional.ctc_loss(t.log_softmax(x, 1), t.tensor(targets[0, :3]), [9], [3],
                                                   reduction="none"),
             lambda n, x: NF.ctc_loss(NF.log_softmax(x, 1), nc.tensor(targets[0, :3]), [9], [3], reduction="none"),
             [x[:, 0]], dtype=np.float64)
    # sample 3 cannot fit 5 labels in 3 steps: infinite loss, or 0 (and no gradient) with zero_infinity
    il_short = [12, 10, 12, 3]
    tl_long = [5, 3, 4, 5]
    lp = nc.tensor(np.log(np.exp(x) / np.exp(x).sum(2, keepdims=True)), requires_grad=True)
    losses = NF.ctc_loss(lp, nc.tensor(targets), il_short, tl_long, reduction="none")
    assert np.isinf(losses.tolist()[3]) and np.isfinite(losses.tolist()[:3]).all()
    for reduction in REDUCTIONS:
        check_op(lambda t, lp: t.nn.functional.ctc_loss(lp, t.tensor(targets), il_short, tl_long, reduction=reduction,
                                                        zero_infinity=True),
                 lambda n, lp: NF.ctc_loss(lp, nc.tensor(targets), il_short, tl_long, reduction=reduction,
                                           zero_infinity=True), [lp.detach().numpy()], dtype=np.float64)


def test_ctc_gradient_by_finite_differences():
    x, targets, il, tl = _ctc_data(2)
    x = x[:6, :2]
    gradcheck(lambda x: NF.ctc_loss(NF.log_softmax(x, 2), nc.tensor(targets[:2, :3]), [6, 5], [3, 2],
                                    reduction="sum"), [x])


@pytest.mark.parametrize("bad", [dict(il=[13, 10, 12, 7]), dict(tl=[6, 3, 4, 2]), dict(blank=6), dict(il=[12, 10, 12]),
                                 dict(reduction="avg")])
def test_ctc_errors(bad):
    x, targets, il, tl = _ctc_data()
    args = dict(il=il, tl=tl, blank=0, reduction="mean")
    args.update(bad)
    lp = NF.log_softmax(nc.tensor(x), 2)
    with pytest.raises((RuntimeError, ValueError)) as got:
        NF.ctc_loss(lp, nc.tensor(targets), args["il"], args["tl"], blank=args["blank"], reduction=args["reduction"])
    assert any(k in str(got.value) for k in ("input_lengths", "at least 6", "blank", "batch_size", "avg"))
