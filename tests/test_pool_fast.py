"""The pooling kernels (kernels/pool.*) against PyTorch and against themselves: the vectorised rows
(stride 1 or 2, eight outputs at a time, the last block overlapping, partial blocks for short
rows; 2x2 / stride 2 in float32 and float64, rows shorter than a vector included), the border and
plain-code fallbacks, NaN/inf/tie rules with exact indices, gradients, batch 1, non-contiguous
input, 1 vs 2 threads and the generic vs AVX2 (and avx512) build, bit for bit. Also the one-pass gradient of sum() into
relu's backward. The suite runs under both CPU paths (NEUROCORE_CPU=generic and the default)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import neurocore as nc
import neurocore.nn.functional as F
from helpers import assert_close, check_op, rand, require_torch

TOL32 = dict(rtol=1e-5, atol=1e-6)

# (shape, kernel, stride, padding, dilation, ceil_mode): widths that give vector rows with and
# without an overlapping last block, rows narrower than one vector, borders on both sides.
MAX_FAST = [
    ((2, 3, 32, 32), 2, 2, 0, 1, False),
    ((1, 2, 19, 37), 2, 2, 0, 1, False),
    ((2, 2, 17, 35), 2, 2, 0, 1, True),
    ((2, 3, 32, 32), 3, 2, 1, 1, False),
    ((1, 2, 21, 45), 3, 2, 1, 1, True),
    ((2, 2, 16, 29), 3, 1, 1, 1, False),
    ((1, 1, 9, 40), (2, 5), (1, 2), (1, 2), 1, False),
    ((1, 2, 12, 40), 3, (2, 1), 0, (2, 3), False),
    ((1, 2, 8, 7), 2, 2, 0, 1, False),   # rows shorter than a vector
    ((3, 4, 14, 14), 2, 2, 0, 1, False),  # 7 outputs a row (a CNN's second pool)
    ((2, 3, 13, 13), 2, 2, 0, 1, False),  # 6 outputs a row, odd width (the Keras CNN's 13x13 maps)
    ((1, 1, 10, 60), 3, 3, 1, 1, True),  # stride 3: the plain row loop
]


def nan_ties_input(shape, dtype, seed):
    """Small integers (many ties, zeros of both signs), some NaN and infinities."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-2, 3, size=shape).astype(dtype)
    a[rng.random(shape) < 0.3] *= -1  # -0.0 among the zeros
    flat = a.reshape(-1)
    flat[rng.integers(0, flat.size, max(1, flat.size // 50))] = np.nan
    flat[rng.integers(0, flat.size, max(1, flat.size // 50))] = -np.inf
    flat[rng.integers(0, flat.size, max(1, flat.size // 80))] = np.inf
    return a


def assert_same_bits(actual, expected, what=""):
    x = actual.detach().numpy() if isinstance(actual, nc.Tensor) else np.asarray(actual)
    y = expected.detach().numpy() if hasattr(expected, "detach") else np.asarray(expected)
    assert x.shape == y.shape and x.dtype == y.dtype, what
    nx, ny = np.isnan(x), np.isnan(y)
    np.testing.assert_array_equal(nx, ny, err_msg=what + " (NaN positions)")
    np.testing.assert_array_equal(x[~nx], y[~ny], err_msg=what)
    np.testing.assert_array_equal(np.signbit(x[~nx]), np.signbit(y[~ny]), err_msg=what + " (signs)")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", MAX_FAST)
def test_max_pool_fast_paths_match_torch(case, dtype):
    shape, k, s, p, d, ceil = case
    f = lambda lib, x: lib.nn.functional.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    check_op(f, f, [rand(shape, dtype, 2)], dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", MAX_FAST)
def test_max_pool_nan_inf_ties_exact_indices(case, dtype):
    torch = require_torch()
    shape, k, s, p, d, ceil = case
    x = nan_ties_input(shape, dtype, 5)
    ty, ti = torch.nn.functional.max_pool2d(torch.tensor(x), k, s, p, d, ceil, return_indices=True)
    y, i = F.max_pool2d(nc.tensor(x), k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    assert_same_bits(y, ty, "values")
    # Without indices (inference) the values are the same bits.
    with nc.no_grad():
        assert_same_bits(F.max_pool2d(nc.tensor(x), k, s, p, d, ceil), ty, "values without indices")
    # The gradient lands on the argmax, NaN windows included.
    xg, txg = nc.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    g = rand(tuple(ty.shape), dtype, 9)
    (F.max_pool2d(xg, k, s, p, d, ceil) * nc.tensor(g)).sum().backward()
    (torch.nn.functional.max_pool2d(txg, k, s, p, d, ceil) * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(xg.grad.numpy(), txg.grad.numpy())


@pytest.mark.parametrize("k,s,p,d", [(16, 1, 0, 1), ((15, 17), (2, 1), (3, 8), 1), (3, 2, 1, 2)])
def test_max_pool_gradient_without_indices_matches_torch(k, s, p, d):
    # Windows of up to 254 taps record the max by tap number for backward, larger ones by
    # position; create_graph turns tap numbers into positions.
    torch = require_torch()
    x = rand((2, 3, 21, 40), np.float64, 18)
    out = []
    for lib, mk in ((torch, torch.tensor), (nc, nc.tensor)):
        xt = mk(x, requires_grad=True)
        y = lib.nn.functional.max_pool2d(xt * xt, k, s, p, d)
        (gx,) = lib.autograd.grad((y * y).sum(), [xt], create_graph=True)
        (gx * gx).sum().backward()
        out.append((y, gx, xt.grad))
    for a, b in zip(out[1], out[0]):
        assert_close(a, b, rtol=1e-10, atol=1e-12)


def _slice_windows(x, k, s, width):
    """Max pools x (no padding) both whole and in column slices narrower than one vector of
    outputs (partial vectors in the AVX2 build, one output at a time in the generic one); returns
    both (values, indices in x's plane)."""
    y, i = F.max_pool2d(nc.tensor(x), k, s, return_indices=True)
    W = x.shape[-1]
    ys, idx = [], []
    for a in range(0, y.shape[-1], width):
        m = min(width, y.shape[-1] - a)
        c0 = a * s
        part = np.ascontiguousarray(x[..., c0:c0 + s * (m - 1) + k])
        py, pi = F.max_pool2d(nc.tensor(part), k, s, return_indices=True)
        pi = pi.numpy()
        ys.append(py.numpy())
        idx.append((pi // part.shape[-1]) * W + pi % part.shape[-1] + c0)
    return (y.numpy(), i.numpy()), (np.concatenate(ys, -1), np.concatenate(idx, -1))


@pytest.mark.parametrize("k,s", [(2, 2), (3, 2), (3, 1), (2, 1)])
def test_max_pool_vector_rows_equal_scalar_rows(k, s):
    x = nan_ties_input((2, 3, 7, 53), np.float32, 11)
    (y, i), (ys, is_) = _slice_windows(x, k, s, 5)
    assert_same_bits(y, ys)
    np.testing.assert_array_equal(i, is_)


AVG_FAST = [  # shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    ((2, 3, 32, 32), 2, 2, 0, False, True, None),
    ((1, 2, 19, 37), 2, 2, 0, True, True, None),
    ((2, 2, 17, 35), 3, 2, 1, False, False, None),
    ((1, 2, 21, 45), 3, 2, 1, True, True, None),
    ((2, 2, 16, 29), 3, 1, 1, False, False, None),
    ((1, 2, 16, 29), 3, 1, 1, False, True, 5),
    ((1, 1, 9, 40), (2, 5), (1, 2), (1, 2), False, True, None),
    ((1, 2, 8, 7), 2, 2, 0, False, True, None),
    ((2, 3, 13, 13), 2, 2, 0, False, False, None),
    ((1, 2, 6, 22), 2, 2, 0, False, True, 3),
    ((1, 1, 10, 60), 3, 3, 1, True, False, None),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", AVG_FAST)
def test_avg_pool_fast_paths_match_torch(case, dtype):
    shape, k, s, p, ceil, cip, div = case
    f = lambda lib, x: lib.nn.functional.avg_pool2d(x, k, s, p, ceil, cip, div)
    check_op(f, f, [rand(shape, dtype, 3)], dtype=dtype)


def test_avg_pool_vector_rows_equal_scalar_rows():
    x = rand((2, 3, 6, 53), np.float32, 4)
    for k, s in [(2, 2), (3, 2), (3, 1)]:
        y = F.avg_pool2d(nc.tensor(x), k, s).numpy()
        for a in range(0, y.shape[-1], 5):
            m = min(5, y.shape[-1] - a)
            part = np.ascontiguousarray(x[..., a * s:a * s + s * (m - 1) + k])
            assert_same_bits(F.avg_pool2d(nc.tensor(part), k, s), y[..., a:a + m])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 16, 7, 7), (1, 3, 32, 32), (5, 1, 1), (2, 3, 1, 40)])
def test_global_avg_pool_matches_torch(shape, dtype):
    f = lambda lib, x: lib.nn.functional.adaptive_avg_pool2d(x, 1)
    check_op(f, f, [rand(shape, dtype, 6)], dtype=dtype)
    f = lambda lib, x: lib.nn.functional.adaptive_avg_pool2d(x, (1, 1)).sum()
    check_op(f, f, [rand(shape, dtype, 7)], dtype=dtype)


def test_global_avg_pool_nan_and_inf():
    torch = require_torch()
    x = rand((2, 3, 5, 5), np.float32, 8)
    x[0, 1, 2, 2] = np.nan
    x[1, 0, 0, 0] = np.inf
    x[1, 2, 4, 4], x[1, 2, 0, 1] = np.inf, -np.inf
    assert_close(F.adaptive_avg_pool2d(nc.tensor(x), 1), torch.nn.functional.adaptive_avg_pool2d(torch.tensor(x), 1),
                 **TOL32)


def test_pool_batch1_unbatched_and_non_contiguous():
    torch = require_torch()
    base = rand((3, 2, 40, 36), np.float32, 12)
    views = [
        (nc.tensor(base)[:1], torch.tensor(base)[:1]),
        (nc.tensor(base)[0], torch.tensor(base)[0]),
        (nc.tensor(base).transpose(2, 3), torch.tensor(base).transpose(2, 3)),
        (nc.tensor(base)[:, :, ::2, 1:], torch.tensor(base)[:, :, ::2, 1:]),
    ]
    for n, t in views:
        for fn in (lambda L, x: L.nn.functional.max_pool2d(x, 2, 2, return_indices=True),
                   lambda L, x: L.nn.functional.max_pool2d(x, 3, 1, 1, return_indices=True),
                   lambda L, x: L.nn.functional.avg_pool2d(x, 3, 2, 1),
                   lambda L, x: L.nn.functional.adaptive_avg_pool2d(x, 1),
                   lambda L, x: L.nn.functional.adaptive_avg_pool2d(x, (5, 3))):
            a, b = fn(nc, n), fn(torch, t)
            for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
                assert_close(u, v, **TOL32)


def test_pool1d_long_rows_match_torch():
    x = rand((3, 40, 70), np.float32, 13)
    for f in (lambda lib, x: lib.nn.functional.max_pool1d(x, 2, return_indices=True),
              lambda lib, x: lib.nn.functional.max_pool1d(x, 3, 1, 1),
              lambda lib, x: lib.nn.functional.avg_pool1d(x, 3, 2, 1),
              lambda lib, x: lib.nn.functional.adaptive_avg_pool1d(x, 1)):
        check_op(f, f, [x], dtype=np.float32)


def _all_pool_outputs(x):
    """Forward values, indices and input gradients of every pooling op on x (a numpy array)."""
    out = []
    for fn in (lambda t: (F.max_pool2d(t, 2),),  # backward from tap numbers
               lambda t: (F.max_pool2d(t, 3, 2, 1),),
               lambda t: F.max_pool2d(t, 2, 2, return_indices=True),
               lambda t: F.max_pool2d(t, 3, 2, 1, return_indices=True),
               lambda t: F.max_pool2d(t, 3, 1, 1, return_indices=True),
               lambda t: F.max_pool2d(t, (2, 3), (1, 3), 1, (2, 1), return_indices=True),
               lambda t: (F.avg_pool2d(t, 2, 2),),
               lambda t: (F.avg_pool2d(t, 3, 1, 1, count_include_pad=False),),
               lambda t: (F.avg_pool2d(t, 3, 2, 1, ceil_mode=True),),
               lambda t: (F.adaptive_avg_pool2d(t, 1),),
               lambda t: (F.adaptive_avg_pool2d(t, (5, 7)),)):
        xt = nc.tensor(x, requires_grad=True)
        r = fn(xt)
        g = np.cos(np.arange(r[0].numel(), dtype=x.dtype)).reshape(tuple(r[0].shape))
        (r[0] * nc.tensor(g)).sum().backward()
        out += [v.detach().numpy() for v in r] + [xt.grad.numpy()]
    return out


@pytest.mark.parametrize("shape,dtype", [((4, 8, 30, 34), np.float32), ((8, 40, 14, 14), np.float32),
                                         ((6, 16, 13, 13), np.float64)])  # wide rows; rows of 7 and 6 outputs
def test_pool_thread_count_bit_identical(shape, dtype):
    x = nan_ties_input(shape, dtype, 14)
    x[np.isinf(x)] = 1.5  # keep the gradients finite
    x[np.isnan(x)] = 0.25
    old = nc.get_num_threads()
    try:
        nc.set_num_threads(1)
        one = _all_pool_outputs(x)
        nc.set_num_threads(2)
        two = _all_pool_outputs(x)
    finally:
        nc.set_num_threads(old)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


_ISA_SCRIPT = """
import sys
import numpy as np
sys.path.insert(0, {tests!r})
import neurocore as nc
from test_pool_fast import _all_pool_outputs
x = np.load({src!r})
np.savez({dst!r}, *_all_pool_outputs(x))
"""


@pytest.mark.parametrize("shape,dtype", [((2, 3, 21, 45), np.float32), ((3, 5, 14, 14), np.float32),
                                         ((3, 5, 13, 13), np.float32), ((2, 3, 13, 27), np.float64)])
def test_pool_kernel_builds_bit_identical(tmp_path, shape, dtype):
    if not nc._core.cpu_supports_avx2():
        pytest.skip("no AVX2 on this CPU")
    x = rand(shape, dtype, 15)
    np.save(tmp_path / "x.npy", x)
    results = {}
    isas = ["generic", "avx2"] + (["avx512"] if nc._core._cpu_supports("avx512") or nc._core._avx512_emulated() else [])
    for isa in isas:
        env = dict(os.environ, NEUROCORE_CPU=isa)
        dst = tmp_path / f"{isa}.npz"
        code = _ISA_SCRIPT.format(tests=os.path.dirname(__file__), src=str(tmp_path / "x.npy"), dst=str(dst))
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        with np.load(dst) as z:
            results[isa] = [z[f"arr_{k}"] for k in range(len(z.files))]
    for isa in isas[1:]:
        for a, b in zip(results["generic"], results[isa]):
            np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8), err_msg=isa)


def test_max_pool_inference_returns_values_only():
    x = nc.tensor(rand((1, 2, 8, 8), np.float32, 16))
    with nc.no_grad():
        y = F.max_pool2d(x, 2)
    assert isinstance(y, nc.Tensor) and tuple(y.shape) == (1, 2, 4, 4)
    y, i = F.max_pool2d(x, 2, return_indices=True)
    assert i.dtype == nc.int64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sum_and_mean_gradient_through_relu_matches_torch(dtype):
    # The broadcast one-value gradient of sum()/mean() goes through relu's backward kernel
    # without being made dense first.
    x = rand((3, 5, 67), dtype, 17)
    x[0, 0, :4] = [0.0, -0.0, np.nan, 2.0]
    for f in (lambda lib, x: lib.nn.functional.relu(x).sum(),
              lambda lib, x: lib.nn.functional.relu(x).mean(),
              lambda lib, x: lib.sigmoid(x).sum(),
              lambda lib, x: lib.tanh(x).mean()):
        check_op(f, f, [x], dtype=dtype)


def test_broadcast_one_value_made_dense():
    for dtype in (np.float32, np.float64, np.int64):
        one = nc.tensor(np.array(3, dtype=dtype))
        d = one.expand(4, 3, 5000).contiguous().numpy()
        assert d.dtype == dtype and np.all(d == 3)
    v = nc.tensor(np.array([[2.5]], np.float32)).expand(7, 9).contiguous()
    np.testing.assert_array_equal(v.numpy(), np.full((7, 9), 2.5, np.float32))
