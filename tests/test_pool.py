"""Pooling against PyTorch: max/avg/adaptive, 2-D and 1-D, values, indices and gradients;
finite differences and second order; layer reprs; errors."""
import numpy as np
import pytest

import neurocore as nc
import neurocore.nn as nn
import neurocore.nn.functional as F
from helpers import check_op, gradcheck, rand, require_torch, assert_close

TOL64 = dict(rtol=1e-10, atol=1e-12)

MAX_CASES = [  # shape, kernel, stride, padding, dilation, ceil_mode
    ((2, 3, 8, 8), 2, None, 0, 1, False),
    ((1, 2, 7, 9), 3, 2, 1, 1, False),
    ((2, 2, 7, 9), 3, 2, 1, 1, True),
    ((1, 3, 10, 7), (3, 2), (2, 1), (1, 1), (2, 1), False),
    ((2, 1, 6, 6), 2, 2, 1, 1, True),
    ((3, 5, 5), 2, 1, 0, 1, False),  # unbatched
    ((1, 1, 5, 8), 4, 3, 2, 1, True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", MAX_CASES)
def test_max_pool2d_matches_torch(case, dtype):
    shape, k, s, p, d, ceil = case
    x = rand(shape, dtype, 1)
    f = lambda lib, x: lib.nn.functional.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    check_op(f, f, [x], dtype=dtype)


AVG_CASES = [  # shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    ((2, 3, 8, 8), 2, None, 0, False, True, None),
    ((1, 2, 7, 9), 3, 2, 1, False, True, None),
    ((1, 2, 7, 9), 3, 2, 1, True, False, None),
    ((2, 2, 7, 9), (3, 2), (2, 1), (1, 1), True, True, None),
    ((1, 1, 6, 5), 3, 2, 1, False, True, 4),
    ((3, 5, 5), 2, 1, 0, True, False, None),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", AVG_CASES)
def test_avg_pool2d_matches_torch(case, dtype):
    shape, k, s, p, ceil, cip, div = case
    f = lambda lib, x: lib.nn.functional.avg_pool2d(x, k, s, p, ceil, cip, div)
    check_op(f, f, [rand(shape, dtype, 1)], dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,size", [((2, 3, 8, 8), 1), ((1, 2, 7, 9), (3, 4)), ((1, 2, 5, 5), (7, None)),
                                        ((3, 10, 6), (4, 6))])
def test_adaptive_avg_pool2d_matches_torch(shape, size, dtype):
    f = lambda lib, x: lib.nn.functional.adaptive_avg_pool2d(x, size)
    check_op(f, f, [rand(shape, dtype, 1)], dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pool1d_matches_torch(dtype):
    x = rand((2, 3, 11), dtype, 1)
    for f in (lambda lib, x: lib.nn.functional.max_pool1d(x, 3, 2, 1, 2, True, return_indices=True),
              lambda lib, x: lib.nn.functional.avg_pool1d(x, 3, 2, 1, True, False),
              lambda lib, x: lib.nn.functional.adaptive_avg_pool1d(x, 4)):
        check_op(f, f, [x], dtype=dtype)


def test_max_pool_ties_and_nan_match_torch():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 2, 3] = -np.inf
    f = lambda lib, x: lib.nn.functional.max_pool2d(x, 2, 1, return_indices=True)
    check_op(f, f, [x], dtype=np.float64)


def test_pool_gradcheck_and_second_order():
    x0 = rand((1, 2, 5, 6), seed=3)
    gradcheck(lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [x0])
    gradcheck(lambda x: F.max_pool2d(x, 2, 1), [x0])
    gradcheck(lambda x: F.adaptive_avg_pool2d(x, (3, 4)), [x0])
    torch = require_torch()
    out = []
    for lib, mk in ((torch, torch.tensor), (nc, nc.tensor)):
        x = mk(x0, requires_grad=True)
        y = lib.nn.functional.avg_pool2d(lib.nn.functional.max_pool2d(x * x, 2, 1), 2, 1, 1)
        (gx,) = lib.autograd.grad((y * y).sum(), [x], create_graph=True)
        (gx * gx).sum().backward()
        out.append((gx, x.grad))
    for a, b in zip(out[1], out[0]):
        assert_close(a, b, **TOL64)


def test_pool_layers_repr_and_forward_match_torch():
    torch = require_torch()
    layers = [("MaxPool2d", (2, 2), {}), ("MaxPool2d", (3,), dict(stride=1, padding=1, ceil_mode=True)),
              ("AvgPool2d", (3,), dict(stride=2, padding=1)), ("AvgPool2d", ((2, 3),), {}),
              ("AdaptiveAvgPool2d", ((3, 2),), {}), ("AdaptiveAvgPool2d", (1,), {}),
              ("MaxPool1d", (3,), dict(stride=2)), ("AvgPool1d", (3,), dict(padding=1)),
              ("AdaptiveAvgPool1d", (4,), {})]
    for name, args, kw in layers:
        tm, m = getattr(torch.nn, name)(*args, **kw), getattr(nn, name)(*args, **kw)
        assert str(m) == str(tm)
        x = rand((2, 3, 9) if name.endswith("1d") else (2, 3, 9, 8), seed=4)
        assert_close(m(nc.tensor(x)), tm(torch.tensor(x)), **TOL64)


def test_pool_errors():
    with pytest.raises(RuntimeError, match=r"\[MaxPool2d\] output size is too small \(0 x 0\) for input shape \(1, 1, 2, 2\)"):
        nn.MaxPool2d(3)(nc.zeros(1, 1, 2, 2))
    with pytest.raises(RuntimeError, match=r"\[max_pool2d\] pad should be at most half"):
        F.max_pool2d(nc.zeros(1, 1, 8, 8), 2, padding=2)
    with pytest.raises(RuntimeError, match=r"\[AvgPool2d\] expected 3-D \(unbatched\) or 4-D .*got shape \(8, 8\)"):
        nn.AvgPool2d(2)(nc.zeros(8, 8))
    with pytest.raises(TypeError, match=r"\[max_pool2d\] expected a float tensor"):
        F.max_pool2d(nc.zeros(1, 1, 4, 4, dtype=nc.int64), 2)
