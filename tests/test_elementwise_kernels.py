"""The per-ISA fast paths for contiguous float operands (kernels/elementwise, kernels/softmax).

Each fast result is compared with the general strided path on the same values (a non-contiguous
view takes that path), bit for bit where the kernels promise it, and with PyTorch. The suite runs
under both CPU paths (NEUROCORE_CPU=generic and the default).
"""
import operator

import numpy as np
import pytest

import neurocore as nc
from helpers import require_torch

LENGTHS = [1, 7, 8, 9, 1023, 100003]
DTYPES = [np.float32, np.float64]
SPECIALS = [np.nan, np.inf, -np.inf, -0.0, 0.0]


def values(n, dtype, seed=0, specials=True):
    a = np.random.default_rng(seed).uniform(-3, 3, size=n).astype(dtype)
    if specials:
        # Special values at fixed spots, among them the vector tails.
        for k, v in enumerate(SPECIALS):
            a[(k * 7919 + seed) % n] = v
    return a


def strided(a):
    """The same values as a non-contiguous view, which takes the general strided path."""
    wide = np.zeros((a.shape[0], 2), dtype=a.dtype)
    wide[:, 0] = a
    t = nc.tensor(wide)[:, 0]
    assert not t.is_contiguous() or a.shape[0] == 1  # one element is always contiguous
    return t


def assert_same_bits(actual, expected, what=""):
    """Equal values, equal signs of zero, NaN in the same places (NaN payloads may differ)."""
    x = actual.detach().numpy() if isinstance(actual, nc.Tensor) else np.asarray(actual)
    y = expected.detach().numpy() if isinstance(expected, nc.Tensor) else np.asarray(expected)
    assert x.shape == y.shape and x.dtype == y.dtype, what
    nan_x, nan_y = np.isnan(x), np.isnan(y)
    np.testing.assert_array_equal(nan_x, nan_y, err_msg=what + " (NaN positions)")
    np.testing.assert_array_equal(x[~nan_x], y[~nan_y], err_msg=what)
    np.testing.assert_array_equal(np.signbit(x[~nan_x]), np.signbit(y[~nan_y]), err_msg=what + " (signs)")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_fast_matches_strided_and_torch(op, n, dtype):
    torch = require_torch()
    a, b = values(n, dtype, 1), values(n, dtype, 2)
    fn = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}[op]
    fast = fn(nc.tensor(a), nc.tensor(b))
    assert_same_bits(fast, fn(strided(a), strided(b)), f"{op} contiguous")
    expected = fn(torch.tensor(a), torch.tensor(b)).numpy()
    np.testing.assert_array_equal(fast.numpy(), expected)
    # A broadcast scalar on either side: 0-dim tensors, one-element tensors and Python numbers.
    for s in [nc.tensor(np.array(0.37, dtype=dtype)), nc.tensor(np.array([-1.5], dtype=dtype)), 2.5]:
        ts = torch.tensor(s.numpy()) if isinstance(s, nc.Tensor) else s
        left, right = fn(nc.tensor(a), s), fn(s, nc.tensor(a))
        assert left.dtype == right.dtype == nc.tensor(a).dtype
        assert_same_bits(left, fn(strided(a), s), f"{op} tensor-scalar")
        assert_same_bits(right, fn(s, strided(a)), f"{op} scalar-tensor")
        np.testing.assert_array_equal(left.numpy(), fn(torch.tensor(a), ts).numpy())
        # torch computes number / tensor as a reciprocal times the number: within an ulp.
        np.testing.assert_allclose(right.numpy(), fn(ts, torch.tensor(a)).numpy(), atol=0,
                                   rtol=1e-6 if dtype == np.float32 else 1e-15)


def test_binary_scalar_of_other_dtype_and_shape():
    torch = require_torch()
    a = values(1023, np.float32, 3)
    for s in [np.array(1 / 3, dtype=np.float64), np.array([[0.1]], dtype=np.float32)]:
        got = nc.div(nc.tensor(a), nc.tensor(s))
        want = torch.div(torch.tensor(a), torch.tensor(s))
        assert got.numpy().shape == tuple(want.shape) and got.numpy().dtype == want.numpy().dtype
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_inplace_binary_uses_same_values():
    a, b = values(100003, np.float32, 4), values(100003, np.float32, 5)
    t = nc.tensor(a)
    t.mul_(nc.tensor(b))
    assert_same_bits(t, nc.mul(strided(a), strided(b)), "mul_")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activation_forward_backward(name, n, dtype):
    torch = require_torch()
    a, g = values(n, dtype, 6), values(n, dtype, 7, specials=False)
    fn = getattr(nc, name)
    x = nc.tensor(a, requires_grad=True)
    y = fn(x)
    y.backward(nc.tensor(g))
    if name == "relu":  # relu's forward kernel is new: it must agree bit for bit with the strided path
        assert_same_bits(y, fn(strided(a)), "relu forward")
        assert np.isnan(y.detach().numpy()[np.isnan(a)]).all()  # relu(nan) = nan
    # The fused backward computes exactly these formulas, rounded op by op (no FMA).
    yv = y.detach().numpy()
    want = {"relu": lambda: np.where(yv <= 0, dtype(0), g),
            "sigmoid": lambda: g * (yv * (1 - yv)),
            "tanh": lambda: g * (1 - yv * yv)}[name]()
    assert_same_bits(x.grad, want.astype(dtype), f"{name} backward")
    # A strided gradient takes the same kernel.
    x2 = nc.tensor(a, requires_grad=True)
    fn(x2).backward(strided(g))
    assert_same_bits(x2.grad, x.grad, f"{name} backward, strided g")
    # Special inputs against the mathematical values (PyTorch's depend on its ISA kernel), the rest against PyTorch.
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    exact = {"relu": lambda v: np.where(v > 0, v, 0.0), "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh}[name]
    special = ~np.isfinite(a)
    with np.errstate(all="ignore"):
        want = exact(a.astype(np.float64)).astype(dtype)
    want[np.isnan(a)] = np.nan
    np.testing.assert_allclose(yv[special], want[special], equal_nan=True, **tol)
    xt = torch.tensor(np.where(special, 0, a), requires_grad=True)
    yt = getattr(torch, name)(xt)
    yt.backward(torch.tensor(g))
    finite = ~special
    np.testing.assert_allclose(yv[finite], yt.detach().numpy()[finite], **tol)
    np.testing.assert_allclose(x.grad.numpy()[finite], xt.grad.numpy()[finite], **tol)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("n", LENGTHS[:-1] + [4099])
def test_softmax_rows_match_torch(n, log):
    torch = require_torch()
    rows = 3 if n > 1000 else 37
    a = np.random.default_rng(n).normal(0, 4, size=(rows, n)).astype(np.float32)
    g = np.random.default_rng(n + 1).normal(size=(rows, n)).astype(np.float32)
    if n > 2:
        a[0, 1] = -np.inf  # a masked entry
    a[1, :] = -np.inf  # a fully masked row: 0 / 0, NaN
    name = "log_softmax" if log else "softmax"
    x = nc.tensor(a, requires_grad=True)
    y = getattr(nc, name)(x, dim=1)
    y.backward(nc.tensor(g))
    xt = torch.tensor(a, requires_grad=True)
    yt = getattr(torch, name)(xt, dim=1)
    yt.backward(torch.tensor(g))
    # The fully masked row is compared with its mathematical value (0 / 0), the others with PyTorch.
    keep = [r for r in range(rows) if r != 1]
    assert np.isnan(y.detach().numpy()[1]).all() and np.isnan(x.grad.numpy()[1]).all()
    np.testing.assert_allclose(y.detach().numpy()[keep], yt.detach().numpy()[keep], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy()[keep], xt.grad.numpy()[keep], rtol=1e-4, atol=1e-6)
    # The strided-row path (softmax over dim 0 of the transpose) agrees.
    xc = nc.tensor(np.ascontiguousarray(a.T), requires_grad=True)
    yc = getattr(nc, name)(xc, dim=0)
    yc.backward(nc.tensor(np.ascontiguousarray(g.T)))
    np.testing.assert_allclose(y.detach().numpy(), yc.detach().numpy().T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy()[keep], xc.grad.numpy().T[keep], rtol=1e-4, atol=1e-6)


def test_softmax_nan_row():
    a = np.random.default_rng(0).normal(size=(4, 9)).astype(np.float32)
    a[2, 8] = np.nan
    for name in ["softmax", "log_softmax"]:
        y = getattr(nc, name)(nc.tensor(a), dim=-1).numpy()
        assert np.isnan(y[2]).all() and not np.isnan(y[[0, 1, 3]]).any()


def test_results_do_not_depend_on_thread_count():
    a, b = values(300007, np.float32, 8), values(300007, np.float32, 9)
    m = np.random.default_rng(10).normal(size=(301, 1023)).astype(np.float32)
    gm = np.random.default_rng(11).normal(size=(301, 1023)).astype(np.float32)

    def run():
        out = [nc.add(nc.tensor(a), nc.tensor(b)), nc.div(nc.tensor(a), 3.0), nc.relu(nc.tensor(a))]
        for name in ["relu", "sigmoid", "tanh"]:
            x = nc.tensor(a, requires_grad=True)
            getattr(nc, name)(x).backward(nc.tensor(b))
            out.append(x.grad)
        for name in ["softmax", "log_softmax"]:
            x = nc.tensor(m, requires_grad=True)
            y = getattr(nc, name)(x, dim=1)
            y.backward(nc.tensor(gm))
            out += [y.detach(), x.grad]
        return [t.numpy().copy() for t in out]

    before = nc.get_num_threads()
    try:
        nc.set_num_threads(1)
        one = run()
        nc.set_num_threads(3)
        three = run()
    finally:
        nc.set_num_threads(before)
    for k, (p, q) in enumerate(zip(one, three)):
        assert_same_bits(p, q, f"result {k}")


# ----------------------------------------------------------------------------- broadcast fast paths

# (dense operand shape, broadcast operand shape): a row vector repeated down (inner run = the
# vector), one value per contiguous plane ((N, C, H, W) + (1, C, 1, 1)), and a few other blocks.
BROADCASTS = [((37, 1023), (1023,)), ((37, 1023), (1, 1023)), ((100003, 3), (3,)), ((3, 100003), (100003,)),
              ((4, 5, 7, 9), (1, 5, 1, 1)), ((4, 5, 7, 9), (5, 1, 1)), ((2, 16, 64, 64), (1, 16, 1, 1)),
              ((3, 5, 40000), (5, 1)), ((4, 5, 7, 9), (7, 9)), ((4, 5, 7, 9), (9,)), ((6, 5, 8), (5, 8)),
              ((6, 1, 8), (5, 1)), ((2, 3, 4), (3, 1)), ((8,), (8,)), ((7, 9), ())]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_broadcast_fast_matches_strided_and_torch(op, shapes, dtype):
    torch = require_torch()
    fn = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}[op]
    a = np.random.default_rng(1).uniform(-3, 3, size=shapes[0]).astype(dtype)
    v = np.random.default_rng(2).uniform(0.5, 3, size=shapes[1]).astype(dtype)
    a.reshape(-1)[:len(SPECIALS)] = SPECIALS[:a.size]
    for left, right in [(a, v), (v, a)]:  # the vector on either side
        got = fn(nc.tensor(left), nc.tensor(right))
        want = fn(torch.tensor(left), torch.tensor(right)).numpy()
        assert_same_bits(got, want, f"{op} {left.shape} {right.shape}")
        # the general strided loop (a non-contiguous copy of the dense operand) gives the same bits
        wide = np.zeros(a.shape + (2,), dtype)
        wide[..., 0] = a
        sa = nc.tensor(wide)[..., 0]
        assert not sa.is_contiguous() or a.size <= 1
        general = fn(sa, nc.tensor(v)) if left is a else fn(nc.tensor(v), sa)
        assert_same_bits(got, general, f"{op} strided")


def test_broadcast_of_other_dtypes_and_views():
    torch = require_torch()
    a = np.random.default_rng(3).normal(size=(64, 33)).astype(np.float32)
    cases = [np.arange(33),                                   # int64 vector: converted, float32 result
             np.random.default_rng(4).normal(size=33),        # float64 vector: float64 result (general path)
             np.random.default_rng(5).normal(size=(33, 2)).astype(np.float32)[:, 1]]  # strided vector
    for v in cases:
        got = nc.tensor(a) * nc.tensor(v) if v.flags.c_contiguous else nc.tensor(a) * nc.tensor(np.ascontiguousarray(v))
        want = (torch.tensor(a) * torch.tensor(np.ascontiguousarray(v))).numpy()
        assert got.numpy().dtype == want.dtype
        np.testing.assert_array_equal(got.numpy(), want)
    # a strided vector view of an nc tensor
    m = nc.tensor(np.random.default_rng(6).normal(size=(33, 2)).astype(np.float32))
    np.testing.assert_array_equal((nc.tensor(a) + m[:, 1]).numpy(), a + m.numpy()[:, 1])


@pytest.mark.parametrize("op", ["add_", "sub_", "mul_", "div_"])
def test_inplace_broadcast_and_aliasing(op):
    torch = require_torch()
    rng = np.random.default_rng(7)
    a = rng.uniform(0.5, 2, size=(2, 8, 9, 11)).astype(np.float32)
    vectors = [rng.uniform(0.5, 2, size=s).astype(np.float32) for s in [(8, 1, 1), (11,)]]
    for v in vectors + [np.float32(1.7), a]:
        t = nc.tensor(a.copy())
        getattr(t, op)(nc.tensor(np.asarray(v)))
        want = torch.tensor(a.copy())
        getattr(want, op)(torch.tensor(np.asarray(v)))
        np.testing.assert_array_equal(t.numpy(), want.numpy())
    # operands that share memory with the output read their values from before the write
    t = nc.tensor(a.copy())
    getattr(t, op)(t)
    np.testing.assert_array_equal(t.numpy(), getattr(torch.tensor(a.copy()), op)(torch.tensor(a.copy())).numpy())
    m = nc.tensor(a[0, 0].copy())  # (9, 11)
    getattr(m, op)(m[0])  # the first row, broadcast down: it must not change under the write
    want = getattr(torch.tensor(a[0, 0].copy()), op)(torch.tensor(a[0, 0, 0].copy()))
    np.testing.assert_array_equal(m.numpy(), want.numpy())
    r = nc.tensor(a[0, 0, 0].copy())
    getattr(r[1:], op)(r[:-1])  # overlapping views: the old values, as if into a new tensor
    expected = a[0, 0, 0].copy()
    expected[1:] = {"add_": np.add, "sub_": np.subtract, "mul_": np.multiply, "div_": np.divide}[op](
        a[0, 0, 0, 1:], a[0, 0, 0, :-1])
    np.testing.assert_array_equal(r.numpy(), expected)


def test_broadcast_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(8)
    a = rng.normal(size=(3, 7, 113, 129)).astype(np.float32)
    vs = [rng.normal(size=(1, 7, 1, 1)).astype(np.float32), rng.normal(size=(129,)).astype(np.float32)]

    def run():
        out = []
        for v in vs:
            out += [nc.tensor(a) + nc.tensor(v), nc.tensor(v) / nc.tensor(a)]
            t = nc.tensor(a.copy())
            t.mul_(nc.tensor(v))
            out.append(t)
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
        assert_same_bits(p, q, f"result {k}")


def test_large_outputs_streamed_give_the_same_values():
    """Outputs beyond the caches (9 MB, one thread) and an in-place write into a view that starts off
    a vector boundary: the values must be those of the same op on small pieces."""
    n = (9 << 20) // 4 + 13
    a, b = values(n, np.float32, 11), values(n, np.float32, 12)
    before = nc.get_num_threads()
    try:
        nc.set_num_threads(1)
        ops = {"add": lambda x, y: x + y, "div": lambda x, y: x / y, "scalar": lambda x, y: x * 1.5,
               "relu": lambda x, y: nc.relu(x), "exp": lambda x, y: nc.exp(x),
               "gelu": lambda x, y: nc.nn.functional.gelu(x)}
        for name, fn in ops.items():
            whole = fn(nc.tensor(a), nc.tensor(b)).numpy()
            step = 100003
            parts = np.concatenate([fn(nc.tensor(a[i:i + step]), nc.tensor(b[i:i + step])).numpy()
                                    for i in range(0, n, step)])
            assert_same_bits(whole, parts, name)
        # backward kernels, and an in-place write into an unaligned view (offset by one element)
        x = nc.tensor(a, requires_grad=True)
        nc.sigmoid(x).backward(nc.tensor(b))
        assert_same_bits(x.grad, nc.tensor(b) * (nc.sigmoid(nc.tensor(a)) * (1 - nc.sigmoid(nc.tensor(a)))), "sigmoid'")
        t = nc.tensor(np.concatenate([[0], a]).astype(np.float32))
        t[1:].add_(nc.tensor(b))
        assert_same_bits(t[1:], nc.tensor(a) + nc.tensor(b), "add_ into a view")
    finally:
        nc.set_num_threads(before)
