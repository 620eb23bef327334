"""Reductions and softmax: max/min/amax/amin/argmax/argmin, var/std, logsumexp, softmax/log_softmax,
all/any, gather/scatter_add, their Tensor methods, tie rules, stability, threads and empty inputs."""
import os

import numpy as np
import pytest

import neurocore as nc
from helpers import check_op, gradcheck, rand, require_torch

DTYPES = [np.float32, np.float64]


def distinct(shape, seed=0, dtype=np.float64):
    """Values without ties (a random permutation, scaled), so max/min gradients are well defined."""
    n = int(np.prod(shape))
    return np.asarray(np.random.default_rng(seed).permutation(n).reshape(shape) / max(n, 1) - 0.5, dtype=dtype)


# ----------------------------------------------------------------------------- max / min family

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["max", "min", "amax", "amin"])
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 4), ()])
def test_extreme_full(fn, shape, dtype):
    check_op(lambda t, a: getattr(t, fn)(a), lambda n, a: getattr(n, fn)(a), [distinct(shape)], dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["max", "min"])
@pytest.mark.parametrize("dim,keepdim", [(0, False), (1, True), (-1, False), (2, True), (-3, False)])
def test_extreme_dim(fn, dim, keepdim, dtype):
    out = check_op(lambda t, a: tuple(getattr(t, fn)(a, dim, keepdim)),
                   lambda n, a: tuple(getattr(n, fn)(a, dim, keepdim)), [distinct((2, 3, 4))], dtype=dtype)
    res = getattr(nc, fn)(nc.tensor(distinct((2, 3, 4))), dim=dim, keepdim=keepdim)
    assert type(res).__name__ == fn and res.values is res[0] and res.indices is res[1]
    assert res.indices.dtype == nc.int64
    assert out is not None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["max", "min"])
@pytest.mark.parametrize("shapes", [[(3, 4), (3, 4)], [(3, 4), (4,)], [(2, 1, 3), (4, 1)]])
def test_extreme_elementwise(fn, shapes, dtype):
    arrays = [distinct(shapes[0], seed=1), distinct(shapes[1], seed=2) + 0.013]
    check_op(lambda t, a, b: getattr(t, fn)(a, b), lambda n, a, b: getattr(n, fn)(a, b), arrays, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["amax", "amin"])
@pytest.mark.parametrize("dim,keepdim", [(0, False), (-1, True), ((0, 2), False), ((1, 2), True), ((-1, 0, 1), False)])
def test_amax_amin_dims(fn, dim, keepdim, dtype):
    check_op(lambda t, a: getattr(t, fn)(a, dim, keepdim), lambda n, a: getattr(n, fn)(a, dim, keepdim),
             [distinct((2, 3, 4))], dtype=dtype)


@pytest.mark.parametrize("fn", ["argmax", "argmin"])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (None, True), (0, False), (1, True), (-1, False)])
def test_argmax_argmin(fn, dim, keepdim):
    x = distinct((3, 4, 5))
    check_op(lambda t, a: getattr(t, fn)(a, dim=dim, keepdim=keepdim),
             lambda n, a: getattr(n, fn)(a, dim=dim, keepdim=keepdim), [x], grad=False)
    # ties: torch returns the first occurrence
    y = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, 2.0]])
    check_op(lambda t, a: getattr(t, fn)(a, dim=dim if dim in (None, 0) else 1, keepdim=keepdim),
             lambda n, a: getattr(n, fn)(a, dim=dim if dim in (None, 0) else 1, keepdim=keepdim), [y], grad=False)


def test_extreme_gradcheck():
    x = distinct((3, 4), seed=3)
    for fn in ["max", "min", "amax", "amin"]:
        gradcheck(lambda a: getattr(nc, fn)(a), [x])
        gradcheck(lambda a: getattr(nc, fn)(a, 1, True)[0] if fn in ("max", "min") else getattr(nc, fn)(a, 1, True), [x])
    gradcheck(lambda a: nc.amax(a, (0, 1)), [x])
    gradcheck(lambda a, b: nc.max(a, b), [x, distinct((4,), seed=4) + 0.013])
    gradcheck(lambda a, b: nc.min(a, b), [x, distinct((4,), seed=4) + 0.013])


# ----------------------------------------------------------------------------- tie rules

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["max", "min", "amax", "amin"])
def test_full_reduction_ties_spread_gradient(fn, dtype):
    torch = require_torch()
    x = np.array([[1.0, 3.0, 3.0], [-2.0, 3.0, -2.0]], dtype)
    t = torch.tensor(x, requires_grad=True)
    (torch.amax if fn in ("max", "amax") else torch.amin)(t).backward()
    n = nc.tensor(x, requires_grad=True)
    getattr(nc, fn)(n).backward()
    np.testing.assert_array_equal(n.grad.numpy(), t.grad.numpy())
    check_op(lambda tt, a: getattr(tt, fn)(a), lambda nn, a: getattr(nn, fn)(a), [x], dtype=dtype)


@pytest.mark.parametrize("fn", ["amax", "amin"])
def test_amax_dim_ties_spread_gradient(fn):
    x = np.array([[1.0, 3.0, 3.0, 3.0], [-2.0, 0.5, -2.0, 0.5]])
    check_op(lambda t, a: getattr(t, fn)(a, 1), lambda n, a: getattr(n, fn)(a, 1), [x], dtype=np.float64)


@pytest.mark.parametrize("fn", ["max", "min"])
def test_max_dim_ties_route_to_index(fn):
    x = np.array([[1.0, 3.0, 3.0, 3.0], [-2.0, 0.5, -2.0, 0.5]])
    n = nc.tensor(x, requires_grad=True)
    values, indices = getattr(nc, fn)(n, 1)
    values.sum().backward()
    expected = np.zeros_like(x)
    expected[np.arange(2), indices.numpy()] = 1.0
    np.testing.assert_array_equal(n.grad.numpy(), expected)
    check_op(lambda t, a: tuple(getattr(t, fn)(a, 1)), lambda nn, a: tuple(getattr(nn, fn)(a, 1)), [x], dtype=np.float64)


# ----------------------------------------------------------------------------- var / std

VAR_CASES = [dict(), dict(dim=0), dict(dim=1, keepdim=True), dict(dim=(0, 2)), dict(dim=-1, unbiased=False),
             dict(dim=(1, 2), unbiased=True, keepdim=True), dict(dim=1, correction=0), dict(dim=None, correction=2),
             dict(dim=(0, 1), correction=1, keepdim=True), dict(unbiased=False)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["var", "std"])
@pytest.mark.parametrize("kw", VAR_CASES, ids=str)
def test_var_std(fn, kw, dtype):
    def torch_call(t, a):
        kw2 = dict(kw)
        if "unbiased" in kw2:  # torch deprecates unbiased=; correction is the same thing
            kw2["correction"] = 1 if kw2.pop("unbiased") else 0
        return getattr(t, fn)(a, **kw2)
    check_op(torch_call, lambda n, a: getattr(n, fn)(a, **kw), [rand((3, 4, 5))], dtype=dtype,
             rtol=1e-4 if dtype == np.float32 else None)
    gradcheck(lambda a: getattr(nc, fn)(a, **kw), [rand((2, 3, 3), seed=5)])


def test_var_positional_unbiased_overload():
    torch = require_torch()
    x = rand((4, 5))
    np.testing.assert_allclose(nc.var(nc.tensor(x), False).item(), torch.var(torch.tensor(x), False).item(), rtol=1e-12)
    np.testing.assert_allclose(nc.std(nc.tensor(x), True).item(), torch.std(torch.tensor(x), True).item(), rtol=1e-12)


# ----------------------------------------------------------------------------- logsumexp / softmax

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim,keepdim", [(0, False), (1, True), (-1, False), ((0, 2), True), ((1, 2), False)])
def test_logsumexp(dim, keepdim, dtype):
    check_op(lambda t, a: t.logsumexp(a, dim, keepdim), lambda n, a: n.logsumexp(a, dim, keepdim),
             [rand((2, 3, 4), low=-3, high=3)], dtype=dtype)
    gradcheck(lambda a: nc.logsumexp(a, dim, keepdim), [rand((2, 3, 2), seed=6, low=-3, high=3)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,dim", [((5,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -1), ((2, 3, 4), 1), ((2, 3, 4, 5), 2)])
def test_softmax(fn, shape, dim, dtype):
    check_op(lambda t, a: getattr(t, fn)(a, dim), lambda n, a: getattr(n, fn)(a, dim),
             [rand(shape, low=-4, high=4)], dtype=dtype)
    check_op(lambda t, a: getattr(t.nn.functional, fn)(a, dim=dim), lambda n, a: getattr(n.nn.functional, fn)(a, dim=dim),
             [rand(shape, seed=3, low=-4, high=4)], dtype=dtype)
    gradcheck(lambda a: getattr(nc, fn)(a, dim), [rand(shape[:2] + (2,) * (len(shape) - 2), seed=7)] if len(shape) > 2
              else [rand(shape, seed=7)])


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_dtype_argument(fn):
    check_op(lambda t, a: getattr(t, fn)(a, 1, dtype=t.float64), lambda n, a: getattr(n, fn)(a, 1, dtype=n.float64),
             [rand((3, 4))], dtype=np.float32, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_stability_large_logits(fn, dtype):
    x = np.array([[1e4, -1e4, 0.0, 1e4 - 1.0], [-1e4, -1e4 + 2.0, -1e4 + 1.0, -1e4], [1e4, 1e4, 1e4, 1e4]])
    # float32 spacing at 1e4 is ~1e-3: exp(x - lse) in logsumexp's backward differs by rounding of lse only
    rtol = 2e-3 if dtype == np.float32 and fn == "logsumexp" else None
    out = check_op(lambda t, a: getattr(t, fn)(a, 1), lambda n, a: getattr(n, fn)(a, 1), [x], dtype=dtype, rtol=rtol)
    assert np.all(np.isfinite(out.detach().numpy()))
    n = nc.tensor(x.astype(dtype), requires_grad=True)
    getattr(nc, fn)(n, 1).sum().backward()
    assert np.all(np.isfinite(n.grad.numpy()))


# ----------------------------------------------------------------------------- all / any

@pytest.mark.parametrize("fn", ["all", "any"])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, False), (1, True), (-1, False)])
@pytest.mark.parametrize("src", ["bool", "float"])
def test_all_any(fn, dim, keepdim, src):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(4, 5)) < 0.7
    x[0] = True
    x[1] = False
    arr = x if src == "bool" else np.where(x, rng.uniform(0.5, 2.0, size=x.shape), 0.0)
    kw = {} if dim is None else dict(dim=dim, keepdim=keepdim)
    check_op(lambda t, a: getattr(t, fn)(t.tensor(arr), **kw), lambda n, a: getattr(n, fn)(n.tensor(arr), **kw),
             [0], grad=False)
    check_op(lambda t, a: getattr(t.tensor(arr), fn)(**kw), lambda n, a: getattr(n.tensor(arr), fn)(**kw),
             [0], grad=False)


# ----------------------------------------------------------------------------- gather / scatter_add

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim,ishape", [(0, (2, 4)), (1, (3, 2)), (-1, (3, 6)), (1, (2, 1))])
def test_gather(dim, ishape, dtype):
    x = rand((3, 4))
    size = x.shape[dim]
    idx = np.random.default_rng(1).integers(0, size, size=ishape).astype(np.int64)
    check_op(lambda t, a, i: t.gather(a, dim, i), lambda n, a, i: n.gather(a, dim, i), [x, idx], dtype=dtype)
    check_op(lambda t, a, i: a.gather(dim, i), lambda n, a, i: a.gather(dim, i), [x, idx], dtype=dtype)
    gradcheck(lambda a: nc.gather(a, dim, nc.tensor(idx)), [x])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim,ishape", [(0, (5, 4)), (1, (3, 7)), (-1, (2, 3)), (0, (3, 2))])
def test_scatter_add(dim, ishape, dtype):
    x = rand((3, 4))
    src = rand((5, 7), seed=2)
    idx = np.random.default_rng(3).integers(0, x.shape[dim], size=ishape).astype(np.int64)  # repeats accumulate
    check_op(lambda t, a, i, s: t.scatter_add(a, dim, i, s), lambda n, a, i, s: n.scatter_add(a, dim, i, s),
             [x, idx, src[:ishape[0], :ishape[1]].copy()], dtype=dtype)
    check_op(lambda t, a, i, s: a.scatter_add(dim, i, s), lambda n, a, i, s: a.scatter_add(dim, i, s),
             [x, idx, src[:ishape[0], :ishape[1]].copy()], dtype=dtype)
    gradcheck(lambda a, s: nc.scatter_add(a, dim, nc.tensor(idx), s), [x, src[:ishape[0], :ishape[1]].copy()])


def test_gather_index_out_of_range():
    with pytest.raises(IndexError):
        nc.gather(nc.tensor(rand((3, 4))), 1, nc.tensor(np.array([[0, 4]], np.int64)))


# ----------------------------------------------------------------------------- Tensor methods

METHODS = [
    ("max1", lambda a: tuple(a.max(1))), ("min0k", lambda a: tuple(a.min(0, keepdim=True))),
    ("maxfull", lambda a: a.max()), ("amax", lambda a: a.amax((0, 1))), ("amin", lambda a: a.amin(-1, True)),
    ("argmax", lambda a: a.argmax(dim=1)), ("argmin", lambda a: a.argmin()),
    ("std0", lambda a: a.std(0)), ("var", lambda a: a.var(1, keepdim=True)), ("varc", lambda a: a.var(correction=0)),
    ("softmax", lambda a: a.softmax(-1)), ("log_softmax", lambda a: a.log_softmax(0)),
    ("logsumexp", lambda a: a.logsumexp(1)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,fn", METHODS, ids=[m[0] for m in METHODS])
def test_tensor_methods(name, fn, dtype):
    check_op(lambda t, a: fn(a), lambda n, a: fn(a), [distinct((4, 5), seed=9)], dtype=dtype,
             rtol=1e-4 if dtype == np.float32 else None)


# ----------------------------------------------------------------------------- threads / empty

@pytest.mark.parametrize("fn", ["sum", "var", "softmax", "logsumexp", "std", "amax"])
def test_thread_count_independent(fn):
    x = nc.tensor(rand((1 << 20,), np.float32, seed=11, low=-3, high=3))
    call = {"sum": lambda: x.sum(), "var": lambda: nc.var(x), "std": lambda: nc.std(x), "amax": lambda: nc.amax(x),
            "softmax": lambda: nc.softmax(x, 0), "logsumexp": lambda: nc.logsumexp(x, 0)}[fn]
    old = nc.get_num_threads()
    try:
        nc.set_num_threads(1)
        a = call().numpy().copy()
        nc.set_num_threads(2)
        b = call().numpy().copy()
    finally:
        nc.set_num_threads(old)
    assert a.tobytes() == b.tobytes()


def test_thread_count_independent_2d():
    x = nc.tensor(rand((1024, 1024), np.float32, seed=12, low=-3, high=3))
    old = nc.get_num_threads()
    outs = []
    try:
        for n in (1, 2):
            nc.set_num_threads(n)
            outs.append([f().numpy().copy() for f in (lambda: x.sum(0), lambda: nc.var(x, 1), lambda: nc.softmax(x, 0),
                                                      lambda: nc.logsumexp(x, 1))])
    finally:
        nc.set_num_threads(old)
    for a, b in zip(*outs):
        assert a.tobytes() == b.tobytes()


def test_empty_reductions():
    torch = require_torch()
    e = np.zeros((0, 3), np.float32)
    assert nc.tensor(e).sum().item() == 0.0 == torch.tensor(e).sum().item()
    assert np.isnan(nc.tensor(e).mean().item()) and np.isnan(torch.tensor(e).mean().item())
    check_op(lambda t, a: a.sum(0), lambda n, a: a.sum(0), [e], dtype=np.float32)
    check_op(lambda t, a: a.sum(1), lambda n, a: a.sum(1), [e], dtype=np.float32)
    check_op(lambda t, a: t.amax(a, 1), lambda n, a: n.amax(a, 1), [e], dtype=np.float32)
    check_op(lambda t, a: t.softmax(a, 1), lambda n, a: n.softmax(a, 1), [e], dtype=np.float32)
    with pytest.raises(ValueError, match="max"):
        nc.max(nc.tensor(e))
    with pytest.raises(ValueError, match="max"):
        nc.tensor(e).max()
    with pytest.raises((ValueError, IndexError)):
        nc.max(nc.tensor(e), 0)
    with pytest.raises(ValueError, match="min"):
        nc.min(nc.tensor(e))


def test_bad_dims():
    x = nc.tensor(rand((2, 3)))
    for f in (lambda: nc.max(x, 2), lambda: nc.argmax(x, -3), lambda: nc.softmax(x, 5), lambda: nc.var(x, 2),
              lambda: nc.logsumexp(x, 3), lambda: nc.amax(x, (0, 0))):
        with pytest.raises((IndexError, ValueError, RuntimeError)):
            f()
    with pytest.raises(TypeError):
        nc.max(x, keepdim=True)


# ----------------------------------------------------------------------------- float kernels: rows, full sums, threads

ROW_SHAPES = [(37, 1023), (3, 100003), (5000, 7), (2, 31), (4, 32), (1, 1), (3, 4097)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ROW_SHAPES, ids=str)
def test_row_reductions_match_torch(shape, dtype):
    torch = require_torch()
    x = np.random.default_rng(shape[1]).normal(0, 2, size=shape).astype(dtype)
    t, tt = nc.tensor(x), torch.tensor(x)
    exact = x.astype(np.float64).sum(axis=-1)
    scale = np.abs(x).astype(np.float64).sum(axis=-1)
    # The sum accumulates in double: the float32 result is the exact sum rounded (within an ulp).
    np.testing.assert_allclose(t.sum(-1).numpy(), exact, rtol=2.0 ** -23 if dtype == np.float32 else 1e-15,
                               atol=1e-13 * scale.max())
    np.testing.assert_allclose(t.sum(-1).numpy(), tt.sum(-1).numpy(), rtol=1e-5, atol=1e-6 * scale.max())
    np.testing.assert_allclose(t.mean(-1).numpy(), tt.mean(-1).numpy(), rtol=1e-5, atol=1e-6 * scale.max() / shape[1])
    np.testing.assert_array_equal(t.amax(-1).numpy(), tt.amax(-1).numpy())
    np.testing.assert_array_equal(t.amin(-1).numpy(), tt.amin(-1).numpy())
    for fn in ["max", "min"]:
        v, i = getattr(t, fn)(-1)
        tv, ti = getattr(tt, fn)(-1)
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
    # the full sum and a sum over rows (columns of a row-major block)
    np.testing.assert_allclose(t.sum().numpy(), exact.sum(), rtol=2.0 ** -23, atol=1e-13 * scale.sum())
    np.testing.assert_allclose(t.sum(0).numpy(), tt.sum(0).numpy(), rtol=1e-5, atol=1e-6 * np.abs(x).sum(0).max())
    np.testing.assert_array_equal(t.amax().numpy(), tt.amax().numpy())


def test_row_extremes_with_nan_and_signed_zeros():
    torch = require_torch()
    rows = []
    for pos in [0, 5, 31, 32, 40, 99]:  # in the first vector block, later blocks and the scalar tail
        r = np.arange(100, dtype=np.float32) - 50
        r[pos] = np.nan
        rows.append(r)
    z = np.zeros(100, np.float32)
    z[::3] = -0.0
    rows += [z, -z]
    x = np.stack(rows)
    for fn in ["max", "min"]:
        v, i = getattr(nc.tensor(x), fn)(-1)
        tv, ti = getattr(torch.tensor(x), fn)(-1)
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        # of equal elements (+0 and -0) the first is picked, value and sign from that element
        np.testing.assert_array_equal(np.signbit(v.numpy()[-2:]), np.signbit(x[-2:, 0]))
        assert (i.numpy()[-2:] == 0).all()
        np.testing.assert_array_equal(getattr(nc.tensor(x), "a" + fn)(-1).numpy(),
                                      getattr(torch.tensor(x), "a" + fn)(-1).numpy())


def test_float_reductions_do_not_depend_on_thread_count():
    rng = np.random.default_rng(9)
    big = rng.normal(size=1 << 20).astype(np.float32) * 1e3
    rows = rng.normal(size=(301, 4099)).astype(np.float32)

    def run():
        b, r = nc.tensor(big), nc.tensor(rows)
        out = [b.sum(), b.mean(), b.amax(), r.sum(-1), r.mean(-1), r.amax(-1), r.max(-1)[0], r.max(-1)[1], r.sum(0),
               nc.tensor(big.astype(np.float64)).sum()]
        return [o.numpy().copy() for o in out]

    before = nc.get_num_threads()
    try:
        nc.set_num_threads(1)
        one = run()
        nc.set_num_threads(3)
        three = run()
    finally:
        nc.set_num_threads(before)
    for k, (p, q) in enumerate(zip(one, three)):
        np.testing.assert_array_equal(p, q, err_msg=f"result {k}")


def test_float_sums_are_the_same_on_every_cpu_path():
    """The AVX2 and generic kernels add in the same fixed order: identical bits."""
    import subprocess
    import sys
    code = ("import numpy as np, neurocore as nc\n"
            "x = np.random.default_rng(10).normal(size=(7, 100003)).astype(np.float32)\n"
            "print(repr(nc.tensor(x).sum().item()), repr(nc.tensor(x).sum(-1).numpy().tolist()),"
            " repr(nc.tensor(x.astype(np.float64)).sum(0).numpy()[:50].tolist()))\n")
    outs = set()
    runnable = nc._core._cpu_supports("avx512") or nc._core._avx512_emulated()
    for isa in ["generic", "auto"] + (["avx2", "avx512"] if runnable else []):
        path = os.pathsep.join([os.path.dirname(os.path.dirname(nc.__file__)), os.environ.get("PYTHONPATH", "")])
        env = dict(os.environ, NEUROCORE_CPU=isa, PYTHONPATH=path)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        outs.add(r.stdout)
    assert len(outs) == 1, outs
