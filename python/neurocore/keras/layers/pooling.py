"""MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D and GlobalMaxPooling2D on channels-last
input (the C++ pooling kernels read the permuted view; see conv.py)."""
from ... import _core
from .base import Layer
from .conv import _tuple


def _same_padding(sizes, pool, strides, layer):
    """Symmetric pads and ceil_mode that give TensorFlow's 'same' output ceil(size / stride): the
    odd padding pixel TensorFlow puts after the input is the window ceil_mode adds at the end."""
    pads, ceil = [], False
    for size, k, s in zip(sizes, pool, strides):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads.append(total // 2)
        ceil = ceil or total % 2 == 1
    for size, k, s, p in zip(sizes, pool, strides, pads):
        got = (size + 2 * p - k + (s - 1 if ceil else 0)) // s + 1
        if ceil and (got - 1) * s >= size + p:
            got -= 1
        if got != -(-size // s) or p > k // 2:
            raise NotImplementedError(f"[{layer}] padding='same' for input size {size}, pool {k}, stride {s} is "
                                      "not supported")
    return pads, ceil


class _Pooling2D(Layer):
    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        kind = type(self).__name__
        if data_format not in (None, "channels_last"):
            raise NotImplementedError(f"[{kind}] only data_format='channels_last' is supported")
        if padding not in ("valid", "same"):
            raise ValueError(f"[{kind}] padding must be 'valid' or 'same', got {padding!r}")
        self.pool_size = _tuple(pool_size, 2, "pool_size", kind)
        self.strides = _tuple(strides, 2, "strides", kind) if strides is not None else self.pool_size
        self.padding = padding

    def _args(self, inputs):
        if inputs.dim() != 4:
            raise ValueError(f"[{self.name}] expected a rank-4 input (batch, height, width, channels), got shape "
                             f"{tuple(inputs.shape)}")
        if self.padding == "valid":
            return [0, 0], False
        return _same_padding(inputs.shape[1:3], self.pool_size, self.strides, self.name)

    def get_config(self):
        return dict(super().get_config(), pool_size=list(self.pool_size), strides=list(self.strides),
                    padding=self.padding)


class MaxPooling2D(_Pooling2D):
    def call(self, inputs):
        pad, ceil = self._args(inputs)
        y = _core._max_pool2d(inputs.permute(0, 3, 1, 2), list(self.pool_size), list(self.strides), pad, [1, 1],
                                 ceil, False, self.name)
        return y.permute(0, 2, 3, 1)


class AveragePooling2D(_Pooling2D):
    def call(self, inputs):
        pad, ceil = self._args(inputs)
        y = _core._avg_pool2d(inputs.permute(0, 3, 1, 2), list(self.pool_size), list(self.strides), pad, ceil,
                              False, 0, self.name)
        return y.permute(0, 2, 3, 1)


class _GlobalPooling2D(Layer):
    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.keepdims = keepdims

    def get_config(self):
        return dict(super().get_config(), keepdims=self.keepdims)


class GlobalAveragePooling2D(_GlobalPooling2D):
    def call(self, inputs):
        if inputs.dim() != 4:
            raise ValueError(f"[{self.name}] expected a rank-4 input, got shape {tuple(inputs.shape)}")
        return inputs.mean(dim=(1, 2), keepdim=self.keepdims)


class GlobalMaxPooling2D(_GlobalPooling2D):
    def call(self, inputs):
        if inputs.dim() != 4:
            raise ValueError(f"[{self.name}] expected a rank-4 input, got shape {tuple(inputs.shape)}")
        return inputs.amax(dim=(1, 2), keepdim=self.keepdims)


MaxPool2D, AvgPool2D, GlobalAvgPool2D = MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D
