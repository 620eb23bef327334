"""Activation functions and dropout: values, gradients, kinks, edge values and in-place forms vs PyTorch."""
import mpmath
import numpy as np
import pytest

import neurocore as nc
from helpers import check_op, gradcheck, require_torch
from helpers import rand as _rand

DTYPES = [np.float32, np.float64]


def rand(shape, dtype=np.float64, seed=0, low=-1.0, high=1.0):
    return np.asarray(_rand(shape, dtype, seed, low, high))


def away(shape, seed=0, lo=0.05, hi=3.0, center=0.0):
    """Random values at least `lo` away from the kink at `center`."""
    r = np.random.default_rng(seed)
    return np.asarray(center + r.choice([-1.0, 1.0], size=shape) * r.uniform(lo, hi, size=shape))


def torch_act(name, **kw):
    def fn(t, a):
        F = t.nn.functional
        return {"relu": lambda: t.relu(a), "sigmoid": lambda: t.sigmoid(a), "tanh": lambda: t.tanh(a),
                "selu": lambda: F.selu(a), "silu": lambda: F.silu(a), "relu6": lambda: F.relu6(a),
                "leaky_relu": lambda: F.leaky_relu(a, **kw), "elu": lambda: F.elu(a, **kw),
                "gelu": lambda: F.gelu(a, **kw), "softplus": lambda: F.softplus(a, **kw),
                "hardtanh": lambda: F.hardtanh(a, **kw)}[name]()
    return fn


def nc_act(name, **kw):
    return lambda n, a: getattr(n, name)(a, **kw)


# (name, kwargs, input generator): inputs away from each function's kinks.
ACTS = [
    ("relu", {}, lambda s: away(s)),
    ("selu", {}, lambda s: away(s)),
    ("silu", {}, lambda s: rand(s, low=-6, high=6)),
    ("sigmoid", {}, lambda s: rand(s, low=-6, high=6)),
    ("tanh", {}, lambda s: rand(s, low=-3, high=3)),
    ("leaky_relu", {"negative_slope": 0.01}, lambda s: away(s)),
    ("leaky_relu", {"negative_slope": 0.2}, lambda s: away(s)),
    ("elu", {"alpha": 1.0}, lambda s: away(s)),
    ("elu", {"alpha": 0.5}, lambda s: away(s)),
    ("gelu", {"approximate": "none"}, lambda s: rand(s, low=-4, high=4)),
    ("gelu", {"approximate": "tanh"}, lambda s: rand(s, low=-4, high=4)),
    ("softplus", {}, lambda s: rand(s, low=-5, high=5)),
    ("softplus", {"beta": 2.0, "threshold": 5.0}, lambda s: away(s, lo=0.05, hi=5, center=2.5)),
    ("softplus", {"beta": 0.5, "threshold": 1.0}, lambda s: away(s, lo=0.05, hi=5, center=2.0)),
    ("hardtanh", {}, lambda s: np.where(np.abs(np.abs(away(s)) - 1) < 0.05, 0.5, away(s))),
    ("hardtanh", {"min_val": -0.5, "max_val": 2.0}, lambda s: away(s, lo=0.05, hi=1.0, center=0.75) * 2),
    ("relu6", {}, lambda s: np.where(np.abs(away(s) * 3 - 6) < 0.1, 1.0, away(s) * 3 + 1.5)),
]
ACT_IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for n, kw, _ in ACTS]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 4), (67,), (2, 1, 3), ()])
@pytest.mark.parametrize("name,kw,gen", ACTS, ids=ACT_IDS)
def test_activation_parity(name, kw, gen, shape, dtype):
    tol = dict(rtol=3e-5, atol=3e-6) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-12)
    check_op(torch_act(name, **kw), nc_act(name, **kw), [np.asarray(gen(shape))], dtype=dtype, **tol)


@pytest.mark.parametrize("name,kw,gen", ACTS, ids=ACT_IDS)
def test_activation_large_and_noncontiguous(name, kw, gen):
    tol = dict(rtol=3e-5, atol=3e-6)
    check_op(torch_act(name, **kw), nc_act(name, **kw), [gen((2053,))], dtype=np.float32, **tol)
    tf, nf = torch_act(name, **kw), nc_act(name, **kw)
    check_op(lambda t, a: tf(t, a.t()), lambda n, a: nf(n, a.t()), [gen((9, 7))], dtype=np.float32, **tol)


@pytest.mark.parametrize("name,kw,gen", ACTS, ids=ACT_IDS)
def test_activation_gradcheck(name, kw, gen):
    gradcheck(lambda a: getattr(nc, name)(a, **kw), [gen((2, 3))])


@pytest.mark.parametrize("name,kw", [("relu", {}), ("leaky_relu", {"negative_slope": 0.1}), ("elu", {"alpha": 0.5}),
                                     ("selu", {}), ("hardtanh", {}), ("hardtanh", {"min_val": -0.5, "max_val": 0.5}),
                                     ("relu6", {}), ("softplus", {"beta": 1.0, "threshold": 1.0}),
                                     ("softplus", {"beta": 2.0, "threshold": 1.0}), ("gelu", {}), ("silu", {})])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_at_kinks_vs_torch(name, kw, dtype):
    """Values exactly on the kinks (0, +-1, 6, the softplus threshold): torch's subgradient conventions."""
    x = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 6.0, 1e-8, -1e-8, 2.0], dtype)
    check_op(torch_act(name, **kw), nc_act(name, **kw), [x], dtype=dtype, rtol=1e-6, atol=0)


# --------------------------------------------------------------------------------------------- edge values
# Edge values are compared with the mathematical value (mpmath, 40 digits), not with PyTorch: PyTorch's
# answer at +-inf depends on which ISA kernel it picked (its AVX-512 GELU returns NaN at +inf where its
# AVX2 one returns inf), so a comparison with it passes on one machine and fails on another.
# Conventions at the limits are the library's (documented in cpp/kernels/activation_formulas.h): NaN in,
# NaN out; f(-inf) = -inf * 0 = NaN for GELU and SiLU; softplus returns x above its threshold (20).

EDGE = np.array([1e4, -1e4, 88.0, -104.0, 89.0, -88.0, 710.0, -745.0, 20.0, -20.0, 1e-7, -1e-7, 0.0, -0.0,
                 np.inf, -np.inf, np.nan, 0.5, 3e38, -3e38], np.float64)

_SELU_ALPHA = mpmath.mpf("1.6732632423543772848170429916717")
_SELU_SCALE = mpmath.mpf("1.0507009873554804934193349852946")


def _sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


def _gelu_tanh_u(x):
    return mpmath.sqrt(2 / mpmath.pi) * (x + mpmath.mpf("0.044715") * x ** 3)


# name -> (f, f'), each on an mpmath number that is not NaN
EXACT = {
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x))),
    "tanh": (mpmath.tanh, lambda x: 1 - mpmath.tanh(x) ** 2),
    "softplus": (lambda x: x if x > 20 else mpmath.log1p(mpmath.exp(x)), lambda x: 1 if x > 20 else _sigmoid(x)),
    "silu": (lambda x: x / (1 + mpmath.exp(-x)), lambda x: _sigmoid(x) * (1 + x * (1 - _sigmoid(x)))),
    "exp": (mpmath.exp, mpmath.exp),
    "log": (lambda x: mpmath.nan if x < 0 else mpmath.log(x), lambda x: 1 / x),
    "gelu": (lambda x: x / 2 * mpmath.erfc(-x / mpmath.sqrt(2)),
             lambda x: mpmath.erfc(-x / mpmath.sqrt(2)) / 2 + x * mpmath.npdf(x)),
    "gelu_tanh": (lambda x: x / (1 + mpmath.exp(-2 * _gelu_tanh_u(x))), None),
    "elu": (lambda x: x if x > 0 else mpmath.expm1(x), None),
    "selu": (lambda x: _SELU_SCALE * (x if x > 0 else _SELU_ALPHA * mpmath.expm1(x)),
             lambda x: _SELU_SCALE if x > 0 else _SELU_SCALE * _SELU_ALPHA * mpmath.exp(x)),
    "relu": (lambda x: max(x, 0), None),
    "leaky_relu": (lambda x: x if x > 0 else x / 100, None),
    "hardtanh": (lambda x: min(max(x, -1), 1), None),
    "expm1": (mpmath.expm1, None),
    "log1p": (lambda x: mpmath.nan if x < -1 else mpmath.log1p(x), None),
}


def exact(name, v, derivative=False):
    """f(v) (or f'(v)) elementwise to 40 digits, rounded to v's dtype."""
    f = EXACT[name][1 if derivative else 0]
    with mpmath.workdps(40):
        out = [np.nan if np.isnan(x) else float(f(mpmath.mpf(float(x)))) for x in v]
    with np.errstate(over="ignore"):
        return np.array(out, np.float64).astype(v.dtype)


def _nc_act(name):
    if name == "gelu_tanh":
        return lambda a: nc.gelu(a, approximate="tanh")
    return getattr(nc, name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(EXACT))
def test_edge_values_exact(name, dtype):
    with np.errstate(all="ignore"):
        v = EDGE.astype(dtype)
    # every position in a SIMD block and in the scalar tail: tile to an odd length
    v = np.concatenate([v, v[::-1], v[:7]])
    expected = exact(name, v)
    got = _nc_act(name)(nc.tensor(v)).numpy()
    assert got.dtype == expected.dtype
    # atol: results below the smallest normal number may differ in their last subnormal bits
    tol = dict(rtol=1e-5 if dtype == np.float32 else 1e-12, atol=float(np.finfo(dtype).tiny), equal_nan=True)
    np.testing.assert_allclose(got, expected, err_msg=f"{name} on {v}", **tol)
    # and on a non-contiguous view (the portable path)
    got = _nc_act(name)(nc.tensor(np.stack([v, v], 1))[:, 0]).numpy()
    np.testing.assert_allclose(got, expected, err_msg=f"{name} (strided) on {v}", **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softplus", "silu", "exp", "gelu", "selu", "log"])
def test_edge_gradients_exact(name, dtype):
    """Gradients at large finite |x| must not be NaN (e.g. sigmoid'(-1e4) = 0, silu'(-1e4) = 0)."""
    v = np.array([1e4, -1e4, 88.0, -104.0, 50.0, -50.0, 30.0, -30.0, 1e-6, 3e38, -3e38], dtype)
    if name == "log":
        v = np.abs(v) + np.array(1e-30, dtype)
    v = np.concatenate([v, v[::-1]])
    nx = nc.tensor(v, requires_grad=True)
    _nc_act(name)(nx).backward(nc.tensor(np.ones(v.shape, dtype)))
    # sigmoid' and tanh' are computed from the output, y (1 - y) and 1 - y^2, as in PyTorch: exact to an
    # absolute error of one ULP of 1, so their far tails (e.g. tanh'(30) = 3.5e-26) come out as 0.
    atol = float(np.finfo(dtype).eps if name in ("sigmoid", "tanh") else np.finfo(dtype).tiny)
    np.testing.assert_allclose(nx.grad.numpy(), exact(name, v, derivative=True),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=atol, err_msg=f"{name}' on {v}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_elu_gradient_keeps_relative_precision_for_negative_inputs(alpha, dtype):
    """elu'(x) = alpha * e^x for x <= 0; computing it as y + alpha cancels to 0 long before e^x underflows."""
    torch = require_torch()
    v = np.array([-5.0, -20.0, -30.0, -50.0, -80.0], dtype)
    tx, nx = torch.tensor(v, requires_grad=True), nc.tensor(v, requires_grad=True)
    torch.nn.functional.elu(tx, alpha).sum().backward()
    nc.elu(nx, alpha).sum().backward()
    np.testing.assert_allclose(nx.grad.numpy(), tx.grad.numpy(), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=float(np.finfo(dtype).tiny))


def test_sigmoid_tiny_results_keep_precision():
    torch = require_torch()
    for dtype in DTYPES:
        v = np.array([-30.0, -80.0, -87.0, -700.0], dtype) if dtype == np.float64 else np.array([-30.0, -80.0, -87.0, -16.0], dtype)
        np.testing.assert_allclose(nc.sigmoid(nc.tensor(v)).numpy(), torch.sigmoid(torch.tensor(v)).numpy(), rtol=1e-5)


# --------------------------------------------------------------------------------------------- double backward

DOUBLE = [("tanh", {}), ("sigmoid", {}), ("exp", {}), ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}),
          ("softplus", {}), ("softplus", {"beta": 2.0, "threshold": 3.0}), ("elu", {}), ("elu", {"alpha": 0.5}),
          ("selu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("relu", {}), ("pow", {})]


@pytest.mark.parametrize("name,kw", DOUBLE, ids=[f"{n}-{kw}" for n, kw in DOUBLE])
def test_double_backward(name, kw):
    torch = require_torch()
    if name == "pow":
        tf, nf = (lambda a: torch.pow(a, 3.0)), (lambda a: nc.pow(a, 3.0))
    elif name in ("tanh", "sigmoid", "exp"):
        tf, nf = getattr(torch, name), getattr(nc, name)
    else:
        tf = lambda a: getattr(torch.nn.functional, name)(a, **kw)  # noqa: E731
        nf = lambda a: getattr(nc, name)(a, **kw)  # noqa: E731
    x = away((3, 5), lo=0.05, hi=2.0)
    tx, nx = torch.tensor(x, requires_grad=True), nc.tensor(x, requires_grad=True)
    (tg,) = torch.autograd.grad(tf(tx).sum(), tx, create_graph=True)
    (ng,) = nc.autograd.grad(nf(nx).sum(), nx, create_graph=True)
    np.testing.assert_allclose(ng.detach().numpy(), tg.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rand((3, 5), seed=3)
    (tgg,) = torch.autograd.grad((tg * torch.tensor(w)).sum(), tx, allow_unused=True)
    if name in ("relu", "leaky_relu"):  # piecewise-linear: second derivative is zero (or no graph at all)
        assert tgg is None or np.all(tgg.numpy() == 0)
        if not ng.requires_grad:
            return
    (ngg,) = nc.autograd.grad((ng * nc.tensor(w)).sum(), nx)
    np.testing.assert_allclose(ngg.numpy(), tgg.numpy(), rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------------- in-place

@pytest.mark.parametrize("method", ["relu_", "sigmoid_", "tanh_", "exp_", "clamp_"])
def test_inplace_on_nonleaf_matches_torch(method):
    torch = require_torch()
    x = away((4, 5), lo=0.05, hi=2.0)
    w = rand((4, 5), seed=2)
    args = (-0.5, 0.5) if method == "clamp_" else ()

    def run(m, leaf):
        h = leaf * 2.0 + 0.1
        out = getattr(h, method)(*args)
        out2 = out * out  # uses the modified values
        return (out2 * m.tensor(w)).sum(), h

    tx, nx = torch.tensor(x, requires_grad=True), nc.tensor(x, requires_grad=True)
    tl, th = run(torch, tx)
    nl, nh = run(nc, nx)
    np.testing.assert_allclose(nh.detach().numpy(), th.detach().numpy(), rtol=1e-12)
    assert nh.requires_grad and nh.grad_fn is not None
    tl.backward()
    nl.backward()
    np.testing.assert_allclose(nx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fn", ["relu", "leaky_relu", "elu", "selu", "silu", "hardtanh", "relu6", "dropout0"])
def test_functional_inplace_flag(fn):
    torch = require_torch()
    F = torch.nn.functional
    x = away((3, 4), lo=0.05, hi=2.0)
    w = rand((3, 4), seed=5)
    call = {"dropout0": (lambda m, a, ip: (F.dropout(a, 0.0, True, inplace=ip) if m is torch else m.dropout(a, 0.0, True, inplace=ip))),
            "relu": (lambda m, a, ip: (F.relu(a, inplace=ip) if m is torch else (a.relu_() if ip else m.relu(a))))}
    f = call.get(fn) or (lambda m, a, ip: (getattr(F, fn)(a, inplace=ip) if m is torch else getattr(m, fn)(a, inplace=ip)))
    tx, nx = torch.tensor(x, requires_grad=True), nc.tensor(x, requires_grad=True)
    th, nh = tx * 1.5, nx * 1.5
    f(torch, th, True)
    f(nc, nh, True)
    np.testing.assert_allclose(nh.detach().numpy(), th.detach().numpy(), rtol=1e-12)
    (th * torch.tensor(w)).sum().backward()
    (nh * nc.tensor(w)).sum().backward()
    np.testing.assert_allclose(nx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_inplace_on_leaf_requiring_grad_raises():
    x = nc.tensor([-1.0, 2.0], requires_grad=True)
    for op in [lambda: x.relu_(), lambda: x.sigmoid_(), lambda: x.clamp_(0, 1), lambda: nc.leaky_relu(x, 0.1, inplace=True),
               lambda: nc.elu(x, inplace=True), lambda: nc.hardtanh(x, inplace=True)]:
        with pytest.raises(RuntimeError, match="leaf"):
            op()
    np.testing.assert_array_equal(x.detach().numpy(), [-1.0, 2.0])
    with nc.no_grad():
        x.relu_()
    np.testing.assert_array_equal(x.detach().numpy(), [0.0, 2.0])


def test_inplace_relu_after_saved_use_raises():
    x = nc.tensor([-1.0, 2.0], requires_grad=True)
    h = x * 1.0
    y = nc.sigmoid(h)  # saves its output
    y.relu_()
    z = h.exp()  # saves its output
    h.relu_()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.sum().backward()


# --------------------------------------------------------------------------------------------- dropout

@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [nc.float32, nc.float64])
def test_dropout_statistics_and_scaling(p, dtype):
    nc.manual_seed(123)
    n = 1_000_000
    base = rand((n,), low=0.5, high=1.5)
    x = nc.tensor(base, dtype=dtype)
    y = nc.dropout(x, p=p, training=True).numpy()
    zero = y == 0
    assert abs(zero.mean() - p) < 0.01
    npdt = np.float32 if dtype == nc.float32 else np.float64
    kept = base.astype(npdt)[~zero]
    np.testing.assert_allclose(y[~zero], kept / npdt(1 - p), rtol=2e-7 if npdt == np.float32 else 1e-15)
    # no periodic/duplicated masks across blocks or threads: the two halves differ, and so does a second call
    assert not np.array_equal(zero[: n // 2], zero[n // 2:])
    assert not np.array_equal(zero, nc.dropout(x, p=p).numpy() == 0)
    # zeros are spread: each 1/10 of the tensor has about p zeros
    for chunk in np.array_split(zero, 10):
        assert abs(chunk.mean() - p) < 0.02


def test_dropout_eval_p0_p1():
    x = nc.tensor(rand((50, 41), low=0.5, high=1.5), requires_grad=True)
    for y in [nc.dropout(x, 0.5, training=False), nc.dropout(x, 0.0, training=True), nc.dropout(x, 1.0, training=False)]:
        np.testing.assert_array_equal(y.detach().numpy(), x.detach().numpy())
    y = nc.dropout(x, 1.0, training=True)
    np.testing.assert_array_equal(y.detach().numpy(), np.zeros((50, 41)))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((50, 41)))
    # default arguments are p=0.5, training=True, as in torch.nn.functional.dropout
    nc.manual_seed(0)
    z = nc.dropout(nc.tensor(np.ones(10000, np.float32))).numpy()
    assert set(np.unique(z)) <= {0.0, 2.0} and abs((z == 0).mean() - 0.5) < 0.03


def test_dropout_inf_and_nan_inputs_follow_mask():
    torch = require_torch()
    nc.manual_seed(3)
    x = np.tile(np.array([np.inf, -np.inf, 1.0, 2.0], np.float32), 64)
    y = nc.dropout(nc.tensor(x), 0.5).numpy()
    # torch: dropped inf becomes nan (inf * 0); kept values are scaled. nc must agree with x * mask.
    t = torch.tensor(x) * torch.tensor(np.where(y == 0, 0.0, 2.0).astype(np.float32))
    kept = np.isfinite(x)
    np.testing.assert_array_equal(y[kept], t.numpy()[kept])


def test_dropout_same_seed_same_mask():
    x = nc.tensor(np.ones((1000, 37), np.float32))
    nc.manual_seed(42)
    a = nc.dropout(x, 0.3).numpy()
    b = nc.dropout(x, 0.3).numpy()
    nc.manual_seed(42)
    c = nc.dropout(x, 0.3).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)
    state = nc.get_rng_state()
    d = nc.dropout(x, 0.3).numpy()
    nc.set_rng_state(state)
    np.testing.assert_array_equal(nc.dropout(x, 0.3).numpy(), d)


def test_dropout_thread_count_independent():
    x = nc.tensor(np.ones((1 << 20) + 13, np.float32))
    old = nc.get_num_threads()
    try:
        nc.set_num_threads(1)
        nc.manual_seed(7)
        a = nc.dropout(x, 0.4).numpy()
        nc.set_num_threads(2)
        nc.manual_seed(7)
        b = nc.dropout(x, 0.4).numpy()
    finally:
        nc.set_num_threads(old)
    assert nc.get_num_threads() == old
    np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("p", [0.25, 0.6])
def test_dropout_gradient_is_mask(p):
    nc.manual_seed(5)
    base = rand((64, 33), low=0.5, high=1.5)
    x = nc.tensor(base, requires_grad=True)
    y = nc.dropout(x, p)
    g = rand((64, 33), seed=9)
    (y * nc.tensor(g)).sum().backward()
    mask = (y.detach().numpy() != 0) / (1 - p)
    np.testing.assert_allclose(x.grad.numpy(), g * mask, rtol=1e-15)
    # the output is exactly x * mask
    np.testing.assert_allclose(y.detach().numpy(), base * mask, rtol=1e-15)
    # double backward: grad of the grad is zero (dropout is linear)
    x2 = nc.tensor(base, requires_grad=True)
    nc.manual_seed(5)
    (g1,) = nc.autograd.grad((nc.dropout(x2, p) ** 2).sum(), x2, create_graph=True)
    np.testing.assert_allclose(g1.detach().numpy(), 2 * base * mask * mask, rtol=1e-12)


def test_dropout_noncontiguous_and_bad_args():
    nc.manual_seed(1)
    x = nc.tensor(rand((40, 30), low=0.5, high=1.5)).t()
    y = nc.dropout(x, 0.5).numpy()
    keep = y != 0
    np.testing.assert_allclose(y[keep], x.numpy()[keep] * 2, rtol=1e-15)
    assert abs((~keep).mean() - 0.5) < 0.05
    for p in [1.5, -0.1, float("nan")]:
        with pytest.raises(ValueError, match=r"\[dropout\]"):
            nc.dropout(nc.tensor([1.0, 2.0]), p)
    with pytest.raises(TypeError, match=r"\[dropout\]"):
        nc.dropout(nc.tensor([1, 2]), 0.5)


# --------------------------------------------------------------------------------------------- bad input / dtypes

def test_activation_bad_arguments():
    x = nc.tensor([1.0, -1.0])
    with pytest.raises(ValueError, match=r"\[gelu\]"):
        nc.gelu(x, approximate="bad")
    with pytest.raises(ValueError, match=r"\[hardtanh\]"):
        nc.hardtanh(x, 1.0, -1.0)
    with pytest.raises(TypeError, match=r"\[where\]"):
        nc.where(nc.tensor([1.0, 0.0]), x, x)
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5,\)"):
        nc.maximum(nc.tensor(rand((3, 4))), nc.tensor(rand((5,))))


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "silu", "selu", "gelu", "softplus", "elu", "exp"])
def test_activation_of_int_gives_float32(name):
    torch = require_torch()
    i = np.array([-3, 0, 2, 5], np.int64)
    got = getattr(nc, name)(nc.tensor(i))
    tf = getattr(torch, name) if hasattr(torch, name) else getattr(torch.nn.functional, name)
    try:
        exp = tf(torch.tensor(i))
    except (RuntimeError, NotImplementedError):
        exp = tf(torch.tensor(i, dtype=torch.float32))  # torch has no int kernel: compare values in float32
    assert got.dtype == nc.float32
    np.testing.assert_allclose(got.numpy(), exp.numpy(), rtol=1e-6, atol=1e-6)


def test_relu_int_stays_int():
    got = nc.relu(nc.tensor([-3, 0, 2]))
    assert got.dtype == nc.int64
    np.testing.assert_array_equal(got.numpy(), [0, 0, 2])
