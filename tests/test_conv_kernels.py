"""The convolution kernel paths, each forced by its shape (cpp/kernels/conv.h):
 * direct (cg*kh*kw <= 32 and stride 1 along rows): output tiles of 6 channels (1 when a group has
   one output channel, as in depthwise layers) by runs of 16 (float) / 8 (double) positions (the
   avx512 build: 8 channels by 32 / 16 positions; depthwise 48 / 24), read
   from a zero-padded copy of the input rows; its weight gradient read straight from the input
   when a group has at most 3 output channels (else the implicit-GEMM weight gradient);
 * implicit GEMM past the rule (33+ taps, or a row stride above 1).
Forward, input and weight gradients against PyTorch (float32 and float64), finite differences,
bias + ReLU fusion, and bit-identical results on 1 and 2 threads."""
import numpy as np
import pytest

import neurocore as nc
import neurocore.nn as nn
import neurocore.nn.functional as F
from helpers import check_op, gradcheck, rand, results_by_thread_count

TOL32 = dict(rtol=1e-4, atol=1e-4)  # weight gradients of 32x32 images sum 2k products of size ~15
TOL64 = dict(rtol=1e-10, atol=1e-12)

# (input shape, weight shape, stride, padding, dilation, groups); taps = cg*kh*kw
DIRECT = [
    ((2, 3, 32, 32), (32, 3, 3, 3), 1, 1, 1, 1),        # the seed CNN's first layer: 27 taps
    ((2, 1, 28, 28), (32, 1, 3, 3), 1, 0, 1, 1),        # the Keras CNN's first layer: 9 taps
    ((1, 2, 9, 41), (7, 2, 4, 4), 1, 1, 1, 1),          # 32 taps (the limit); interior and edge runs, row tail
    ((2, 3, 11, 19), (13, 3, 3, 3), (2, 1), (0, 2), 1, 1),  # row stride 2 (column stride 1), 13 = 2x6 + 1 channels
    ((1, 2, 12, 37), (5, 2, 3, 3), 1, (1, 3), (2, 3), 1),   # dilation along both axes, wide padding
    ((2, 6, 10, 10), (9, 2, 3, 3), 1, 1, 1, 3),          # groups (3 output channels each)
    ((2, 8, 13, 53), (8, 1, 3, 3), 1, 1, 1, 8),          # depthwise (one channel per group): 48-position runs
    ((2, 4, 9, 9), (8, 1, 5, 5), 1, 2, 1, 4),            # depthwise with multiplier 2
    ((1, 1, 3, 3), (2, 1, 3, 3), 1, 0, 1, 1),            # one output position
    ((1, 3, 5, 4), (6, 3, 1, 1), 1, 0, 1, 1),            # 1x1 with padding-free stride 1
    ((2, 1, 10, 30), (7, 1, 3, 3), 1, (1, 2), (1, 2), 1),  # 9 taps, 7 output channels
    ((2, 10, 6, 9), (5, 10, 1, 1), 1, 0, 1, 1),          # 10 taps, 5 output channels
]
IMPLICIT = [
    ((2, 4, 9, 11), (5, 4, 3, 3), 1, 1, 1, 1),           # 36 taps: just past the rule
    ((2, 3, 11, 12), (7, 3, 3, 3), (1, 2), 1, 1, 1),     # 27 taps but column stride 2
    ((2, 4, 9, 9), (4, 1, 3, 3), 2, 1, 1, 4),            # depthwise with stride 2
]


def run_conv(lib, x, w, b, case):
    _, _, stride, padding, dilation, groups = case
    return lib.nn.functional.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", DIRECT + IMPLICIT)
def test_paths_match_torch(case, dtype):
    xs, ws = case[:2]
    arrays = [rand(xs, dtype, 1), rand(ws, dtype, 2), rand((ws[0],), dtype, 3)]
    tol = TOL32 if dtype == np.float32 else TOL64
    check_op(lambda t, *a: run_conv(t, *a, case), lambda n, *a: run_conv(n, *a, case), arrays, dtype=dtype, **tol)


@pytest.mark.parametrize("case", [((1, 2, 5, 21), (3, 2, 3, 3), 1, 1, 1, 1), ((2, 3, 6, 7), (6, 1, 3, 3), (2, 1), 1, (1, 2), 3),
                                  ((1, 3, 5, 9), (3, 1, 3, 3), 1, 1, 1, 3)])
def test_direct_gradcheck(case):
    xs, ws = case[:2]
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, *case[2:]),
              [rand(xs, seed=1), rand(ws, seed=2), rand((ws[0],), seed=3)])


@pytest.mark.parametrize("dtype", [nc.float32, nc.float64])
@pytest.mark.parametrize("cin,groups", [(3, 1), (6, 6), (5, 1)])
def test_fused_bias_relu(dtype, cin, groups):
    # Under no_grad Conv+ReLU runs as one call (ReLU in the kernel's store): same bits as stepwise.
    nc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(cin, 6 if groups > 1 else 7, 3, padding=1, groups=groups), nn.ReLU()).to(dtype)
    x = nc.randn(2, cin, 7, 19, dtype=dtype)
    with nc.no_grad():
        fused = model(x)
        stepwise = model[1](model[0](x))
    assert np.array_equal(fused.numpy(), stepwise.numpy())
    assert (fused.numpy() == 0).any() and (fused.numpy() > 0).any()


@pytest.mark.parametrize("case", [DIRECT[0], DIRECT[6], ((5, 1, 28, 28), (32, 1, 3, 3), 1, 0, 1, 1)])
@pytest.mark.parametrize("n", [9, 1])
def test_thread_count_independent(case, n):
    xs, ws = case[:2]
    xs = (n,) + xs[1:]
    x0, w0, b0 = rand(xs, np.float32, 1), rand(ws, np.float32, 2), rand((ws[0],), np.float32, 3)
    results = results_by_thread_count(lambda x, w, b: run_conv(nc, x, w, b, case), (x0, w0, b0))
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_direct_border_values_are_exact():
    # Padding reads zeros: with an all-ones image and kernel every output counts the taps inside.
    x = nc.ones(1, 2, 6, 20)
    w = nc.ones(3, 2, 3, 3)
    y = F.conv2d(x, w, padding=1).numpy()
    rows = np.array([2, 3, 3, 3, 3, 2], dtype=np.float32)
    cols = np.array([2] + [3] * 18 + [2], dtype=np.float32)
    expected = 2 * rows[:, None] * cols[None, :]
    for c in range(3):
        assert np.array_equal(y[0, c], expected)
