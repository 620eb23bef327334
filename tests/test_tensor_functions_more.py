"""nc.outer, diag, diagonal, trace, meshgrid, repeat_interleave, nan_to_num, addcmul, addcdiv, lerp
(functions, Tensor methods and in-place forms) against PyTorch: values and gradients in
float32/64, finite differences and errors."""
import numpy as np
import pytest

import neurocore as nc
from helpers import TOL, assert_close, check_op, gradcheck, rand, require_torch

CASES = [  # (id, fn(lib, *tensors), input shapes)
    ("outer", lambda m, a, b: m.outer(a, b), [(3,), (4,)]),
    ("ger_method", lambda m, a, b: a.outer(b), [(2,), (5,)]),
    ("diag_vec", lambda m, a: m.diag(a), [(4,)]),
    ("diag_vec_k2", lambda m, a: m.diag(a, 2), [(3,)]),
    ("diag_vec_k-1", lambda m, a: m.diag(a, -1), [(3,)]),
    ("diag_mat", lambda m, a: m.diag(a), [(3, 4)]),
    ("diag_mat_k-2", lambda m, a: a.diag(-2), [(4, 3)]),
    ("diagonal", lambda m, a: m.diagonal(a), [(3, 4)]),
    ("diagonal_3d", lambda m, a: m.diagonal(a, 1, 2, 0), [(3, 2, 4)]),
    ("diagonal_neg", lambda m, a: a.diagonal(offset=-1, dim1=-1, dim2=1), [(2, 4, 3)]),
    ("trace", lambda m, a: m.trace(a), [(3, 5)]),
    ("trace_method", lambda m, a: a.trace(), [(4, 2)]),
    ("meshgrid_ij", lambda m, a, b, c: m.meshgrid(a, b, c, indexing="ij"), [(2,), (3,), (4,)]),
    ("meshgrid_xy", lambda m, a, b, c: m.meshgrid([a, b, c], indexing="xy"), [(2,), (3,), (4,)]),
    ("meshgrid_xy_2", lambda m, a, b: m.meshgrid(a, b, indexing="xy"), [(5,), ()]),
    ("repeat_interleave", lambda m, a: m.repeat_interleave(a, 2), [(2, 3)]),
    ("repeat_interleave_dim", lambda m, a: a.repeat_interleave(3, dim=1), [(2, 3)]),
    ("repeat_interleave_tensor", lambda m, a: m.repeat_interleave(a, m.tensor([1, 0, 2]), dim=-1), [(2, 3)]),
    ("repeat_interleave_0d", lambda m, a: m.repeat_interleave(a, 3), [()]),
    ("addcmul", lambda m, a, b, c: m.addcmul(a, b, c, value=0.3), [(2, 3), (3,), (2, 1)]),
    ("addcmul_method", lambda m, a, b, c: a.addcmul(b, c), [(4,), (4,), (4,)]),
    ("addcdiv", lambda m, a, b, c: m.addcdiv(a, b, c.exp(), value=-2.0), [(2, 3), (2, 3), (3,)]),
    ("lerp_scalar", lambda m, a, b: m.lerp(a, b, 0.3), [(3, 2), (3, 2)]),
    ("lerp_scalar_high", lambda m, a, b: a.lerp(b, 0.75), [(3, 2), (2,)]),
    ("lerp_tensor", lambda m, a, b, w: m.lerp(a, b, w), [(3, 4), (3, 4), (4,)]),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,fn,shapes", CASES, ids=[c[0] for c in CASES])
def test_vs_torch(name, fn, shapes, dtype):
    arrays = [rand(s, seed=k + 1, low=-1.5, high=1.5) for k, s in enumerate(shapes)]
    check_op(fn, fn, arrays, dtype)


def test_lerp_weight_breakpoints_and_exact_end():
    arrays = [rand((9,), seed=1), rand((9,), seed=2),
              np.array([-1.0, -0.5, -0.2, 0.0, 0.49, 0.5, 0.8, 1.0, 1.7])]
    for dtype in (np.float32, np.float64):
        check_op(lambda m, a, b, w: m.lerp(a, b, w), lambda m, a, b, w: m.lerp(a, b, w), arrays, dtype)
    a, b = nc.tensor(arrays[0]), nc.tensor(arrays[1])
    assert np.array_equal(nc.lerp(a, b, 1.0).numpy(), b.numpy())
    # A scalar weight takes the same branch of the two-sided formula as a tensor weight (|w| < 0.5).
    for w in [-1.3, -0.7, -0.3, 0.3, 0.7, 1.9]:
        assert np.array_equal(nc.lerp(a, b, w).numpy(), nc.lerp(a, b, nc.full((9,), w, dtype=nc.float64)).numpy())


def test_nan_to_num_vs_torch():
    torch = require_torch()
    x = np.array([1.5, np.nan, np.inf, -np.inf, -2.0, 0.0])
    for dtype in (np.float32, np.float64):
        for kwargs in [{}, {"nan": 2.0, "posinf": 10.0}, {"neginf": -7.5}]:
            xn = nc.tensor(x.astype(dtype), requires_grad=True)
            xt = torch.tensor(x.astype(dtype), requires_grad=True)
            yn, yt = nc.nan_to_num(xn, **kwargs), torch.nan_to_num(xt, **kwargs)
            assert_close(yn, yt, **TOL[dtype])
            yn.sum().backward()
            yt.sum().backward()
            assert_close(xn.grad, xt.grad, **TOL[dtype])
    assert nc.tensor([1, 2]).nan_to_num().tolist() == [1, 2]


def test_inplace_methods():
    torch = require_torch()
    a, b, c = rand((3, 4), np.float32, seed=1), rand((3, 4), np.float32, seed=2), rand((4,), np.float32, seed=3) + 2
    for name, args in [("addcmul_", (b, c)), ("addcdiv_", (b, c)), ("lerp_", (b, 0.6)), ("nan_to_num_", ())]:
        xn, xt = nc.tensor(a), torch.tensor(a)
        conv = [nc.tensor(v) if isinstance(v, np.ndarray) else v for v in args]
        convt = [torch.tensor(v) if isinstance(v, np.ndarray) else v for v in args]
        assert getattr(xn, name)(*conv) is xn
        getattr(xt, name)(*convt)
        assert_close(xn, xt, **TOL[np.float32], what=name)


def test_repeat_interleave_counts_and_meshgrid_default():
    torch = require_torch()
    counts = np.array([2, 0, 3, 1])
    assert nc.repeat_interleave(nc.tensor(counts)).tolist() == torch.repeat_interleave(torch.tensor(counts)).tolist()
    with pytest.warns(UserWarning, match="indexing argument"):
        grids = nc.meshgrid(nc.tensor([1.0, 2.0]), nc.tensor([3.0, 4.0, 5.0]))
    assert [tuple(g.shape) for g in grids] == [(2, 3), (2, 3)]


def test_gradcheck():
    gradcheck(lambda a, b: nc.diag(a, 1) * 2 + nc.outer(b, b)[:4, :4], [rand((3,), seed=4), rand((4,), seed=5)])
    gradcheck(lambda a, w: nc.lerp(a, a.exp(), w) + nc.repeat_interleave(a, 2, 0)[::2] + nc.diagonal(a).sum(),
              [rand((3, 3), seed=6), rand((3,), seed=7, low=0, high=1)])


def test_errors():
    with pytest.raises(RuntimeError, match=r"\[outer\] expected 1-D tensors.*\(2, 2\)"):
        nc.outer(nc.zeros(2, 2), nc.zeros(3))
    with pytest.raises(RuntimeError, match=r"\[trace\] expected a matrix.*\(2, 2, 2\)"):
        nc.trace(nc.zeros(2, 2, 2))
    with pytest.raises(RuntimeError, match=r"\[diag\] expected a 1-D or 2-D tensor.*\(1, 2, 3\)"):
        nc.diag(nc.zeros(1, 2, 3))
    with pytest.raises(RuntimeError, match="dim1 and dim2 can't be the same"):
        nc.diagonal(nc.zeros(3, 3), 0, 1, -1)
    with pytest.raises(RuntimeError, match=r"repeat_interleave.*size 2 for dimension 1.*\(2, 3\)"):
        nc.repeat_interleave(nc.zeros(2, 3), nc.tensor([1, 2]), dim=1)
    with pytest.raises(RuntimeError, match="repeats can not be negative"):
        nc.repeat_interleave(nc.zeros(2), -1)
    with pytest.raises(RuntimeError, match=r"\[meshgrid\] expects all tensors to be 0- or 1-dimensional"):
        nc.meshgrid(nc.zeros(2, 2), indexing="ij")
    with pytest.raises(RuntimeError, match="integer division with addcdiv"):
        nc.addcdiv(nc.zeros(2), nc.tensor([1, 2]), nc.tensor([1, 2]))
