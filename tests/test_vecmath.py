"""Vectorised float32 math kernels against float64 references over the whole float range,
including +-inf, NaN and denormals, measured in ULP of the float32 result.

Measured maxima over the sampled range (AVX2 path; the avx512 build gives the very same floats,
bit for bit but for NaN payloads, see test_avx512_build_gives_the_avx2_floats, and measured
exactly these figures under .ci/avx512_emulated on 2026-12-07; the generic path calls the C library
or evaluates the formulas in double, and stays within the same bounds):
  exp 1.2, log 0.76, tanh 1.25, sigmoid 2.47, erf 1.78, expm1 1.38, log1p 2.37 ULP.
  Activations through the ops (contiguous float32 takes the kernels): GELU 4.84, GELU tanh 3.47,
  SiLU 2.81, Mish 3.71, ELU 0.99, SELU 1.86, Softplus 2.67 ULP; LeakyReLU and Hardtanh exact.
  Derivatives (the backward kernels with g = 1), as |error| / max(|f'(x)|, 1) in units of 2^-24
  (absolute where |f'| < 1: near its zero f' is a difference of two rounded terms): GELU 1.85,
  GELU tanh 3.04, SiLU 3.46, Mish 2.67, ELU 1.05, SELU 2.81, Softplus 1.48.
"""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import neurocore as nc
import neurocore.nn.functional as F

C = nc._core


def _all_floats(step=997):
    bits = np.arange(0, 1 << 32, step, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38,
                        88.72283, 88.7229, -87.33654, -103.9, -104.0, 1.0, -1.0, 0.625, -0.625, 9.0, -9.0],
                       dtype=np.float32)
    return np.concatenate([x, special])


def _ulp_error(y, ref):
    with np.errstate(over="ignore"):
        ref32 = ref.astype(np.float32)
    finite = np.isfinite(ref32)
    with np.errstate(over="ignore"):  # the spacing of the largest float is inf (its error counts as 0)
        spacing = np.spacing(np.abs(ref32[finite])).astype(np.float64)
    return np.abs(y[finite].astype(np.float64) - ref[finite]) / spacing


_erf = np.frompyfunc(math.erf, 1, 1)
_erfc = np.frompyfunc(math.erfc, 1, 1)
SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def erf64(x):
    return _erf(x).astype(np.float64)


def erfc64(x):
    return _erfc(x).astype(np.float64)


def sigmoid64(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


REFERENCES = {
    "exp": (np.exp, 2.0),
    "log": (np.log, 2.0),
    "tanh": (np.tanh, 3.0),
    "sigmoid": (lambda x: 1.0 / (1.0 + np.exp(-x)), 3.0),
    "erf": (erf64, 2.0),
    "expm1": (np.expm1, 2.0),
    "log1p": (np.log1p, 3.0),
}


def _check_against(fn, x, y, ref, bound):
    # Special values: NaN in -> NaN out; infinities and signs as the reference.
    with np.errstate(over="ignore"):
        ref32 = ref.astype(np.float32)
    wrong = np.isnan(y) != np.isnan(ref32)
    assert not wrong.any(), f"{fn}: NaN pattern differs at x={x[wrong][:5]}"
    inf = np.isinf(ref32)
    assert np.array_equal(y[inf], ref32[inf]), f"{fn}: infinities differ"
    err = _ulp_error(y, ref)
    assert err.max() <= bound, f"{fn}: max error {err.max():.2f} ULP at x={x[np.isfinite(ref32)][err.argmax()]!r}"
    return err.max()


@pytest.mark.parametrize("fn", sorted(REFERENCES))
def test_ulp_error_over_whole_range(fn):
    ref_fn, bound = REFERENCES[fn]
    x = _all_floats()
    with np.errstate(all="ignore"):
        ref = ref_fn(x.astype(np.float64))
    _check_against(fn, x, C._vecmath(fn, x), ref, bound)


# Activations in float64 (the definitions), with the ULP bound of the float32 ops. PyTorch's
# special values: f(-inf) = -inf * 0 = NaN for GELU, SiLU and Mish, as these formulas give too.
def _gelu_tanh64(x):
    return x / (1 + np.exp(-2 * SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)))


ACTIVATIONS = {
    "gelu": (F.gelu, lambda x: 0.5 * x * erfc64(-x / math.sqrt(2)), 5.0),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), _gelu_tanh64, 4.0),
    "silu": (F.silu, lambda x: x / (1 + np.exp(-x)), 3.0),
    "mish": (F.mish, lambda x: x * np.tanh(np.logaddexp(0, x)), 4.0),
    "elu": (F.elu, lambda x: np.where(x > 0, x, np.expm1(x)), 1.5),
    "selu": (F.selu, lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)), 2.0),
    "softplus": (F.softplus, lambda x: np.where(x > 20, x, np.logaddexp(0, x)), 3.0),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_ulp_error_over_whole_range(name):
    fn, ref_fn, bound = ACTIVATIONS[name]
    x = _all_floats()
    with np.errstate(all="ignore"):
        ref = ref_fn(x.astype(np.float64))
    _check_against(name, x, fn(nc.tensor(x)).numpy(), ref, bound)


def test_piecewise_linear_activations_are_exact():
    x = _all_floats(9973)
    with np.errstate(invalid="ignore"):
        want = np.where(x > 0, x, np.float32(0.1) * x)
    np.testing.assert_array_equal(F.leaky_relu(nc.tensor(x), 0.1).numpy(), want)
    np.testing.assert_array_equal(F.hardtanh(nc.tensor(x), -2.0, 3.0).numpy(), np.clip(x, -2, 3))
    np.testing.assert_array_equal(F.relu6(nc.tensor(x)).numpy(), np.clip(x, 0, 6))


# Derivatives in float64 and the bound on |error| / max(|f'|, 1), in units of 2^-24. The bound is
# absolute where f' is small: near its zero (GELU at -0.75, SiLU at -1.28, Mish at -1.19) f' is a
# difference of two terms of size ~0.5, each rounded in float.
def _gelu_tanh_grad64(x):
    s = sigmoid64(2 * SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))
    return s + 2 * x * s * (1 - s) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)


def _mish_grad64(x):
    t = np.tanh(np.logaddexp(0, x))
    return t + x * sigmoid64(x) * (1 - t * t)


DERIVATIVES = {
    "gelu": (lambda x: 0.5 * erfc64(-x / math.sqrt(2)) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi), 3.0),
    "gelu_tanh": (_gelu_tanh_grad64, 4.0),
    "silu": (lambda x: sigmoid64(x) * (1 + x * (1 - sigmoid64(x))), 4.5),
    "mish": (_mish_grad64, 4.0),
    "elu": (lambda x: np.where(x > 0, 1.0, np.exp(x)), 2.0),
    "selu": (lambda x: SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(x)), 3.5),
    "softplus": (lambda x: np.where(x > 20, 1.0, sigmoid64(x)), 2.5),
}


def _derivative_points():
    rng = np.random.default_rng(0)
    x = np.concatenate([_all_floats(99991), rng.normal(0, 3, 200000).astype(np.float32),
                        rng.uniform(-120, 100, 50000).astype(np.float32)])
    return x[np.isfinite(x)]


@pytest.mark.parametrize("name", sorted(DERIVATIVES))
def test_activation_derivative_error(name):
    fn = ACTIVATIONS[name][0]
    ref_fn, bound = DERIVATIVES[name]
    x = _derivative_points()
    t = nc.tensor(x, requires_grad=True)
    fn(t).backward(nc.ones_like(t))
    g = t.grad.numpy().astype(np.float64)
    with np.errstate(all="ignore"):
        ref = ref_fn(x.astype(np.float64))
    assert not np.isnan(g).any()
    err = np.abs(g - ref) / np.maximum(np.abs(ref), 1.0) / 2.0 ** -24
    assert err.max() <= bound, f"{name}': max error {err.max():.2f} at x={x[err.argmax()]!r}"


@pytest.mark.parametrize("name", ["gelu", "silu", "mish"])
def test_activation_derivative_special_values(name):
    """PyTorch's conventions: the derivative is NaN at +-inf and at NaN, finite elsewhere."""
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-45, 3e38, -3e38, 50.0, -50.0, 200.0, -200.0], np.float32)
    for fn in [ACTIVATIONS[name][0], lambda t: F.gelu(t, approximate="tanh")]:
        t = nc.tensor(x, requires_grad=True)
        fn(t).backward(nc.ones_like(t))
        g = t.grad.numpy()
        assert np.isnan(g[:3]).all() and np.isfinite(g[3:]).all(), g


def test_fast_and_portable_paths_agree():
    """Contiguous float32 takes the kernels; a strided view takes the scalar formulas (double inside).
    On the generic path both are the same formulas, bit for bit; on AVX2 they agree within the bounds."""
    x = _all_floats(4999)
    wide = np.zeros((x.shape[0], 2), np.float32)
    wide[:, 0] = x
    strided = nc.tensor(wide)[:, 0]
    for name, (fn, _, bound) in ACTIVATIONS.items():
        fast, portable = fn(nc.tensor(x)).numpy(), fn(strided).numpy()
        if C.cpu_capability() == "generic":
            np.testing.assert_array_equal(fast, portable, err_msg=name)
        else:
            _check_against(name, x, fast, portable.astype(np.float64), bound + 0.5)


def test_results_do_not_depend_on_position():
    x = np.random.default_rng(0).uniform(-20, 20, 1001).astype(np.float32)
    for fn in REFERENCES:
        whole = C._vecmath(fn, x)
        parts = np.concatenate([C._vecmath(fn, x[i:i + 13]) for i in range(0, len(x), 13)])
        assert np.array_equal(whole, parts, equal_nan=True), fn
    for name, (fn, _, _) in ACTIVATIONS.items():
        whole = fn(nc.tensor(x)).numpy()
        parts = np.concatenate([fn(nc.tensor(x[i:i + 13])).numpy() for i in range(0, len(x), 13)])
        assert np.array_equal(whole, parts, equal_nan=True), name


# The vecmath, activation and softmax kernels of a build, forward and backward: activations on the
# floats in x (g = 1), softmax and log_softmax on random rows of lengths around 8 and 16.
_KERNEL_OUTPUTS = """
import numpy as np
import neurocore as nc
import neurocore.nn.functional as F


def kernel_outputs(x):
    out = {f: nc._core._vecmath(f, x) for f in ("exp", "log", "tanh", "sigmoid", "erf", "expm1", "log1p")}
    for name, fn in [("gelu", F.gelu), ("gelu_tanh", lambda t: F.gelu(t, approximate="tanh")), ("silu", F.silu),
                     ("mish", F.mish), ("elu", F.elu), ("selu", F.selu), ("softplus", F.softplus),
                     ("leaky_relu", lambda t: F.leaky_relu(t, 0.1)), ("hardtanh", F.hardtanh)]:
        t = nc.tensor(x, requires_grad=True)
        y = fn(t)
        y.backward(nc.ones_like(t))
        out[name], out[name + "_grad"] = y.detach().numpy(), t.grad.numpy()
    rng = np.random.default_rng(2)
    for n in (1, 7, 8, 9, 15, 16, 17, 24, 33, 1023):
        a = rng.normal(0, 4, (5, n)).astype(np.float32)
        g = rng.normal(size=(5, n)).astype(np.float32)
        for name in ("softmax", "log_softmax"):
            t = nc.tensor(a, requires_grad=True)
            y = getattr(nc, name)(t, dim=1)
            y.backward(nc.tensor(g))
            out[f"{name}{n}"], out[f"{name}{n}_grad"] = y.detach().numpy(), t.grad.numpy()
    return out
"""


def test_avx512_build_gives_the_avx2_floats(tmp_path):
    """The avx512 build runs the avx2 polynomials on 16 lanes (kernels/vecmath_avx512.h), with mask
    registers where avx2 blends and for ragged ends, and softmax folds its 16 lanes in the avx2
    order: every element must be the avx2 build's float, bit for bit, so the ULP figures above hold
    for both. Runs where the avx512 build is in use (an AVX-512 CPU, or .ci/avx512_emulated); the
    avx2 results come from a child process."""
    if C.cpu_capability() != "avx512":
        pytest.skip("compares the avx512 build with avx2: run with NEUROCORE_CPU=avx512 (.ci/avx512_emulated)")
    x = np.concatenate([_all_floats(4999), np.random.default_rng(1).normal(0, 4, 1001).astype(np.float32)])
    np.save(tmp_path / "x.npy", x)
    child = _KERNEL_OUTPUTS + (f"np.savez({str(tmp_path / 'avx2.npz')!r}, "
                               f"**kernel_outputs(np.load({str(tmp_path / 'x.npy')!r})))")
    r = subprocess.run([sys.executable, "-c", child], env=dict(os.environ, NEUROCORE_CPU="avx2"),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    scope = {}
    exec(_KERNEL_OUTPUTS, scope)
    mine = scope["kernel_outputs"](x)
    avx2 = np.load(tmp_path / "avx2.npz")
    assert sorted(avx2.files) == sorted(mine)
    for name, y in mine.items():
        # NaN where avx2 has NaN (its payload may differ: the compiler may swap the operands of a
        # commutative operation, and which NaN wins is not specified anywhere), the same bits elsewhere.
        want = avx2[name]
        nan = np.isnan(want)
        differ = (np.isnan(y) != nan) | (~nan & (y.view(np.uint32) != want.view(np.uint32)))
        assert not differ.any(), f"{name}: {differ.sum()} of {differ.size} elements differ from avx2"


def test_philox_known_answers_and_vector_path():
    # Random123's known-answer vectors for Philox 4x32-10.
    assert C._philox(0, 0, 1).tolist() == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    # 20 counters go through the 8-wide path and the scalar tail; each must equal a single call.
    many = C._philox(0xDEADBEEF12345678, 2**32 - 5, 20).reshape(20, 4)
    for i in range(20):
        assert many[i].tolist() == C._philox(0xDEADBEEF12345678, 2**32 - 5 + i, 1).tolist()
