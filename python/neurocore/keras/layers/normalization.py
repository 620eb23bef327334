"""BatchNormalization and LayerNormalization with Keras's defaults (epsilon 1e-3; batch norm
momentum 0.99: moving = moving * momentum + batch * (1 - momentum), with the batch's biased
variance, as Keras does, where PyTorch would use the unbiased one)."""
from ... import _core
from ..._tensor import no_grad
from .base import Layer


def _channels_second(x):
    """x with its last (channel) axis moved to dim 1, as a view."""
    if x.dim() <= 2:
        return x
    return x.permute(0, x.dim() - 1, *range(1, x.dim() - 1))


def _channels_last(y):
    if y.dim() <= 2:
        return y
    return y.permute(0, *range(2, y.dim()), 1)


class BatchNormalization(Layer):
    """Normalises the last axis with batch statistics in training and moving ones in inference.
    Args: axis (-1 only), momentum (0.99), epsilon (1e-3), center (True), scale (True)."""

    supports_masking = True

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise NotImplementedError(f"[BatchNormalization] only axis=-1 (channels last) is supported, got {axis}")
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = center, scale
        self._inits = (gamma_initializer, beta_initializer, moving_mean_initializer, moving_variance_initializer)
        self._regs = (gamma_regularizer, beta_regularizer)

    def build(self, input_shape):
        c = input_shape[-1]
        self.gamma = self.add_weight((c,), self._inits[0], "gamma", regularizer=self._regs[0]) if self.scale else None
        self.beta = self.add_weight((c,), self._inits[1], "beta", regularizer=self._regs[1]) if self.center else None
        self.moving_mean = self.add_weight((c,), self._inits[2], "moving_mean", trainable=False)
        self.moving_variance = self.add_weight((c,), self._inits[3], "moving_variance", trainable=False)

    def call(self, inputs, training=None):
        c = self.moving_mean.shape[0]
        if inputs.dim() < 2 or inputs.shape[-1] != c:
            raise ValueError(f"[{self.name}] expected input with {c} channels on the last axis, got shape "
                             f"{tuple(inputs.shape)}")
        x = _channels_second(inputs)
        if training and self.trainable:
            y = _core._batch_norm(x, None, None, self.gamma, self.beta, True, 0.0, self.epsilon)
            dims = [0] + list(range(2, x.dim()))
            with no_grad():
                mean = x.mean(dim=dims)
                var = x.var(dim=dims, correction=0)
                self.moving_mean.mul_(self.momentum).add_(mean * (1.0 - self.momentum))
                self.moving_variance.mul_(self.momentum).add_(var * (1.0 - self.momentum))
        else:
            y = _core._batch_norm(x, self.moving_mean, self.moving_variance, self.gamma, self.beta, False, 0.0,
                                  self.epsilon)
        return _channels_last(y)

    def get_config(self):
        return dict(super().get_config(), axis=self.axis, momentum=self.momentum, epsilon=self.epsilon,
                    center=self.center, scale=self.scale)


class LayerNormalization(Layer):
    """Normalises each sample over the last axis. Args: axis (-1 only), epsilon (1e-3), center,
    scale."""

    supports_masking = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        if axis not in (-1,):
            raise NotImplementedError(f"[LayerNormalization] only axis=-1 is supported, got {axis}")
        self.axis, self.epsilon, self.center, self.scale = axis, float(epsilon), center, scale
        self._inits = (gamma_initializer, beta_initializer)

    def build(self, input_shape):
        c = input_shape[-1]
        self.gamma = self.add_weight((c,), self._inits[0], "gamma") if self.scale else None
        self.beta = self.add_weight((c,), self._inits[1], "beta") if self.center else None

    def call(self, inputs):
        return _core._layer_norm(inputs, [inputs.shape[-1]], self.gamma, self.beta, self.epsilon)

    def get_config(self):
        return dict(super().get_config(), axis=self.axis, epsilon=self.epsilon, center=self.center,
                    scale=self.scale)
