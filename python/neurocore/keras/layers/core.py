"""Dense, Activation, Dropout, Flatten, Reshape and Embedding with Keras's arguments, defaults and
weight layouts (Dense kernel (in, out), Embedding table (input_dim, output_dim))."""
import numpy as np

from ... import _core, _math
from ..._tensor import int64
from .. import activations, initializers, regularizers
from .base import Layer


def _incompatible(layer, expected, axis, shape):
    return ValueError(f"[{layer.name}] Input 0 of layer \"{layer.name}\" is incompatible with the layer: expected "
                      f"axis {axis} of input shape to have value {expected}, but received input with shape "
                      f"{tuple(shape)}")


class Dense(Layer):
    """y = activation(x @ kernel + bias) over the last axis. Args: units, activation (None),
    use_bias (True), kernel_initializer ('glorot_uniform'), bias_initializer ('zeros'),
    kernel_regularizer (None), bias_regularizer (None)."""

    supports_masking = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"[Dense] units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        in_features = input_shape[-1]
        if in_features is None:
            raise ValueError(f"[{self.name}] the last dimension of the input must be known, got {input_shape}")
        self.kernel = self.add_weight((in_features, self.units), self.kernel_initializer, "kernel",
                                      regularizer=self.kernel_regularizer)
        self.bias = self.add_weight((self.units,), self.bias_initializer, "bias",
                                    regularizer=self.bias_regularizer) if self.use_bias else None

    def call(self, inputs):
        if inputs.dim() < 1 or inputs.shape[-1] != self.kernel.shape[0]:
            raise _incompatible(self, self.kernel.shape[0], -1, inputs.shape)
        # linear reads the (in, out) kernel through transposed strides: no copy.
        y = _core.linear(inputs, self.kernel.transpose(0, 1), self.bias)
        return self.activation(y)

    def get_config(self):
        return dict(super().get_config(), units=self.units, activation=activations.serialize(self.activation),
                    use_bias=self.use_bias, kernel_initializer=initializers.serialize(self.kernel_initializer),
                    bias_initializer=initializers.serialize(self.bias_initializer),
                    kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                    bias_regularizer=regularizers.serialize(self.bias_regularizer))


class Activation(Layer):
    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return dict(super().get_config(), activation=activations.serialize(self.activation))


class Dropout(Layer):
    """Zeroes inputs with probability `rate` in training and scales the rest by 1/(1-rate)."""

    supports_masking = True

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate <= 1:
            raise ValueError(f"[Dropout] rate must be a float in the range [0, 1], got {rate}")
        if noise_shape is not None:
            raise NotImplementedError("[Dropout] noise_shape is not supported")
        self.rate = float(rate)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        return _math.dropout(inputs, self.rate, True)

    def get_config(self):
        return dict(super().get_config(), rate=self.rate)


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...) in channels-last (row-major) order, as Keras."""

    def call(self, inputs):
        return inputs.reshape(inputs.shape[0], -1) if inputs.dim() != 2 else inputs


class Reshape(Layer):
    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(s) for s in target_shape)

    def call(self, inputs):
        try:
            return inputs.reshape(inputs.shape[0], *self.target_shape)
        except Exception as e:
            raise ValueError(f"[{self.name}] cannot reshape input of shape {tuple(inputs.shape)} to "
                             f"(batch, {', '.join(map(str, self.target_shape))}): {e}") from None

    def get_config(self):
        return dict(super().get_config(), target_shape=list(self.target_shape))


class Embedding(Layer):
    """Integer indices (N, ...) -> rows of a (input_dim, output_dim) table. Args: input_dim,
    output_dim, embeddings_initializer ('uniform' = U(-0.05, 0.05)), embeddings_regularizer,
    mask_zero (False: True makes index 0 padding, masked out of the recurrent layers downstream)."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 mask_zero=False, **kwargs):
        kwargs.pop("input_length", None)
        super().__init__(**kwargs)
        self.mask_zero = bool(mask_zero)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)

    def build(self, input_shape):
        self.embeddings = self.add_weight((self.input_dim, self.output_dim), self.embeddings_initializer,
                                          "embeddings", regularizer=self.embeddings_regularizer)

    def call(self, inputs):
        idx = inputs if inputs.dtype == int64 else inputs.to(int64)
        if idx.numel():
            lo, hi = int(idx.min().item()), int(idx.max().item())
            if lo < 0 or hi >= self.input_dim:
                raise IndexError(f"[{self.name}] index {hi if hi >= self.input_dim else lo} is out of range for "
                                 f"an Embedding of input_dim {self.input_dim} (input shape {tuple(idx.shape)})")
        return self.embeddings[idx.reshape(-1)].reshape(*idx.shape, self.output_dim)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return inputs != 0

    def get_config(self):
        return dict(super().get_config(), input_dim=self.input_dim, output_dim=self.output_dim,
                    mask_zero=self.mask_zero,
                    embeddings_initializer=initializers.serialize(self.embeddings_initializer),
                    embeddings_regularizer=regularizers.serialize(self.embeddings_regularizer))


class Masking(Layer):
    """Masks the time steps whose features all equal `mask_value` (default 0.0): they are skipped by
    the recurrent layers downstream, and zeroed in the output, as Keras does."""

    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def compute_mask(self, inputs, mask=None):
        return (inputs != self.mask_value).any(dim=-1)

    def call(self, inputs):
        keep = (inputs != self.mask_value).any(dim=-1, keepdim=True)
        return inputs * keep.to(inputs.dtype)

    def get_config(self):
        return dict(super().get_config(), mask_value=self.mask_value)
