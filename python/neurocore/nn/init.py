"""``neurocore.nn.init``: in-place initialisers with PyTorch's formulas (run under no_grad)."""
import math

import numpy as np

from .. import _core
from .._tensor import no_grad
from .._creation import _draw

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "ones_", "zeros_", "eye_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_", "orthogonal_"]


def calculate_gain(nonlinearity, param=None):
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor):
    if tensor.dim() < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill_random(tensor, fill):
    """Runs `fill` on a contiguous buffer and copies back when `tensor` is a non-contiguous view."""
    with no_grad():
        if tensor.is_contiguous():
            fill(tensor)
        else:
            buf = tensor.contiguous()
            fill(buf)
            tensor.copy_(buf)
    return tensor


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    return _draw(generator, lambda: _fill_random(tensor, lambda t: _core._uniform_(t, float(a), float(b))))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    return _draw(generator, lambda: _fill_random(tensor, lambda t: _core._normal_(t, float(mean), float(std))))


def constant_(tensor, val):
    with no_grad():
        tensor.fill_(val)
    return tensor


def ones_(tensor):
    return constant_(tensor, 1.0)


def zeros_(tensor):
    return constant_(tensor, 0.0)


def eye_(tensor):
    if tensor.dim() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    from .._creation import eye
    with no_grad():
        tensor.copy_(eye(*tensor.shape, dtype=tensor.dtype))
    return tensor


def xavier_uniform_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    if 0 in tuple(tensor.shape):
        return tensor
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    if 0 in tuple(tensor.shape):
        return tensor
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode)), generator)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fills `tensor` from N(mean, std^2) restricted to [a, b] (absolute bounds, as in PyTorch).

    Draws by rejection: out-of-range entries are redrawn together until none remain (each round
    keeps the in-range part, so a few rounds suffice unless [a, b] lies far in a tail; after 64
    rounds the rest is clamped).
    """
    if not a < b:
        raise ValueError(f"[trunc_normal_] expected a < b, got a={a}, b={b}")
    with no_grad():
        out = _core._normal_(_core._empty(tuple(tensor.shape), tensor.dtype), float(mean), float(std))
        for _ in range(64):
            bad = (out < a) | (out > b)
            if not bad.any().item():
                break
            fresh = _core._normal_(_core._empty(tuple(tensor.shape), tensor.dtype), float(mean), float(std))
            out = _core.where(bad, fresh, out)
        tensor.copy_(out.clamp(a, b))
    return tensor


def orthogonal_(tensor, gain=1, generator=None):
    """Fills `tensor` (2 or more dims, flattened to rows x cols) with a (semi-)orthogonal matrix
    from the QR decomposition of a normal sample, signs fixed as in PyTorch, times `gain`."""
    if tensor.dim() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    sample = _core._normal_(_core._empty((rows, cols), _core.dtype.float64), 0.0, 1.0).numpy()
    if rows < cols:
        sample = sample.T
    q, r = np.linalg.qr(sample)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    with no_grad():
        tensor.copy_(_core._from_numpy(np.ascontiguousarray(q * gain).reshape(tuple(tensor.shape)), True))
    return tensor
