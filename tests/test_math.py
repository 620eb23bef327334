"""Elementwise math, comparisons, logical ops, where/clamp/masked_fill: values, gradients and dtypes vs PyTorch."""
import math

import numpy as np
import pytest

import neurocore as nc
from helpers import check_op, gradcheck, require_torch
from helpers import rand as _rand


def rand(shape, dtype=np.float64, seed=0, low=-1.0, high=1.0):
    return np.asarray(_rand(shape, dtype, seed, low, high))  # 0-d arrays stay arrays (check_op needs ndarrays)

DTYPES = [np.float32, np.float64]
BCAST = [[(3, 4), (3, 4)], [(3, 4), (4,)], [(2, 1, 3), (3, 1)], [(4,), ()]]


def away(shape, seed=0, lo=0.1, hi=1.0, dtype=np.float64):
    """Values of random sign with lo <= |x| <= hi: away from the kink at 0."""
    r = np.random.default_rng(seed)
    return np.asarray(r.choice([-1.0, 1.0], size=shape) * r.uniform(lo, hi, size=shape)).astype(dtype)


def frac_away(shape, seed=0):
    """Values in (-3, 3) whose fractional part is in [0.1, 0.4] or [0.6, 0.9]: away from floor/ceil/round steps."""
    r = np.random.default_rng(seed)
    return np.asarray(r.integers(-3, 3, size=shape) + r.choice([0.1, 0.6], size=shape) + r.uniform(0, 0.3, size=shape))


# name -> input generator (inside the domain, away from kinks); float32 rtol where the default is too tight.
UNARY = {
    "exp": lambda s: rand(s, low=-3, high=3),
    "log": lambda s: rand(s, low=0.2, high=5),
    "sqrt": lambda s: rand(s, low=0.2, high=5),
    "rsqrt": lambda s: rand(s, low=0.2, high=5),
    "abs": lambda s: away(s),
    "sign": lambda s: away(s),
    "sin": lambda s: rand(s, low=-4, high=4),
    "cos": lambda s: rand(s, low=-4, high=4),
    "tanh": lambda s: rand(s, low=-3, high=3),
    "sigmoid": lambda s: rand(s, low=-6, high=6),
    "square": lambda s: rand(s, low=-3, high=3),
    "reciprocal": lambda s: away(s, lo=0.3, hi=3),
    "log1p": lambda s: rand(s, low=-0.7, high=3),
    "expm1": lambda s: rand(s, low=-3, high=3),
    "erf": lambda s: rand(s, low=-2.5, high=2.5),
    "floor": frac_away,
    "ceil": frac_away,
    "round": frac_away,
}
SHAPES = [(3, 4), (37,), (2, 1, 5), ()]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_parity(name, shape, dtype):
    x = UNARY[name](shape)
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else {}
    check_op(lambda t, a: getattr(t, name)(a), lambda n, a: getattr(n, name)(a), [x], dtype=dtype, **tol)
    # the method form gives the same values
    check_op(lambda t, a: getattr(a, name)(), lambda n, a: getattr(a, name)(), [x], dtype=dtype, grad=False, **tol)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_large_and_noncontiguous(name):
    # 1031 elements cover the SIMD body, its tail and the threaded split; .t() makes the input non-contiguous.
    x = UNARY[name]((1031,))
    tol = dict(rtol=2e-5, atol=2e-6)
    check_op(lambda t, a: getattr(t, name)(a), lambda n, a: getattr(n, name)(a), [x], dtype=np.float32, **tol)
    y = UNARY[name]((6, 7))
    check_op(lambda t, a: getattr(t, name)(a.t()), lambda n, a: getattr(n, name)(a.t()), [y], dtype=np.float32, **tol)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradcheck(name):
    gradcheck(lambda a: getattr(nc, name)(a), [UNARY[name]((2, 3))])


@pytest.mark.parametrize("f", ["round", "floor", "ceil", "sign", "abs"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_half_to_even_and_signed_zero(f, dtype):
    torch = require_torch()
    v = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.49, -3.51, 0.0, -0.0, -0.2, 0.2] * 3, dtype)
    if True:
        got = getattr(nc, f)(nc.tensor(v)).numpy()
        exp = getattr(torch, f)(torch.tensor(v)).numpy()
        np.testing.assert_array_equal(got, exp, err_msg=f)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(exp), err_msg=f"{f} sign bit")


def test_unary_special_values():
    """Zeros of both signs, +-1, +-inf, NaN and extremes against the IEEE / C99 values (NumPy and math),
    not PyTorch, whose answers at these points depend on the ISA kernel it picks. sign(NaN) is 0, as in PyTorch."""
    v = np.array([0.0, -0.0, -1.0, 1.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 1e30], np.float64)
    exact = {"log": np.log, "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x), "reciprocal": lambda x: 1 / x,
             "log1p": np.log1p, "expm1": np.expm1, "erf": np.vectorize(math.erf), "sign": lambda x: np.sign(np.nan_to_num(x, nan=0.0)), "abs": np.abs,
             "sin": np.sin, "cos": np.cos, "square": np.square, "exp": np.exp, "tanh": np.tanh,
             "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "floor": np.floor, "ceil": np.ceil, "round": np.round}
    for dtype in DTYPES:
        for f, ref in exact.items():
            with np.errstate(all="ignore"):
                got = getattr(nc, f)(nc.tensor(v.astype(dtype))).numpy()
                want = ref(v.astype(dtype).astype(np.float64)).astype(dtype)  # in float64, rounded once
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=0, equal_nan=True, err_msg=f"{f} {dtype.__name__}")


# --------------------------------------------------------------------------------------------- binary ops

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", BCAST)
@pytest.mark.parametrize("op", ["pow", "maximum", "minimum"])
def test_binary_parity(op, shapes, dtype):
    if op == "pow":
        arrays = [rand(shapes[0], low=0.3, high=2.5), rand(shapes[1], seed=1, low=-2, high=2.5)]
    else:  # distinct values: no ties
        arrays = [rand(shapes[0]), np.asarray(rand(shapes[1], seed=1) + 0.005)]
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else {}
    check_op(lambda t, a, b: getattr(t, op)(a, b), lambda n, a, b: getattr(n, op)(a, b), arrays, dtype=dtype, **tol)
    # swapped operands
    check_op(lambda t, a, b: getattr(t, op)(b, a) if op != "pow" else t.pow(a, b),
             lambda n, a, b: getattr(n, op)(b, a) if op != "pow" else a.pow(b), arrays, dtype=dtype, **tol)


@pytest.mark.parametrize("op", ["pow", "maximum", "minimum"])
def test_binary_gradcheck(op):
    if op == "pow":
        gradcheck(nc.pow, [rand((2, 3), low=0.3, high=2.5), rand((3,), seed=2, low=-2, high=2.5)])
        gradcheck(nc.pow, [rand((2, 1, 3), low=0.3, high=2.5), rand((3, 1), seed=2, low=-2, high=2.5)])
    else:
        gradcheck(getattr(nc, op), [rand((2, 3)), rand((3,), seed=2) + 0.005])
        gradcheck(getattr(nc, op), [rand((2, 1, 3)), rand((3, 1), seed=2) + 0.005])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1, 2.5, 0, 1, -2])
def test_pow_scalar_exponent_and_operators(exponent, dtype):
    x = rand((3, 4), low=0.2, high=3) if exponent not in (2, 3, 0, 1, -2) else away((3, 4), lo=0.2, hi=3)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else {}
    check_op(lambda t, a: a ** exponent, lambda n, a: a ** exponent, [x], dtype=dtype, **tol)
    check_op(lambda t, a: t.pow(a, exponent), lambda n, a: n.pow(a, exponent), [x], dtype=dtype, **tol)
    check_op(lambda t, a: a.pow(exponent), lambda n, a: a.pow(exponent), [x], dtype=dtype, **tol)
    gradcheck(lambda a: a ** exponent, [x.astype(np.float64)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("base", [2, 0.5, 2.5])
def test_rpow(base, dtype):
    x = rand((3, 4), low=-2, high=2)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else {}
    check_op(lambda t, a: base ** a, lambda n, a: base ** a, [x], dtype=dtype, **tol)
    check_op(lambda t, a: t.pow(base, a), lambda n, a: n.pow(base, a), [x], dtype=dtype, **tol)
    gradcheck(lambda a: base ** a, [x])


def test_pow_special_points_vs_torch():
    """0 ** y, negative bases with integral exponents, 1 ** nan and x ** 0: values and both gradients."""
    torch = require_torch()
    for dtype in DTYPES:
        base = np.array([0.0, 0.0, 0.0, -2.0, -2.0, -1.5, 1.0, 2.0, 0.0, 3.0], dtype)
        expo = np.array([2.0, 0.0, 1.0, 2.0, 3.0, -1.0, np.nan, 0.0, 0.5, -0.0], dtype)
        tb, te = torch.tensor(base, requires_grad=True), torch.tensor(expo, requires_grad=True)
        nb, ne = nc.tensor(base, requires_grad=True), nc.tensor(expo, requires_grad=True)
        tout, nout = torch.pow(tb, te), nc.pow(nb, ne)
        np.testing.assert_allclose(nout.detach().numpy(), tout.detach().numpy(), rtol=1e-6, equal_nan=True)
        tout.sum().backward()
        nout.sum().backward()
        np.testing.assert_allclose(nb.grad.numpy(), tb.grad.numpy(), rtol=1e-6, equal_nan=True, err_msg="d/dbase")
        np.testing.assert_allclose(ne.grad.numpy(), te.grad.numpy(), rtol=1e-6, equal_nan=True, err_msg="d/dexp")


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_tie_gradient_splits(op):
    torch = require_torch()
    a = np.array([1.0, 2.0, -3.0, 0.5], np.float32)
    b = np.array([1.0, 1.0, -3.0, 0.75], np.float32)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    na, nb = nc.tensor(a, requires_grad=True), nc.tensor(b, requires_grad=True)
    getattr(torch, op)(ta, tb).sum().backward()
    getattr(nc, op)(na, nb).sum().backward()
    np.testing.assert_array_equal(na.grad.numpy(), ta.grad.numpy())
    np.testing.assert_array_equal(nb.grad.numpy(), tb.grad.numpy())
    assert na.grad.numpy()[0] == 0.5 and nb.grad.numpy()[0] == 0.5


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_nan_propagates(op):
    torch = require_torch()
    a = np.array([np.nan, 1.0, np.nan, 2.0], np.float32)
    b = np.array([1.0, np.nan, np.nan, 3.0], np.float32)
    got = getattr(nc, op)(nc.tensor(a), nc.tensor(b)).numpy()
    np.testing.assert_array_equal(got, getattr(torch, op)(torch.tensor(a), torch.tensor(b)).numpy())


def test_binary_with_python_scalars():
    x = rand((3, 4))
    for op in ["maximum", "minimum", "pow"]:
        check_op(lambda t, a: getattr(t, op)(a, t.tensor(0.3, dtype=a.dtype)), lambda n, a: getattr(n, op)(a, 0.3),
                 [np.abs(x) + 0.1], dtype=np.float64)


# --------------------------------------------------------------------------------------------- comparisons / logical

CMP = {"eq": "__eq__", "ne": "__ne__", "lt": "__lt__", "le": "__le__", "gt": "__gt__", "ge": "__ge__"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shapes", BCAST)
@pytest.mark.parametrize("op", sorted(CMP))
def test_comparison_parity(op, shapes, dtype):
    torch = require_torch()
    r = np.random.default_rng(3)
    a = r.integers(-2, 3, size=shapes[0]).astype(dtype)  # small integers: many ties
    b = r.integers(-2, 3, size=shapes[1]).astype(dtype)
    expected = getattr(torch, op)(torch.tensor(a), torch.tensor(b)).numpy()
    for got in [getattr(nc, op)(nc.tensor(a), nc.tensor(b)), getattr(nc.tensor(a), CMP[op])(nc.tensor(b)),
                getattr(nc.tensor(a), op)(nc.tensor(b))]:
        assert got.dtype == nc.bool
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got.numpy(), expected)


@pytest.mark.parametrize("op", sorted(CMP))
def test_comparison_scalars_nan_and_mixed_dtypes(op):
    torch = require_torch()
    a = np.array([np.nan, 0.0, -0.0, 1.0, np.inf, -np.inf, 2.5], np.float32)
    for other in [0, 1.0, 2.5, np.nan, float("inf")]:
        got = getattr(nc.tensor(a), CMP[op])(other)
        assert got.dtype == nc.bool
        np.testing.assert_array_equal(got.numpy(), getattr(torch.tensor(a), CMP[op])(other).numpy(), err_msg=str(other))
    i = np.array([1, 2, 3], np.int64)
    # int tensor against a fractional python scalar compares in floating point, as in torch
    got = getattr(nc.tensor(i), CMP[op])(2.5).numpy()
    np.testing.assert_array_equal(got, getattr(torch.tensor(i), CMP[op])(2.5).numpy())
    got = getattr(nc, op)(nc.tensor(i), nc.tensor([2.5, 2.0, 1.5])).numpy()
    np.testing.assert_array_equal(got, getattr(torch, op)(torch.tensor(i), torch.tensor([2.5, 2.0, 1.5])).numpy())


def test_comparison_has_no_grad():
    x = nc.tensor([1.0, 2.0], requires_grad=True)
    m = x > 1.5
    assert m.dtype == nc.bool and not m.requires_grad


@pytest.mark.parametrize("op", ["logical_and", "logical_or", "logical_xor"])
@pytest.mark.parametrize("shapes", BCAST)
def test_logical_parity(op, shapes):
    torch = require_torch()
    r = np.random.default_rng(5)
    a, b = r.random(shapes[0]) > 0.5, r.random(shapes[1]) > 0.5
    expected = getattr(torch, op)(torch.tensor(a), torch.tensor(b)).numpy()
    sym = {"logical_and": "__and__", "logical_or": "__or__", "logical_xor": "__xor__"}[op]
    for got in [getattr(nc, op)(nc.tensor(a), nc.tensor(b)), getattr(nc.tensor(a), sym)(nc.tensor(b))]:
        assert got.dtype == nc.bool
        np.testing.assert_array_equal(got.numpy(), expected)
    # numeric inputs: nonzero is true
    fa, fb = rand(shapes[0]).round(), rand(shapes[1], seed=1).round()
    got = getattr(nc, op)(nc.tensor(fa), nc.tensor(fb))
    assert got.dtype == nc.bool
    np.testing.assert_array_equal(got.numpy(), getattr(torch, op)(torch.tensor(fa), torch.tensor(fb)).numpy())


def test_logical_not_invert_and_classification():
    torch = require_torch()
    m = np.array([True, False, True])
    np.testing.assert_array_equal((~nc.tensor(m)).numpy(), ~m)
    np.testing.assert_array_equal(nc.logical_not(nc.tensor(m)).numpy(), ~m)
    v = np.array([0.0, 2.0, -0.0, np.nan], np.float32)
    got = nc.logical_not(nc.tensor(v))
    assert got.dtype == nc.bool
    np.testing.assert_array_equal(got.numpy(), torch.logical_not(torch.tensor(v)).numpy())
    mask = (nc.tensor([1.0, -1.0, 2.0]) > 0) & ~(nc.tensor([1.0, -1.0, 2.0]) > 1.5)
    np.testing.assert_array_equal(mask.numpy(), [True, False, False])
    with pytest.raises(TypeError, match=r"\[bitwise_not\]"):
        ~nc.tensor([1.0])
    s = np.array([0.0, np.inf, -np.inf, np.nan, -1.0, 1e38], np.float64)
    for dtype in DTYPES:
        for f in ["isnan", "isinf", "isfinite"]:
            got = getattr(nc, f)(nc.tensor(s.astype(dtype)))
            assert got.dtype == nc.bool
            np.testing.assert_array_equal(got.numpy(), getattr(torch, f)(torch.tensor(s.astype(dtype))).numpy(), err_msg=f)
    i = np.array([0, -5, 7], np.int64)
    for f in ["isnan", "isinf", "isfinite"]:
        np.testing.assert_array_equal(getattr(nc, f)(nc.tensor(i)).numpy(), getattr(torch, f)(torch.tensor(i)).numpy())


# --------------------------------------------------------------------------------------------- where / clamp / masked_fill

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", [[(3, 4), (3, 4), (3, 4)], [(3, 1), (4,), (3, 4)], [(4,), (2, 1, 4), (3, 1)],
                                    [(2, 3), (), (3,)]])
def test_where_parity(shapes, dtype):
    r = np.random.default_rng(7)
    cond = r.random(shapes[0]) > 0.5
    a, b = rand(shapes[1], seed=1), rand(shapes[2], seed=2)
    check_op(lambda t, c, x, y: t.where(c, x, y), lambda n, c, x, y: n.where(c, x, y), [cond, a, b], dtype=dtype)
    check_op(lambda t, c, x, y: x.where(c, y), lambda n, c, x, y: x.where(c, y), [cond, a, b], dtype=dtype)


def test_where_gradcheck():
    cond = nc.tensor(np.array([[True, False, True], [False, False, True]]))
    gradcheck(lambda x, y: nc.where(cond, x, y), [rand((2, 3)), rand((3,), seed=1)])


@pytest.mark.parametrize("tdtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("scalar", [0.5, 2, -1.25])
def test_where_with_python_scalar(scalar, tdtype):
    torch = require_torch()
    cond = np.array([True, False, True, False])
    x = np.array([1, -2, 3, 4]).astype(tdtype)
    for tf, nf in [(lambda t: torch.where(torch.tensor(cond), t, scalar), lambda n: nc.where(nc.tensor(cond), n, scalar)),
                   (lambda t: torch.where(torch.tensor(cond), scalar, t), lambda n: nc.where(nc.tensor(cond), scalar, n))]:
        exp, got = tf(torch.tensor(x)), nf(nc.tensor(x))
        assert str(got.dtype).split(".")[-1] == str(exp.dtype).split(".")[-1], (got.dtype, exp.dtype)
        np.testing.assert_array_equal(got.numpy(), exp.numpy())
    # gradient flows only to the tensor branch
    if tdtype != np.int64:
        check_op(lambda t, c, a: t.where(c, a, scalar), lambda n, c, a: n.where(c, a, scalar), [cond, x], dtype=tdtype)


def test_where_both_scalars_and_bad_condition():
    cond = nc.tensor(np.array([True, False]))
    np.testing.assert_array_equal(nc.where(cond, 1.0, 0.0).numpy(), [1.0, 0.0])
    with pytest.raises(TypeError, match=r"\[where\]"):
        nc.where(nc.tensor([1.0, 0.0]), nc.tensor([1.0, 2.0]), nc.tensor([3.0, 4.0]))
    with pytest.raises(TypeError, match=r"\[where\]"):
        nc.where(nc.tensor([1, 0]), nc.tensor([1.0, 2.0]), 0.0)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)|\(2,\).*\(3,\)"):
        nc.where(cond, nc.tensor([1.0, 2.0, 3.0]), nc.tensor([1.0, 2.0]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bounds", [(-0.5, 0.5), (None, 0.3), (-0.3, None), (0.4, -0.4)])
def test_clamp_parity(bounds, dtype):
    lo, hi = bounds
    x = rand((4, 5)) + 0.0123  # no element exactly on a bound
    check_op(lambda t, a: t.clamp(a, min=lo, max=hi), lambda n, a: n.clamp(a, min=lo, max=hi), [x], dtype=dtype)
    check_op(lambda t, a: a.clamp(min=lo, max=hi), lambda n, a: a.clamp(min=lo, max=hi), [x], dtype=dtype)
    check_op(lambda t, a: t.clip(a, lo, hi), lambda n, a: n.clip(a, lo, hi), [x], dtype=dtype)
    if lo is not None:
        check_op(lambda t, a: t.clamp_min(a, lo), lambda n, a: n.clamp_min(a, lo), [x], dtype=dtype)
        check_op(lambda t, a: a.clamp_min(lo), lambda n, a: a.clamp_min(lo), [x], dtype=dtype)
    if hi is not None:
        check_op(lambda t, a: t.clamp_max(a, hi), lambda n, a: n.clamp_max(a, hi), [x], dtype=dtype)
        check_op(lambda t, a: a.clamp_max(hi), lambda n, a: a.clamp_max(hi), [x], dtype=dtype)


def test_clamp_gradcheck_and_tensor_bounds():
    gradcheck(lambda a: nc.clamp(a, -0.5, 0.5), [rand((3, 4)) + 0.0123])
    x, lo, hi = rand((3, 4)), rand((4,), seed=1, low=-1, high=-0.2) + 0.001, rand((3, 1), seed=2, low=0.2, high=1) + 0.001
    check_op(lambda t, a, l, h: t.clamp(a, l, h), lambda n, a, l, h: n.clamp(a, l, h), [x, lo, hi], dtype=np.float64)
    check_op(lambda t, a, l: t.clamp(a, min=l), lambda n, a, l: n.clamp(a, min=l), [x, lo], dtype=np.float32)


def test_clamp_gradient_at_bounds_vs_torch():
    torch = require_torch()
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 0.25], np.float32)
    for lo, hi in [(-0.5, 0.5), (None, 0.5), (-0.5, None), (0.5, 0.5)]:
        tx, nx = torch.tensor(x, requires_grad=True), nc.tensor(x, requires_grad=True)
        ty, ny = torch.clamp(tx, lo, hi), nc.clamp(nx, lo, hi)
        np.testing.assert_array_equal(ny.detach().numpy(), ty.detach().numpy())
        ty.sum().backward()
        ny.sum().backward()
        np.testing.assert_array_equal(nx.grad.numpy(), tx.grad.numpy(), err_msg=f"clamp({lo}, {hi})")


def test_clamp_nan_and_int():
    torch = require_torch()
    x = np.array([np.nan, -2.0, 2.0, np.inf, -np.inf], np.float32)
    np.testing.assert_array_equal(nc.clamp(nc.tensor(x), -1, 1).numpy(), [np.nan, -1, 1, 1, -1])
    i = np.array([-5, 0, 3, 9], np.int64)
    got = nc.clamp(nc.tensor(i), 0, 4)
    assert got.dtype == nc.int64
    np.testing.assert_array_equal(got.numpy(), [0, 0, 3, 4])


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_fill(dtype):
    r = np.random.default_rng(9)
    x, mask = rand((3, 4)), r.random((4,)) > 0.5
    for v in [0.0, -1.5, float("-inf")]:
        check_op(lambda t, a, m: a.masked_fill(m, v), lambda n, a, m: a.masked_fill(m, v), [x, mask], dtype=dtype)
    i = nc.tensor(np.arange(4))
    got = i.masked_fill(nc.tensor(mask), 7)
    assert got.dtype == nc.int64
    np.testing.assert_array_equal(got.numpy(), np.where(mask, 7, np.arange(4)))


# --------------------------------------------------------------------------------------------- dtype rules

_I = np.array([[1, -2, 3], [0, 5, -6]], np.int64)
_F32, _F64 = _I.astype(np.float32), _I.astype(np.float64)
DTYPE_CASES = {
    "neg_int": (lambda m, a: -a, [_I]), "abs_int": (lambda m, a: m.abs(a), [_I]), "abs_op_int": (lambda m, a: abs(a), [_I]),
    "square_int": (lambda m, a: m.square(a), [_I]), "clamp_int": (lambda m, a: m.clamp(a, -1, 2), [_I]),
    "clamp_min_int": (lambda m, a: m.clamp_min(a, 0), [_I]), "clamp_max_int": (lambda m, a: m.clamp_max(a, 0), [_I]),
    "clamp_kw_min_int": (lambda m, a: a.clamp(min=-1), [_I]), "sign_int": (lambda m, a: m.sign(a), [_I]),
    "exp_int": (lambda m, a: m.exp(a), [_I]), "sigmoid_int": (lambda m, a: m.sigmoid(a), [_I]),
    "tanh_int": (lambda m, a: m.tanh(a), [_I]), "sqrt_int": (lambda m, a: m.sqrt(m.abs(a)), [_I]),
    "pow2_int": (lambda m, a: a ** 2, [_I]), "pow_tensor_int": (lambda m, a: m.pow(a, a.abs()), [_I]),
    "pow2.5_f32": (lambda m, a: a ** 2.5, [np.abs(_F32)]), "pow2_f64": (lambda m, a: a ** 2, [_F64]),
    "pow0.5_int": (lambda m, a: a ** 0.5, [np.abs(_I)]), "rpow_int": (lambda m, a: 2 ** a, [np.abs(_I)]),
    "maximum_int": (lambda m, a, b: m.maximum(a, b), [_I, _I[::-1].copy()]),
    "maximum_int_f32": (lambda m, a, b: m.maximum(a, b), [_I, _F32]),
    "maximum_f32_f64": (lambda m, a, b: m.maximum(a, b), [_F32, _F64]),
    "eq_int_f32": (lambda m, a, b: a == b, [_I, _F32]), "gt_scalar": (lambda m, a: a > 0, [_F64]),
    "lt_int": (lambda m, a: m.lt(a, 1), [_I]),
    "where_int_f64": (lambda m, a, b: m.where(a > 0, a, b), [_I, _F64]),
}


@pytest.mark.parametrize("name", sorted(DTYPE_CASES))
def test_dtype_rules_vs_torch(name):
    torch = require_torch()
    fn, arrays = DTYPE_CASES[name]
    exp = fn(torch, *[torch.tensor(a) for a in arrays])
    got = fn(nc, *[nc.tensor(a) for a in arrays])
    assert str(got.dtype).split(".")[-1] == str(exp.dtype).split(".")[-1], f"{name}: {got.dtype} vs {exp.dtype}"
    np.testing.assert_allclose(got.numpy(), exp.numpy(), rtol=1e-6, err_msg=name)


def test_bool_comparisons_and_float_scalar_ops():
    x = nc.tensor([1.0, 2.0, 3.0])
    assert (x == x).dtype == nc.bool and (x > 0).dtype == nc.bool and (x != 2).dtype == nc.bool
    assert nc.exp(nc.tensor([0, 1])).dtype == nc.float32
    assert (nc.tensor([1, 2]) ** 2).dtype == nc.int64
    assert (nc.tensor([1.0, 2.0]) ** 2.5).dtype == nc.float32
    assert (nc.tensor([1.0, 2.0], dtype=nc.float64) ** 2).dtype == nc.float64


# --------------------------------------------------------------------------------------------- double backward, in-place, errors

@pytest.mark.parametrize("name", ["pow", "rpow", "pow_tt", "log", "sqrt", "rsqrt", "sin",
                                  "cos", "reciprocal", "log1p", "expm1", "erf", "square"])
def test_double_backward(name):
    torch = require_torch()
    # exp, tanh, sigmoid: see test_activation.py::test_double_backward
    fns = {"pow": lambda m, a: a ** 3, "rpow": lambda m, a: 2.5 ** a, "pow_tt": lambda m, a: m.pow(a.abs() + 0.5, a)}
    fn = fns.get(name) or (lambda m, a: getattr(m, name)(a))
    x = rand((3, 4), low=0.2, high=2) if name in ("log", "sqrt", "rsqrt", "reciprocal") else rand((3, 4), low=-0.9, high=2)
    tx, nx = torch.tensor(x, requires_grad=True), nc.tensor(x, requires_grad=True)
    (tg,) = torch.autograd.grad(fn(torch, tx).sum(), tx, create_graph=True)
    (ng,) = nc.autograd.grad(fn(nc, nx).sum(), nx, create_graph=True)
    np.testing.assert_allclose(ng.detach().numpy(), tg.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rand((3, 4), seed=11)
    (tgg,) = torch.autograd.grad((tg * torch.tensor(w)).sum(), tx)
    (ngg,) = nc.autograd.grad((ng * nc.tensor(w)).sum(), nx)
    np.testing.assert_allclose(ngg.numpy(), tgg.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "abs", "sigmoid", "tanh", "square", "sin", "cos", "reciprocal",
                                  "rsqrt", "log1p", "expm1", "floor", "ceil", "round", "sign", "pow", "clamp",
                                  "clamp_min", "clamp_max", "masked_fill"])
def test_inplace_methods_on_nonleaf(name):
    torch = require_torch()
    args = {"pow": (2,), "clamp": (-0.5, 0.5), "clamp_min": (0.1,), "clamp_max": (0.4,)}
    x = rand((3, 4), low=0.2, high=2) if name in ("log", "sqrt", "rsqrt") else frac_away((3, 4)) / 3 + 0.01
    mask = np.random.default_rng(1).random((3, 4)) > 0.5
    w = rand((3, 4), seed=4)

    def run(m, t):
        h = t * 1.5
        a = (m.tensor(mask), -1.0) if name == "masked_fill" else args.get(name, ())
        r = getattr(h, name + "_")(*a)
        assert r is h or (hasattr(r, "data_ptr") and r.data_ptr() == h.data_ptr())
        return (h * m.tensor(w)).sum()

    tx, nx = torch.tensor(x, requires_grad=True), nc.tensor(x, requires_grad=True)
    run(torch, tx).backward()
    run(nc, nx).backward()
    np.testing.assert_allclose(nx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    with pytest.raises(RuntimeError, match="leaf"):
        getattr(nc.tensor(x, requires_grad=True), name + "_")(*((nc.tensor(mask), 0.0) if name == "masked_fill" else args.get(name, ())))


def test_inplace_without_grad_modifies_storage():
    x = nc.tensor([-1.0, 4.0, 9.0])
    v = x.view(3)
    x.abs_()
    x.sqrt_()
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("op", ["pow", "maximum", "minimum", "eq", "lt", "logical_and", "logical_xor"])
def test_broadcast_mismatch_names_both_shapes(op):
    a, b = nc.tensor(rand((3, 4))), nc.tensor(rand((2, 5)))
    with pytest.raises(ValueError, match=rf"\[{op}\].*\(3, 4\).*\(2, 5\)"):
        getattr(nc, op)(a, b)


def test_operator_broadcast_mismatch_names_both_shapes():
    a, b = nc.tensor(rand((3, 4))), nc.tensor(rand((2, 5)))
    for fn in [lambda: a ** b, lambda: a == b, lambda: a > b, lambda: (a > 0) & (b > 0), lambda: nc.clamp(a, b, None)]:
        with pytest.raises(ValueError, match=r"\(3, 4\).*\(2, 5\)"):
            fn()


@pytest.mark.parametrize("p", ["fro", 1, 3, float("inf"), float("-inf"), 0])
@pytest.mark.parametrize("dim", [None, 1])
def test_norm_matches_torch(p, dim):
    check_op(lambda t, a: a.norm(p, dim=dim), lambda n, a: a.norm(p, dim=dim), [_rand((3, 4)) + 0.1],
             dtype=np.float64, grad=p not in (0, float("inf"), float("-inf")))


def test_isclose_allclose_match_torch():
    torch = require_torch()
    a = np.array([1.0, np.nan, np.inf, -np.inf, 1.0, 0.0])
    b = np.array([1.0 + 1e-9, np.nan, np.inf, np.inf, 1.1, 1e-9])
    for equal_nan in (False, True):
        np.testing.assert_array_equal(nc.isclose(nc.tensor(a), nc.tensor(b), equal_nan=equal_nan).numpy(),
                                      torch.isclose(torch.tensor(a), torch.tensor(b), equal_nan=equal_nan).numpy())
    assert nc.allclose(nc.tensor([1.0, 2.0]), nc.tensor([1.0, 2.0 + 1e-9]))
    assert not nc.tensor([1.0]).allclose(nc.tensor([1.1]))
