"""The convolution backward paths that build no column matrix (cpp/ops/conv.cpp, cpp/kernels/conv.h):
 * the input gradient split by the phase of the input positions modulo the stride, each phase a
   stride-1 convolution of gy with a subset of the flipped weights (strides 1/2/3, per axis;
   dilations that make some phases unreachable by any tap; padding past the kernel's reach,
   which gives a negative padding in a phase);
 * the implicit-GEMM weight gradient (column panels gathered from the input into the micro-kernel's
   layout, rows split between threads at small batches), for every geometry past the direct rule;
 * the direct weight gradient (depthwise, <= 9 taps) beside it.
Forward, input, weight and bias gradients against PyTorch in float32 and float64, finite
differences in float64, and bit-identical results on 1 and 2 threads."""
import numpy as np
import pytest

import neurocore as nc
import neurocore.nn.functional as F
from helpers import check_op, gradcheck, rand, results_by_thread_count

TOL32 = dict(rtol=1e-4, atol=1e-4)
TOL64 = dict(rtol=1e-10, atol=1e-12)

# (input shape, weight shape, stride, padding, dilation, groups)
CASES = [
    ((2, 3, 32, 32), (32, 3, 3, 3), 1, 1, 1, 1),          # seed CNN first layer (27 taps: implicit weight grad)
    ((5, 16, 16, 16), (24, 16, 3, 3), 1, 1, 1, 1),        # many channels, batch 5
    ((1, 8, 15, 13), (16, 8, 3, 3), 2, 1, 1, 1),          # stride 2, odd sizes, batch 1
    ((2, 5, 17, 11), (7, 5, 3, 3), 3, 1, 1, 1),           # stride 3 (each phase one tap row/col)
    ((2, 4, 12, 14), (6, 4, 3, 3), (2, 3), (0, 2), 1, 1),  # per-axis strides and paddings
    ((2, 4, 13, 11), (5, 4, 3, 3), 2, 2, 2, 1),           # stride 2 with dilation 2: odd phases reached by no tap
    ((1, 3, 14, 16), (4, 3, 3, 3), 2, 1, 3, 1),           # stride 2 with dilation 3: steps of two taps
    ((2, 6, 9, 9), (6, 6, 1, 1), 1, 2, 1, 1),             # 1x1 with padding past the kernel (negative phase padding)
    ((2, 6, 10, 10), (4, 6, 1, 1), 2, 0, 1, 1),           # 1x1 stride 2: phases with no tap
    ((5, 8, 11, 9), (12, 2, 3, 3), 2, 1, 1, 4),           # groups, stride 2, batch 5
    ((2, 8, 9, 9), (8, 1, 3, 3), 2, 1, 1, 8),             # depthwise stride 2
    ((2, 6, 12, 12), (12, 1, 5, 5), 1, 2, 1, 6),          # depthwise multiplier 2, 5x5
    ((1, 2, 7, 30), (40, 2, 2, 5), (1, 2), (1, 0), (2, 1), 1),  # 40 output channels: partial 16-column panel
    ((3, 1, 28, 28), (32, 1, 3, 3), 1, 0, 1, 1),          # Keras CNN first layer (9 taps: direct weight grad)
    ((2, 40, 5, 5), (9, 40, 3, 3), 1, 1, 1, 1),           # 360 taps: several K-row blocks and ragged 6-row panel
]


def run_conv(lib, x, w, b, case):
    _, _, stride, padding, dilation, groups = case
    return lib.nn.functional.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_backward_matches_torch(case, dtype):
    xs, ws = case[:2]
    arrays = [rand(xs, dtype, 1), rand(ws, dtype, 2), rand((ws[0],), dtype, 3)]
    tol = TOL32 if dtype == np.float32 else TOL64
    check_op(lambda t, *a: run_conv(t, *a, case), lambda n, *a: run_conv(n, *a, case), arrays, dtype=dtype, **tol)


@pytest.mark.parametrize("case", [((1, 2, 7, 8), (3, 2, 3, 3), 2, 1, 1, 1),
                                  ((2, 2, 9, 7), (4, 1, 3, 2), (3, 2), (1, 0), (2, 1), 2),
                                  ((1, 3, 5, 6), (2, 3, 1, 1), 1, 1, 1, 1),
                                  ((1, 5, 6, 6), (3, 5, 3, 3), 1, 1, 1, 1)])
def test_backward_gradcheck(case):
    xs, ws = case[:2]
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, *case[2:]),
              [rand(xs, seed=1), rand(ws, seed=2), rand((ws[0],), seed=3)])


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[9], CASES[14]])
@pytest.mark.parametrize("n", [1, 9])
def test_backward_thread_count_independent(case, n):
    xs, ws = case[:2]
    xs = (n,) + xs[1:]
    x0, w0, b0 = rand(xs, np.float32, 1), rand(ws, np.float32, 2), rand((ws[0],), np.float32, 3)
    results = results_by_thread_count(lambda x, w, b: run_conv(nc, x, w, b, case), (x0, w0, b0))
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_input_grad_of_unreached_phase_is_zero():
    # Stride 2, dilation 2, no padding: odd input rows/columns are under no tap, so their gradient
    # is exactly zero (the phases with no taps), and the even ones get every tap's sum.
    x = nc.tensor(rand((1, 1, 9, 9), np.float32, 1), requires_grad=True)
    w = nc.tensor(np.ones((1, 1, 3, 3), np.float32))
    F.conv2d(x, w, None, stride=2, dilation=2).sum().backward()
    g = x.grad.numpy()[0, 0]
    assert (g[1::2, :] == 0).all() and (g[:, 1::2] == 0).all()
    # output positions 0..2 (3x3 output); input row 2r is reached by the taps i with 2*oy + 2*i = 2r
    counts = np.array([sum(1 for oy in range(3) for i in range(3) if oy + i == r) for r in range(5)], np.float32)
    assert np.array_equal(g[::2, ::2], np.outer(counts, counts))


# ---- pooling: the 2x2 / stride-2 fast path (kernels/pool.cpp, float32 AVX2, rows of >= 8 outputs) ----
# 16, 8, 9, 13 and 16 outputs a row (odd sizes leave a row / column out)
POOL_2X2 = [(1, 32, 32, 32), (5, 3, 16, 16), (2, 2, 17, 19), (1, 3, 26, 26), (2, 1, 9, 33)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", POOL_2X2)
def test_max_pool_2x2_nan_inf_ties(shape, dtype):
    from test_pool_fast import assert_same_bits, nan_ties_input
    import torch
    x = nan_ties_input(shape, dtype, 21)
    ty = torch.nn.functional.max_pool2d(torch.tensor(x), 2)
    with nc.no_grad():
        assert_same_bits(F.max_pool2d(nc.tensor(x), 2, 2), ty, "inference")
    xg, txg = nc.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = F.max_pool2d(xg, 2)
    assert_same_bits(y, ty, "recording taps")
    g = rand(tuple(ty.shape), dtype, 22)
    (y * nc.tensor(g)).sum().backward()
    (torch.nn.functional.max_pool2d(txg, 2) * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(xg.grad.numpy(), txg.grad.numpy())


@pytest.mark.parametrize("divisor", [None, 3])
@pytest.mark.parametrize("shape", POOL_2X2)
def test_avg_pool_2x2_matches_torch(shape, divisor):
    import torch
    x = rand(shape, np.float32, 23)
    with nc.no_grad():
        y = F.avg_pool2d(nc.tensor(x), 2, divisor_override=divisor).numpy()
    ty = torch.nn.functional.avg_pool2d(torch.tensor(x), 2, divisor_override=divisor).numpy()
    np.testing.assert_allclose(y, ty, rtol=1e-6, atol=1e-7)
    # Each output is ((((0 + a) + b) + c) + d) / divisor in float32, exactly.
    w = x[..., : 2 * y.shape[-2], : 2 * y.shape[-1]]
    s = np.float32(0) + w[..., 0::2, 0::2]
    s = s + w[..., 0::2, 1::2]
    s = s + w[..., 1::2, 0::2]
    s = s + w[..., 1::2, 1::2]
    np.testing.assert_array_equal(y, s / np.float32(divisor or 4))


def test_pool_2x2_thread_count_independent():
    x = rand((6, 16, 32, 32), np.float32, 24)
    prev = nc.get_num_threads()
    out = []
    try:
        for threads in (1, 2):
            nc.set_num_threads(threads)
            with nc.no_grad():
                out.append((F.max_pool2d(nc.tensor(x), 2).numpy(), F.avg_pool2d(nc.tensor(x), 2).numpy()))
    finally:
        nc.set_num_threads(prev)
    for a, b in zip(*out):
        assert np.array_equal(a, b)
