"""Pre-packed GEMM weights: the kernel entry (pack_b + gemm_prepacked) against the unpacked GEMM
and numpy float64; the packed-weight cache of eager Linear (used under no_grad, dropped by every
kind of weight update); the runtime's weights packed at load against eager.

NEUROCORE_CPU=generic|avx2|avx512 selects the kernel build, as for tests/test_gemm.py.
"""
import itertools

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn

from helpers import weight_update_cases, with_threads

C = nc._core

# (260, 270, 1100): m and n large enough for the long K blocks of large products (gemm.cpp's
# k_block), ragged in all three.
SHAPES = [(8, 1, 1), (9, 17, 3), (13, 33, 65), (31, 16, 385), (64, 128, 4096), (65, 70, 130), (100, 257, 769),
          (257, 63, 127), (300, 4100, 20), (1, 40, 7), (5, 3, 2000), (260, 270, 1100)]
TRANS = list(itertools.product([False, True], [False, True]))


def _operands(rng, m, n, k, ta, tb, dtype):
    def mat(r, c):  # padded rows: row stride c + 3
        return rng.uniform(-1, 1, size=(r, c + 3)).astype(dtype)[:, :c]
    a = mat(k, m) if ta else mat(m, k)
    b = mat(n, k) if tb else mat(k, n)
    return a, b, mat(m, n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", TRANS)
def test_prepacked_matches_unpacked_and_numpy(ta, tb, dtype):
    rng = np.random.default_rng(0)
    for m, n, k in SHAPES:
        a, b, c0 = _operands(rng, m, n, k, ta, tb, dtype)
        bias = rng.uniform(-1, 1, n).astype(dtype)
        for alpha, beta, use_bias, relu in [(1.0, 0.0, False, False), (0.5, 2.0, True, True)]:
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            a64, b64 = (a64.T if ta else a64), (b64.T if tb else b64)
            ref = alpha * (a64 @ b64) + beta * c0.astype(np.float64) + (bias if use_bias else 0)
            scale = abs(alpha) * (np.abs(a64) @ np.abs(b64)) + abs(beta) * np.abs(c0) + use_bias + 1e-30
            if relu:
                ref = np.maximum(ref, 0)

            def packed():
                c = c0.copy()
                if beta == 0:
                    c[...] = np.nan  # write-only C
                C._gemm_prepacked(ta, tb, alpha, a, b, beta, c, bias if use_bias else None, relu)
                return c
            one, two = with_threads(1, packed), with_threads(2, packed)
            assert np.array_equal(one, two), (m, n, k)  # the same bits whatever the thread count
            tol = (2e-6 if dtype == np.float32 else 1e-13) * (8 + np.sqrt(k))
            err = np.abs(one.astype(np.float64) - ref) / scale
            assert np.all(err <= tol), f"max rel err {err.max()} (ta={ta} tb={tb} m={m} n={n} k={k})"
            if not use_bias and m >= 8:
                # The unpacked GEMM sums in the same K blocks from zero, so its bits are the same.
                c = c0.copy()
                C._gemm(ta, tb, alpha, a, b, beta, c)
                assert np.array_equal(one, c), (ta, tb, m, n, k)


def test_prepacked_errors():
    a, b = np.ones((4, 3), np.float32), np.ones((3, 5), np.float32)
    with pytest.raises(ValueError, match=r"\[gemm\] shape mismatch"):
        C._gemm_prepacked(False, False, 1.0, a, b.T.copy(), 0.0, np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"\[gemm\] bias must be 1-D with n elements"):
        C._gemm_prepacked(False, False, 1.0, a, b, 0.0, np.zeros((4, 5), np.float32), np.ones(4, np.float32))


# ---- eager Linear: the packed copy cached on the weight --------------------------------------

def _linear(in_f, out_f, dtype=nc.float32, seed=0):
    nc.manual_seed(seed)
    lin = nn.Linear(in_f, out_f)
    if dtype != nc.float32:
        lin = lin.to(dtype)
    return lin


def _expected(x, w, b, relu=False):
    y = x.astype(np.float64) @ w.astype(np.float64).T + b.astype(np.float64)
    return np.maximum(y, 0) if relu else y


def _weights(lin):
    # Read through a copy (tolist), not numpy(): a NumPy view of the weight turns its cache off.
    return np.array(lin.weight.tolist()), np.array(lin.bias.tolist())


@pytest.mark.parametrize("dtype", [nc.float32, nc.float64])
def test_no_grad_linear_uses_a_cached_packed_weight(dtype):
    lin = _linear(300, 70, dtype)
    x0 = np.random.default_rng(1).standard_normal((32, 300))
    x = nc.tensor(x0).to(dtype)
    w, b = _weights(lin)
    with nc.no_grad():
        y1 = lin(x)
    assert C._has_packed_weight(lin.weight)
    with nc.no_grad():
        y2 = lin(x)
    y3 = lin(x)  # with history: the unpacked GEMM, whose K blocks are the same
    assert np.array_equal(y1.numpy(), y2.numpy()) and np.array_equal(y1.numpy(), y3.detach().numpy())
    tol = 1e-4 if dtype == nc.float32 else 1e-12
    np.testing.assert_allclose(y1.numpy(), _expected(x0, w, b), rtol=tol, atol=tol)
    with nc.no_grad():  # few rows (batch-1 inference): the unpacked paths, nothing packed for them
        lin2 = _linear(300, 70, dtype, seed=5)
        lin2(x[:4])
    assert not C._has_packed_weight(lin2.weight)


def test_training_forward_packs_nothing():
    lin = _linear(300, 70)
    lin(nc.randn(32, 300)).sum().backward()
    assert not C._has_packed_weight(lin.weight)


@pytest.mark.parametrize("update", weight_update_cases(lambda lin: nc.randn(16, lin.in_features),
                                                       lambda lin: _linear(lin.in_features, lin.out_features, seed=9)),
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("fused_relu", [False, True])
def test_weight_updates_drop_the_cache(update, fused_relu):
    lin = _linear(200, 40)
    model = nn.Sequential(lin, nn.ReLU()) if fused_relu else lin  # Sequential fuses Linear+ReLU under no_grad
    x0 = np.random.default_rng(2).standard_normal((24, 200)).astype(np.float32)
    x = nc.tensor(x0)
    with nc.no_grad():
        before = model(x).numpy()
    assert C._has_packed_weight(lin.weight)
    update(lin)
    assert not C._has_packed_weight(lin.weight)  # the version moved on: the copy no longer matches
    w, b = _weights(lin)
    with nc.no_grad():
        after = model(x).numpy()
    assert C._has_packed_weight(lin.weight)  # repacked from the new values
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, _expected(x0, w, b, fused_relu), rtol=1e-4, atol=1e-4)


def test_numpy_view_turns_the_cache_off():
    lin = _linear(200, 40)
    x = nc.randn(24, 200)
    view = lin.weight.detach().numpy()  # NumPy writes bump no version counter
    view[...] = 0.5
    with nc.no_grad():
        y = lin(x).numpy()
    assert not C._has_packed_weight(lin.weight)
    np.testing.assert_allclose(y, _expected(x.numpy(), np.full((40, 200), 0.5), np.array(lin.bias.tolist())),
                               rtol=1e-4, atol=1e-4)
    view[...] = 0.25  # seen at once: nothing cached
    with nc.no_grad():
        y = lin(x).numpy()
    np.testing.assert_allclose(y, _expected(x.numpy(), np.full((40, 200), 0.25), np.array(lin.bias.tolist())),
                               rtol=1e-4, atol=1e-4)


def test_views_of_one_storage_do_not_share_a_copy():
    # Two weights that are views of one storage (different offsets) each get the right product.
    flat = nc.randn(2 * 40 * 200)
    w1, w2 = flat[:8000].reshape(40, 200), flat[8000:].reshape(40, 200)
    x = nc.randn(24, 200)
    with nc.no_grad():
        for _ in range(2):
            y1, y2 = nc.nn.functional.linear(x, w1), nc.nn.functional.linear(x, w2)
            np.testing.assert_allclose(y1.numpy(), _expected(x.numpy(), np.array(w1.tolist()), np.zeros(40)),
                                       rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(y2.numpy(), _expected(x.numpy(), np.array(w2.tolist()), np.zeros(40)),
                                       rtol=1e-4, atol=1e-4)
        wt = flat[:8000].reshape(200, 40).t()  # the same memory as w1, transposed strides
        yt = nc.nn.functional.linear(x, wt)
        np.testing.assert_allclose(yt.numpy(), _expected(x.numpy(), np.array(wt.tolist()), np.zeros(40)),
                                   rtol=1e-4, atol=1e-4)


def test_cache_is_freed_with_the_weight():
    import gc
    import weakref
    lin = _linear(512, 256)
    with nc.no_grad():
        lin(nc.randn(32, 512))
    assert C._has_packed_weight(lin.weight)
    ref = weakref.ref(lin.weight)
    del lin
    gc.collect()
    assert ref() is None  # (the copy lives in the storage, which the weight alone held)


# ---- the runtime: weights packed at load ------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 16, 64])
def test_runtime_prepacked_equals_eager(tmp_path, batch):
    nc.manual_seed(0)
    model = nn.Sequential(nn.Linear(300, 129), nn.ReLU(), nn.Linear(129, 64), nn.Tanh(), nn.Linear(64, 10)).eval()
    x = np.random.default_rng(3).standard_normal((batch, 300)).astype(np.float32)
    path = tmp_path / "mlp.ncm"
    nc.export.save(model, path, (x,))
    sess = nc.export.load(path)
    got = sess.run(x)
    got = got[0] if isinstance(got, (list, tuple)) else got
    with nc.no_grad():
        want = model(nc.tensor(x)).numpy()
    # Both multiply from packed weights (batch >= 16) or both from the unpacked ones: the same bits.
    assert np.array_equal(np.asarray(got), want)
