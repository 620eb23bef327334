"""Keras image augmentation layers RandomFlip, RandomRotation and RandomTranslation, active
only in training (`fit`, or `training=True`); identity in inference. Channels-last input; the
resampling is the same C++ kernel as neurocore.transforms."""
import numpy as np


from ... import transforms as T
from ..._creation import rand
from .base import Layer

_EDGES = {"constant": T._FILL, "nearest": T._CLAMP, "reflect": T._REFLECT}


def _nchw(x):
    if x.dim() != 4:
        raise ValueError(f"[keras preprocessing] expected images (batch, height, width, channels), got shape "
                         f"{tuple(x.shape)}")
    return x.permute(0, 3, 1, 2)


class RandomFlip(Layer):
    """Flips each image horizontally and/or vertically with probability 1/2 (training only).
    mode: 'horizontal', 'vertical' or 'horizontal_and_vertical' (default)."""

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("horizontal", "vertical", "horizontal_and_vertical"):
            raise ValueError(f"[RandomFlip] unknown mode {mode!r}")
        self.mode = mode

    def call(self, inputs, training=None):
        if not training:
            return inputs
        x = _nchw(inputs)
        n, _, h, w = x.shape
        theta = T._identity(n)
        if "horizontal" in self.mode:
            flip = rand(n).numpy() < 0.5
            theta[flip, 0, 0], theta[flip, 0, 2] = -1.0, w - 1
        if "vertical" in self.mode:
            flip = rand(n).numpy() < 0.5
            theta[flip, 1, 1], theta[flip, 1, 2] = -1.0, h - 1
        return T._sample(x, theta, h, w, False, T._FILL, 0.0).permute(0, 2, 3, 1)

    def get_config(self):
        return dict(super().get_config(), mode=self.mode)


def _factor_range(f):
    """(-f, f) for a number, else the given (low, high)."""
    return (-float(f), float(f)) if np.isscalar(f) else tuple(float(v) for v in f)


def _set_fill(layer, name, fill_mode, interpolation, fill_value):
    """Checks and stores the edge handling and interpolation of a geometric augmentation layer."""
    if fill_mode not in _EDGES:
        raise ValueError(f"[{name}] fill_mode must be one of {sorted(_EDGES)}, got {fill_mode!r}")
    layer.fill_mode, layer.interpolation, layer.fill_value = fill_mode, interpolation, float(fill_value)
    layer._bilinear = T._mode(interpolation, name)


class RandomRotation(Layer):
    """Rotates each image by a random fraction of a full turn drawn from `factor` ((-f, f) for a
    number; positive = counter-clockwise), training only. fill_mode: 'reflect' (default),
    'constant' (fill_value) or 'nearest'; interpolation 'bilinear' (default) or 'nearest'."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = _factor_range(factor)
        _set_fill(self, "RandomRotation", fill_mode, interpolation, fill_value)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        x = _nchw(inputs)
        n, _, h, w = x.shape
        degrees = T._uniform(n, *self.factor) * 360.0
        y = T._sample(x, T.rotation_theta(degrees, h, w), h, w, self._bilinear, _EDGES[self.fill_mode],
                      self.fill_value)
        return y.permute(0, 2, 3, 1)

    def get_config(self):
        return dict(super().get_config(), factor=list(self.factor), fill_mode=self.fill_mode,
                    interpolation=self.interpolation, fill_value=self.fill_value)


class RandomTranslation(Layer):
    """Shifts each image by a random fraction of its height and width drawn from height_factor
    and width_factor ((-f, f) for a number), training only. fill_mode and interpolation as
    RandomRotation."""

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.height_factor, self.width_factor = _factor_range(height_factor), _factor_range(width_factor)
        _set_fill(self, "RandomTranslation", fill_mode, interpolation, fill_value)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        x = _nchw(inputs)
        n, _, h, w = x.shape
        theta = T._identity(n)
        theta[:, 1, 2] = -T._uniform(n, *self.height_factor) * h  # output (i, j) reads (i - dy, j - dx)
        theta[:, 0, 2] = -T._uniform(n, *self.width_factor) * w
        y = T._sample(x, theta, h, w, self._bilinear, _EDGES[self.fill_mode], self.fill_value)
        return y.permute(0, 2, 3, 1)

    def get_config(self):
        return dict(super().get_config(), height_factor=list(self.height_factor), width_factor=list(self.width_factor),
                    fill_mode=self.fill_mode, interpolation=self.interpolation, fill_value=self.fill_value)


__all__ = ["RandomFlip", "RandomRotation", "RandomTranslation"]
