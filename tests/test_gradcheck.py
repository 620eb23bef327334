"""nc.autograd.gradcheck / gradgradcheck against torch.autograd's: the same verdict on the same
functions (right and deliberately wrong gradients, tolerances), the same errors and warnings."""
import warnings

import numpy as np
import pytest

import neurocore as nc
from helpers import rand, require_torch


def _pair(lib, arrays, requires_grad=True):
    return tuple(lib.tensor(a.copy(), requires_grad=requires_grad) for a in arrays)


def _scaled_function(lib, factor, second_order_ok=True):
    """square(x) whose backward is `factor` times the true gradient; with second_order_ok=False
    the backward uses a detached x, so its own gradient (the second derivative) is lost."""
    base = lib.autograd.Function

    class Square(base):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 2 * factor * (x if second_order_ok else x.detach())
    return Square.apply


def _verdict(lib, fn, inputs, check=None, **kw):
    check = check or lib.autograd.gradcheck
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return check(fn, inputs, **kw)
        except RuntimeError as e:
            return str(e).splitlines()[0]


FUNCTIONS = {
    "sin_mul": (lambda lib, x, y: (x.sin() * y).sum(1), [(3, 4), (3, 4)]),
    "matmul_tanh": (lambda lib, x, y: lib.tanh(x @ y), [(2, 3), (3, 2)]),
    "two_outputs": (lambda lib, x, y: (x.exp(), (x * y).sum()), [(4,), (4,)]),
    "softmax": (lambda lib, x, y: lib.softmax(x * y, 1), [(2, 5), (2, 5)]),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_correct_functions_pass_like_torch(name):
    torch = require_torch()
    fn, shapes = FUNCTIONS[name]
    arrays = [rand(s, np.float64, seed=i) for i, s in enumerate(shapes)]
    assert _verdict(torch, lambda *a: fn(torch, *a), _pair(torch, arrays)) is True
    assert _verdict(nc, lambda *a: fn(nc, *a), _pair(nc, arrays)) is True
    assert _verdict(nc, lambda *a: fn(nc, *a), _pair(nc, arrays), nc.autograd.gradgradcheck) is True


@pytest.mark.parametrize("factor,kw", [(1.0, {}), (1.5, {}), (1.0 + 1e-4, {}), (1.0 + 1e-4, dict(rtol=1e-6)),
                                       (1.01, dict(atol=0.5, rtol=0.0)), (1.01, dict(atol=1e-3, rtol=1e-3)),
                                       (1.0, dict(eps=1e-3))])
def test_wrong_gradients_same_verdict_as_torch(factor, kw):
    torch = require_torch()
    x = rand((5,), np.float64, seed=3)
    t = _verdict(torch, _scaled_function(torch, factor), _pair(torch, [x]), **kw)
    n = _verdict(nc, _scaled_function(nc, factor), _pair(nc, [x]), **kw)
    assert n == t
    if t is not True:
        assert t == "Jacobian mismatch for output 0 with respect to input 0,"
        with pytest.raises(nc.autograd.GradcheckError):
            nc.autograd.gradcheck(_scaled_function(nc, factor), _pair(nc, [x]), **kw)
        assert nc.autograd.gradcheck(_scaled_function(nc, factor), _pair(nc, [x]), raise_exception=False,
                                     **kw) is False


def test_gradgradcheck_finds_a_lost_second_derivative_like_torch():
    torch = require_torch()
    x = rand((4,), np.float64, seed=5)
    for lib in (torch, nc):
        fn = _scaled_function(lib, 1.0, second_order_ok=False)
        assert _verdict(lib, fn, _pair(lib, [x])) is True  # first derivatives are right
        got = _verdict(lib, fn, _pair(lib, [x]), lib.autograd.gradgradcheck)
        assert got == "Jacobian mismatch for output 0 with respect to input 0,", lib.__name__
    good = _scaled_function(nc, 1.0)
    seeds = nc.tensor(rand((4,), np.float64, seed=6), requires_grad=True)
    assert nc.autograd.gradgradcheck(good, _pair(nc, [x]), seeds) is True
    assert nc.autograd.gradgradcheck(lambda a, b: (a * b * a).sum(), _pair(nc, [x, x + 1])) is True


def test_errors_and_warnings_match_torch():
    torch = require_torch()
    with pytest.raises(ValueError) as expected:
        torch.autograd.gradcheck(lambda a: a * 2, (torch.ones(2, dtype=torch.float64),))
    with pytest.raises(ValueError) as got:
        nc.autograd.gradcheck(lambda a: a * 2, (nc.ones(2, dtype=nc.float64),))
    assert str(got.value) == str(expected.value)
    with pytest.warns(UserWarning, match="Input #0 requires gradient and is not a double precision floating point"):
        nc.autograd.gradcheck(lambda a: a * 2, nc.ones(2, requires_grad=True), atol=1e-2, rtol=1e-2, eps=1e-3)

    class Noisy(nc.autograd.Function):
        calls = [0]

        @staticmethod
        def forward(ctx, a):
            return a * 3

        @staticmethod
        def backward(ctx, grad):
            Noisy.calls[0] += 1
            return grad * (3 + 1e-9 * Noisy.calls[0])
    x = nc.tensor(rand((3,), np.float64), requires_grad=True)
    with pytest.raises(nc.autograd.GradcheckError, match="Backward is not reentrant"):
        nc.autograd.gradcheck(Noisy.apply, (x,))
    assert nc.autograd.gradcheck(Noisy.apply, (x,), nondet_tol=1e-6) is True


def test_non_tensor_arguments_and_non_differentiable_outputs():
    x = nc.tensor(rand((3,), np.float64), requires_grad=True)
    assert nc.autograd.gradcheck(lambda a, k, scale: (a ** k * scale, nc.argmax(a)), (x, 3, 0.5)) is True
    # an output that does not require grad but changes with the input is reported
    with pytest.raises(nc.autograd.GradcheckError, match="Numerical gradient for function expected to be zero"):
        nc.autograd.gradcheck(lambda a: (a * 2).detach(), (x,))
