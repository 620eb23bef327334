"""Conv1D and Conv2D on channels-last input with Keras kernels (k, in, out) / (kh, kw, in, out).

The C++ convolution works on (N, C, H, W). The NHWC input is read through a permuted view and the
(N, C, H, W) result is returned as a permuted (N, H, W, C) view, so between two conv/pool layers
the data stays in the kernel's layout and no copy is made; the one copy into channels-last order
happens where a layer needs it (Flatten, Dense on images)."""

import numpy as np

from ... import _core
from .. import activations, initializers, regularizers
from .base import Layer


def _tuple(v, n, name, layer):
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    v = tuple(int(x) for x in v)
    if len(v) != n:
        raise ValueError(f"[{layer}] {name} must be an int or a tuple of {n} ints, got {v}")
    return v


def same_pads(size, kernel, stride, dilation):
    """(before, after) zero padding of TensorFlow's 'same': output ceil(size / stride), the odd
    pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class _Conv(Layer):
    _nd = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1, groups=1,
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        kind, nd = type(self).__name__, self._nd
        if data_format not in (None, "channels_last"):
            raise NotImplementedError(f"[{kind}] only data_format='channels_last' is supported")
        padding = padding.lower()
        allowed = ("valid", "same", "causal") if nd == 1 else ("valid", "same")
        if padding not in allowed:
            raise ValueError(f"[{kind}] padding must be one of {allowed}, got {padding!r}")
        self.filters = int(filters)
        self.kernel_size = _tuple(kernel_size, nd, "kernel_size", kind)
        self.strides = _tuple(strides, nd, "strides", kind)
        self.dilation_rate = _tuple(dilation_rate, nd, "dilation_rate", kind)
        if any(s > 1 for s in self.strides) and any(d > 1 for d in self.dilation_rate):
            raise ValueError(f"[{kind}] strides > 1 not supported in conjunction with dilation_rate > 1")
        self.padding, self.groups = padding, int(groups)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        channels = input_shape[-1]
        if len(input_shape) != self._nd + 2:
            raise ValueError(f"[{self.name}] expected input of rank {self._nd + 2} (batch, "
                             f"{'steps' if self._nd == 1 else 'height, width'}, channels), got shape {input_shape}")
        if channels is None or channels % self.groups:
            raise ValueError(f"[{self.name}] input channels {channels} must be known and divisible by groups "
                             f"{self.groups}")
        shape = self.kernel_size + (channels // self.groups, self.filters)
        self.kernel = self.add_weight(shape, self.kernel_initializer, "kernel", regularizer=self.kernel_regularizer)
        self.bias = self.add_weight((self.filters,), self.bias_initializer, "bias",
                                    regularizer=self.bias_regularizer) if self.use_bias else None

    def _pads(self, spatial):
        pads = []
        for size, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate):
            if self.padding == "same":
                pads += same_pads(size, k, s, d)
            elif self.padding == "causal":
                pads += [d * (k - 1), 0]
            else:
                pads += [0, 0]
        return pads

    def _check_input(self, inputs):
        expected = self.kernel.shape[-2] * self.groups
        if inputs.dim() != self._nd + 2 or inputs.shape[-1] != expected:
            raise ValueError(f"[{self.name}] Input 0 of layer \"{self.name}\" is incompatible with the layer: "
                             f"expected a rank-{self._nd + 2} channels-last input with {expected} channels, but "
                             f"received input with shape {tuple(inputs.shape)}")

    def get_config(self):
        return dict(super().get_config(), filters=self.filters, kernel_size=list(self.kernel_size),
                    strides=list(self.strides), padding=self.padding, dilation_rate=list(self.dilation_rate),
                    groups=self.groups, activation=activations.serialize(self.activation), use_bias=self.use_bias,
                    kernel_initializer=initializers.serialize(self.kernel_initializer),
                    bias_initializer=initializers.serialize(self.bias_initializer),
                    kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                    bias_regularizer=regularizers.serialize(self.bias_regularizer))


class Conv2D(_Conv):
    """2-D convolution over (N, H, W, C). Args: filters, kernel_size, strides (1), padding ('valid'
    or 'same', TensorFlow's split), dilation_rate (1), groups (1), activation (None), use_bias
    (True), kernel_initializer ('glorot_uniform'), bias_initializer ('zeros'), regularizers."""

    _nd = 2

    def call(self, inputs):
        # A ReLU runs in the convolution's store (with autograd on, the op applies it as its own
        # node, as before).
        relu = self.activation is activations.relu
        y = self._convolve(inputs, relu)
        return (y if relu else self.activation(y)).permute(0, 2, 3, 1)

    def _convolve(self, inputs, relu):
        """The (N, C, H, W) output, before the activation unless `relu` (a ReLU in the store)."""
        self._check_input(inputs)
        x = inputs.permute(0, 3, 1, 2)
        weight = self.kernel.permute(3, 2, 0, 1)  # (out, in, kh, kw)
        return _core._conv2d(x, weight, self.bias, list(self.strides), self._pads(inputs.shape[1:3]),
                             list(self.dilation_rate), self.groups, self.name, relu)


class Conv1D(_Conv):
    """1-D convolution over (N, steps, C); padding 'valid', 'same' or 'causal'."""

    _nd = 1

    def call(self, inputs):
        self._check_input(inputs)
        x = inputs.permute(0, 2, 1).unsqueeze(2)  # (N, C, 1, L)
        weight = self.kernel.permute(2, 1, 0).unsqueeze(2)  # (out, in, 1, k)
        y = _core._conv2d(x, weight, self.bias, [1, self.strides[0]], [0, 0] + self._pads(inputs.shape[1:2]),
                          [1, self.dilation_rate[0]], self.groups, self.name, False)
        return self.activation(y.squeeze(2)).permute(0, 2, 1)
