"""Raw GEMM kernel (neurocore._core._gemm) against numpy float64.

NEUROCORE_CPU=generic|avx2|avx512 selects the kernel path; CI runs this file under each build the CPU has (and
an emulated avx512 build on a CPU without AVX-512, .ci/avx512_emulated).
"""
import itertools

import numpy as np
import pytest

C = pytest.importorskip("neurocore._core")

SMALL = [1, 2, 7, 17, 65]
BIG = [(63, 127, 257), (257, 63, 127), (127, 257, 63), (64, 65, 66), (1, 1024, 784),
       (32, 128, 784), (32, 512, 160), (300, 33, 1030), (1003, 517, 301), (70, 4100, 20),
       (5, 3, 2000), (2000, 3, 5), (40, 1024, 600), (128, 784, 32)]
TRANS = list(itertools.product([False, True], [False, True]))


def _operands(rng, m, n, k, ta, tb, dtype, pad=0):
    """op(A) is m x k, op(B) is k x n; stored arrays may have padded (strided) rows."""
    def mat(r, c, p):
        full = rng.uniform(-1, 1, size=(r, c + p)).astype(dtype)
        return full[:, :c]  # row stride c + p, unit column stride
    a = mat(k, m, pad) if ta else mat(m, k, pad)
    b = mat(n, k, pad + 1 if pad else 0) if tb else mat(k, n, pad + 1 if pad else 0)
    c = mat(m, n, pad + 2)
    return a, b, c


def _reference(ta, tb, alpha, a, b, beta, c):
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    a64 = a64.T if ta else a64
    b64 = b64.T if tb else b64
    c0 = np.zeros(c.shape) if beta == 0 else c.astype(np.float64)
    ref = alpha * (a64 @ b64) + beta * c0
    scale = abs(alpha) * (np.abs(a64) @ np.abs(b64)) + abs(beta) * np.abs(c0) + 1e-30
    return ref, scale


def _check(ta, tb, m, n, k, dtype, alpha, beta, pad, seed=0):
    rng = np.random.default_rng(seed)
    a, b, c = _operands(rng, m, n, k, ta, tb, dtype, pad)
    if beta == 0:
        c[...] = np.nan  # beta == 0: C is write-only, NaN must not leak
    base = c.base if c.base is not None else c
    sentinel_before = base[:, n:].copy()
    ref, scale = _reference(ta, tb, alpha, a, b, beta, c)
    C._gemm(ta, tb, alpha, a, b, beta, c)
    tol = (2e-6 if dtype == np.float32 else 1e-13) * (8 + np.sqrt(k))
    err = np.abs(c.astype(np.float64) - ref) / scale
    assert np.all(err <= tol), f"max rel err {np.nanmax(err)} (ta={ta} tb={tb} m={m} n={n} k={k})"
    np.testing.assert_array_equal(base[:, n:], sentinel_before)  # padding untouched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", TRANS)
def test_small_shapes(ta, tb, dtype):
    for i, (m, n, k) in enumerate(itertools.product(SMALL, SMALL, SMALL)):
        alpha = [1.0, -0.5, 2.0, 1.0][i % 4]
        beta = [0.0, 1.0, 0.0, -0.75][(i // 4) % 4]
        _check(ta, tb, m, n, k, dtype, alpha, beta, pad=i % 3, seed=i)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", TRANS)
@pytest.mark.parametrize("m,n,k", BIG)
def test_big_shapes(m, n, k, ta, tb, dtype):
    _check(ta, tb, m, n, k, dtype, alpha=0.75, beta=0.0, pad=3)
    _check(ta, tb, m, n, k, dtype, alpha=1.0, beta=-0.5, pad=0, seed=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_k_zero_and_alpha_zero(dtype):
    rng = np.random.default_rng(3)
    a = np.zeros((9, 0), dtype)
    b = np.zeros((0, 33), dtype)
    c = rng.uniform(-1, 1, (9, 33)).astype(dtype)
    c0 = c.copy()
    C._gemm(False, False, 1.0, a, b, 0.5, c)
    np.testing.assert_allclose(c, 0.5 * c0, rtol=1e-6)
    a = rng.uniform(-1, 1, (9, 20)).astype(dtype)
    b = rng.uniform(-1, 1, (20, 33)).astype(dtype)
    c[...] = np.nan
    C._gemm(False, False, 0.0, a, b, 0.0, c)
    assert np.all(c == 0)


def test_matches_numpy_matmul_float32():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((200, 300), dtype=np.float32)
    b = rng.standard_normal((300, 150), dtype=np.float32)
    c = np.empty((200, 150), np.float32)
    C._gemm(False, False, 1.0, a, b, 0.0, c)
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


def test_errors_name_gemm_and_shapes():
    a = np.zeros((3, 4), np.float32)
    b = np.zeros((5, 6), np.float32)
    c = np.zeros((3, 6), np.float32)
    with pytest.raises(ValueError, match=r"\[gemm\].*\(3, 4\).*\(5, 6\)"):
        C._gemm(False, False, 1.0, a, b, 0.0, c)
    with pytest.raises(ValueError, match=r"\[gemm\]"):
        C._gemm(False, False, 1.0, a, np.zeros((4, 6), np.float64), 0.0, c)
    with pytest.raises(ValueError, match=r"\[gemm\]"):
        C._gemm(False, False, 1.0, a, np.zeros((4, 6), np.float32), 0.0, np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"\[gemm\]"):  # non-unit column stride
        C._gemm(False, False, 1.0, np.zeros((4, 3), np.float32).T, np.zeros((4, 6), np.float32), 0.0, c)
    with pytest.raises(ValueError, match=r"\[gemm\]"):  # integer dtype
        C._gemm(False, False, 1.0, a.astype(np.int32), b.astype(np.int32), 0.0, c.astype(np.int32))


def test_thread_count_independent():
    import os
    import subprocess
    import sys
    code = (
        "import numpy as np, neurocore._core as C\n"
        "rng = np.random.default_rng(5)\n"
        "out = []\n"
        "for (m, n, k, ta, tb, beta) in [(1000, 700, 300, 0, 0, 0.5), (32, 2048, 300, 0, 1, 0.5), (130, 130, 600, 1, 1, 0.5),\n"
        "                                (7, 3000, 100, 1, 0, 0.5), (32, 700, 600, 0, 1, 0.0), (128, 784, 32, 1, 0, 0.0)]:\n"
        "    a = rng.uniform(-1, 1, (k, m) if ta else (m, k)).astype(np.float32)\n"
        "    b = rng.uniform(-1, 1, (n, k) if tb else (k, n)).astype(np.float32)\n"
        "    c = np.ones((m, n), np.float32)\n"
        "    C._gemm(bool(ta), bool(tb), 0.75, a, b, beta, c)\n"
        "    out.append(c.tobytes())\n"
        "import hashlib, sys\n"
        "sys.stdout.write(hashlib.sha256(b''.join(out)).hexdigest())\n")
    digests = []
    for threads in ("1", "2"):
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        digests.append(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                      capture_output=True, text=True).stdout)
    assert digests[0] == digests[1]


@pytest.mark.parametrize("ta", [False, True])
def test_transposed_b_gives_the_bits_of_b(ta):
    # op(B) = B^T with few rows of op(A) is computed as C^T = op(B)^T op(A)^T (gemm.cpp, via_ct):
    # the same arithmetic per element, so the same bits as B stored untransposed; bias and ReLU
    # (a Linear's epilogue, as a per-row bias there) too.
    import neurocore as nc
    import neurocore.nn.functional as F
    rng = np.random.default_rng(6)
    for m, n, k in [(32, 128, 784), (17, 300, 40), (24, 97, 513), (32, 64, 128)]:
        a = rng.uniform(-1, 1, (k, m) if ta else (m, k)).astype(np.float32)
        b = rng.uniform(-1, 1, (n, k)).astype(np.float32)
        c_t = np.full((m, n), np.nan, np.float32)
        c_n = np.full((m, n), np.nan, np.float32)
        C._gemm(ta, True, 0.75, a, b, 0.0, c_t)
        C._gemm(ta, False, 0.75, a, np.ascontiguousarray(b.T), 0.0, c_n)
        np.testing.assert_array_equal(c_t, c_n)
        x = nc.tensor(a.T if ta else a)
        bias = rng.uniform(-1, 1, n).astype(np.float32)
        for weight_grad in (True, False):  # the GEMM on W^T (training) and the pre-packed weight
            w = nc.tensor(b, requires_grad=weight_grad)
            via_t = F.relu(F.linear(x, w, nc.tensor(bias))).detach().numpy()
            via_n = np.maximum((x @ nc.tensor(np.ascontiguousarray(b.T))).numpy() + bias, 0)
            np.testing.assert_array_equal(via_t, via_n)
