"""Keras activation functions by name (`activation='relu'`), on neurocore's C++ kernels.

softmax and sigmoid remember their input while fit/evaluate run, so that a cross-entropy loss on
their output is computed from the logits (what Keras on TensorFlow does, and more accurate)."""
from .. import _math, _reduce
from . import _backend


def linear(x):
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return x.relu()
    y = _math.leaky_relu(x - threshold, negative_slope) if negative_slope else (x - threshold).relu()
    if threshold:
        y = y + threshold * (x >= threshold).to(x.dtype) if not negative_slope else y + threshold
    return y.clamp(max=max_value) if max_value is not None else y


def sigmoid(x):
    return _backend.remember_logits(x.sigmoid(), x, "sigmoid")


def softmax(x, axis=-1):
    return _backend.remember_logits(_reduce.softmax(x, dim=axis), x, "softmax")


def log_softmax(x, axis=-1):
    return _reduce.log_softmax(x, dim=axis)


def tanh(x):
    return x.tanh()


def gelu(x, approximate=False):
    return _math.gelu(x, approximate="tanh" if approximate else "none")


def elu(x, alpha=1.0):
    return _math.elu(x, alpha)


def selu(x):
    return _math.selu(x)


def leaky_relu(x, negative_slope=0.2):
    return _math.leaky_relu(x, negative_slope)


def softplus(x):
    return _math.softplus(x)


def silu(x):
    return _math.silu(x)


def relu6(x):
    return _math.relu6(x)


def mish(x):
    return _math.mish(x)


def hard_sigmoid(x):
    """relu6(x + 3) / 6, Keras 3's piecewise-linear sigmoid."""
    return _math.relu6(x + 3.0) * (1.0 / 6.0)


def exponential(x):
    return x.exp()


swish = silu
_BY_NAME = {f.__name__: f for f in (linear, relu, sigmoid, softmax, log_softmax, tanh, gelu, elu, selu, leaky_relu,
                                     softplus, silu, relu6, mish, exponential, hard_sigmoid)}
_BY_NAME["swish"] = silu


def get(identifier):
    """The activation function for a name, a callable or None (linear)."""
    if identifier is None:
        return linear
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]
    raise ValueError(f"[keras.activations] unknown activation {identifier!r}; expected one of {sorted(_BY_NAME)}")


def serialize(fn):
    name = getattr(fn, "__name__", None)
    if _BY_NAME.get(name) is not fn:
        raise ValueError(f"[keras.activations] cannot serialize the custom activation {fn!r}")
    return name


def deserialize(name):
    return get(name)
