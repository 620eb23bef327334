"""Vectorised float32 math kernels against float64 references over the whole float range,
including +-inf, NaN and denormals, measured in ULP of the float32 result."""
import numpy as np
import pytest

import neurocore as nc

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
    spacing = np.spacing(np.abs(ref32[finite])).astype(np.float64)
    return np.abs(y[finite].astype(np.float64) - ref[finite]) / spacing


REFERENCES = {
    "exp": (np.exp, 2.0),
    "log": (np.log, 2.0),
    "tanh": (np.tanh, 3.0),
    "sigmoid": (lambda x: 1.0 / (1.0 + np.exp(-x)), 3.0),
}


@pytest.mark.parametrize("fn", sorted(REFERENCES))
def test_ulp_error_over_whole_range(fn):
    ref_fn, bound = REFERENCES[fn]
    x = _all_floats()
    with np.errstate(all="ignore"):
        ref = ref_fn(x.astype(np.float64))
    y = C._vecmath(fn, x)
    # Special values: NaN in -> NaN out; infinities and signs as the reference.
    with np.errstate(over="ignore"):
        ref32 = ref.astype(np.float32)
    assert np.array_equal(np.isnan(y), np.isnan(ref32)), f"{fn}: NaN pattern differs"
    inf = np.isinf(ref32)
    assert np.array_equal(y[inf], ref32[inf]), f"{fn}: infinities differ"
    err = _ulp_error(y, ref)
    assert err.max() <= bound, f"{fn}: max error {err.max():.2f} ULP at x={x[np.isfinite(ref32)][err.argmax()]!r}"


def test_results_do_not_depend_on_position():
    x = np.random.default_rng(0).uniform(-20, 20, 1001).astype(np.float32)
    for fn in REFERENCES:
        whole = C._vecmath(fn, x)
        parts = np.concatenate([C._vecmath(fn, x[i:i + 13]) for i in range(0, len(x), 13)])
        assert np.array_equal(whole, parts, equal_nan=True), fn


def test_philox_known_answers_and_vector_path():
    # Random123's known-answer vectors for Philox 4x32-10.
    assert C._philox(0, 0, 1).tolist() == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    # 20 counters go through the 8-wide path and the scalar tail; each must equal a single call.
    many = C._philox(0xDEADBEEF12345678, 2**32 - 5, 20).reshape(20, 4)
    for i in range(20):
        assert many[i].tolist() == C._philox(0xDEADBEEF12345678, 2**32 - 5 + i, 1).tolist()
