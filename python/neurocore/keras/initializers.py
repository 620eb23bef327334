"""Keras weight initialisers (glorot_uniform for kernels, zeros for biases, ...), drawn from
neurocore's counter-based RNG (`nc.manual_seed`). Fans follow Keras: for a kernel of shape
(*receptive, in, out), fan_in = prod(receptive) * in and fan_out = prod(receptive) * out."""
import math

import numpy as np

from .. import _core, _creation, _tensor


def _fans(shape):
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self):
        return {}


class Zeros(Initializer):
    def __call__(self, shape, dtype=None):
        return _creation.zeros(*shape) if shape else _creation.zeros(())


class Ones(Initializer):
    def __call__(self, shape, dtype=None):
        return _creation.ones(*shape) if shape else _creation.ones(())


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = float(value)

    def __call__(self, shape, dtype=None):
        return _creation.full(tuple(shape), self.value)

    def get_config(self):
        return {"value": self.value}


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype=None):
        return _core._uniform_(_creation.empty(*shape), self.minval, self.maxval)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval}


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        return _core._normal_(_creation.empty(*shape), self.mean, self.stddev)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class TruncatedNormal(RandomNormal):
    """Normal draws cut at two standard deviations (values outside are redrawn), as Keras."""

    def __call__(self, shape, dtype=None):
        t = _creation.empty(*shape)
        from ..nn import init
        return init.trunc_normal_(t, self.mean, self.stddev, self.mean - 2 * self.stddev, self.mean + 2 * self.stddev)


class VarianceScaling(Initializer):
    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"[VarianceScaling] mode must be fan_in, fan_out or fan_avg, got {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"[VarianceScaling] unknown distribution {distribution!r}")
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = _fans(tuple(shape))
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return RandomUniform(-limit, limit)(shape)
        if self.distribution == "untruncated_normal":
            return RandomNormal(0.0, math.sqrt(variance))(shape)
        return TruncatedNormal(0.0, math.sqrt(variance) / 0.87962566103423978)(shape)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution}


class Orthogonal(Initializer):
    """A random orthogonal matrix (times `gain`), Keras's recurrent_kernel default: the Q of a QR
    decomposition of a normal (max(r, c), min(r, c)) draw, signs fixed by diag(R), transposed when
    r < c; a kernel of rank > 2 is flattened to (prod(shape[:-1]), shape[-1])."""

    def __init__(self, gain=1.0, seed=None):
        self.gain = float(gain)

    def __call__(self, shape, dtype=None):
        shape = tuple(int(s) for s in shape)
        if len(shape) < 2:
            raise ValueError(f"[Orthogonal] the shape must have at least 2 dimensions, got {shape}")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        draw = RandomNormal(0.0, 1.0)((max(rows, cols), min(rows, cols))).numpy().astype(np.float64)
        q, r = np.linalg.qr(draw)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return _tensor.tensor((self.gain * q).reshape(shape).astype(np.float32))

    def get_config(self):
        return {"gain": self.gain}


def _variance_scaling(name, scale, mode, distribution):
    cls = type(name, (VarianceScaling,), {
        "__init__": lambda self, seed=None: VarianceScaling.__init__(self, scale, mode, distribution),
        "get_config": lambda self: {}})
    return cls


GlorotUniform = _variance_scaling("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _variance_scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _variance_scaling("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _variance_scaling("HeNormal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _variance_scaling("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _variance_scaling("LecunNormal", 1.0, "fan_in", "truncated_normal")

_BY_NAME = {"zeros": Zeros, "ones": Ones, "constant": Constant, "random_uniform": RandomUniform,
            "uniform": RandomUniform, "random_normal": RandomNormal, "normal": RandomNormal,
            "truncated_normal": TruncatedNormal, "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
            "he_uniform": HeUniform, "he_normal": HeNormal, "lecun_uniform": LecunUniform,
            "lecun_normal": LecunNormal, "variance_scaling": VarianceScaling, "orthogonal": Orthogonal}
_CLASSES = {cls.__name__: cls for cls in _BY_NAME.values()}


def get(identifier):
    if isinstance(identifier, Initializer) or callable(identifier) and not isinstance(identifier, type):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict):
        return _CLASSES[identifier["class_name"]](**identifier.get("config", {}))
    raise ValueError(f"[keras.initializers] unknown initializer {identifier!r}; expected one of {sorted(_BY_NAME)}")


def serialize(init):
    return {"class_name": type(init).__name__, "config": init.get_config()}
