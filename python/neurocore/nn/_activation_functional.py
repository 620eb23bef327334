"""Functional forms of the activations composed of elementwise ops (``F.prelu``, ``F.hardswish``,
``F.logsigmoid``, ``F.glu``, ...). Piecewise functions select with ``where`` so that the gradient at
each breakpoint is the one PyTorch's kernels give, and no branch that is not taken can put an
inf or NaN into the gradient."""
from .. import _core, _reduce
from .._math import _maybe_inplace


def _scalar(value, like):
    return _core._full((), value, like.dtype)


def prelu(input, weight):
    """x if x > 0 else weight * x, with one weight per channel (dim 1) or a single shared weight."""
    if weight.ndim > 1:
        raise RuntimeError(f"[prelu] weight must be a scalar or 1-D tensor, got shape {tuple(weight.shape)}")
    count = weight.numel()
    if count != 1:
        channels = input.shape[1] if input.ndim >= 2 else 1
        if input.ndim == 0 or count != channels:
            raise RuntimeError(f"[prelu] mismatch of parameter numbers and input channel size: found {count} "
                               f"parameters for input of shape {tuple(input.shape)} (channel dim 1)")
        weight = weight.reshape((-1,) + (1,) * (input.ndim - 2))
    else:
        weight = weight.reshape(())  # a 0-d input stays 0-d
    return _core.where(input > 0, input, weight * input)


def hardswish(input, inplace=False):
    """x * relu6(x + 3) / 6: 0 at or below -3, x at or above 3 (where PyTorch's gradient is 0 and 1)."""
    def fn(x):
        middle = x * (x + 3) / 6
        return _core.where(x <= -3, _scalar(0, x), _core.where(x < 3, middle, x))
    return _maybe_inplace(input, inplace, fn)


def hardsigmoid(input, inplace=False):
    """relu6(x + 3) / 6: 0 at or below -3, 1 at or above 3 (gradient 1/6 strictly between)."""
    def fn(x):
        inside = _core.logical_and(x > -3, x < 3)
        return _core.where(inside, (x + 3) / 6, _core.where(x >= 3, _scalar(1, x), _scalar(0, x)))
    return _maybe_inplace(input, inplace, fn)


def logsigmoid(input):
    """log(1 / (1 + exp(-x))) = -softplus(-x): exact (x itself) for very negative x, and ~-exp(-x) for
    large x, without overflow."""
    return -_core.softplus(-input, 1.0, 20.0)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """softmax(-x) along dim (dim=None: PyTorch's legacy choice of dim)."""
    return _reduce.softmax(-input, dim, dtype)


def softsign(input):
    """x / (1 + |x|)."""
    return input / (input.abs() + 1)


def tanhshrink(input):
    """x - tanh(x)."""
    return input - _core.tanh(input)


def threshold(input, threshold, value, inplace=False):
    """x if x > threshold else value."""
    return _maybe_inplace(input, inplace, lambda x: _core.where(x > threshold, x, _scalar(value, x)))


def celu(input, alpha=1.0, inplace=False):
    """x if x > 0 else alpha * (exp(x / alpha) - 1)."""
    if alpha == 0:
        raise ValueError("[celu] alpha must not be 0 (it divides the input)")

    def fn(x):
        positive = x > 0
        # exp only sees the non-positive inputs, so a large x can't overflow into the gradient.
        negative_part = _core.where(positive, _scalar(0, x), x)
        return _core.where(positive, x, _core.expm1(negative_part / alpha) * alpha)
    return _maybe_inplace(input, inplace, fn)


def glu(input, dim=-1):
    """a * sigmoid(b), where a and b are the two halves of input along dim."""
    if input.ndim == 0:
        raise RuntimeError("[glu] glu does not support scalars because halving size must be even")
    if not -input.ndim <= dim < input.ndim:
        raise IndexError(f"[glu] dimension out of range (expected to be in range of [{-input.ndim}, "
                         f"{input.ndim - 1}], but got {dim})")
    size = input.shape[dim]
    if size % 2:
        raise RuntimeError(f"[glu] halving dimension must be even, but dimension {dim % input.ndim} is size {size} "
                           f"(input shape {tuple(input.shape)})")
    a, b = _core.narrow(input, dim, 0, size // 2), _core.narrow(input, dim, size // 2, size // 2)
    return a * _core.sigmoid(b)


def hardshrink(input, lambd=0.5):
    """x if |x| > lambd else 0."""
    return _core.where(_core.logical_or(input > lambd, input < -lambd), input, _scalar(0, input))


def softshrink(input, lambd=0.5):
    """x - lambd above lambd, x + lambd below -lambd, 0 in between."""
    if lambd < 0:
        raise RuntimeError(f"[softshrink] lambda must be greater or equal to 0, but found to be {lambd}.")
    zero = _scalar(0, input)
    return _core.where(input > lambd, input - lambd, _core.where(input < -lambd, input + lambd, zero))
