"""Add, Subtract, Multiply, Average, Maximum, Minimum and Concatenate: layers that combine a list
of tensors of the same shape (Concatenate: same shape except on `axis`)."""
from ... import _core
from .base import Layer


class _Merge(Layer):
    _min_inputs = 2

    def _check(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < self._min_inputs:
            raise ValueError(f"[{self.name}] expects a list of at least {self._min_inputs} inputs, got {inputs!r}")
        shapes = [tuple(x.shape) for x in inputs]
        if not isinstance(self, Concatenate) and len(set(shapes)) != 1:
            raise ValueError(f"[{self.name}] inputs must have the same shape, got {shapes}")
        return list(inputs)


class Add(_Merge):
    def call(self, inputs):
        xs = self._check(inputs)
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Subtract(_Merge):
    def call(self, inputs):
        xs = self._check(inputs)
        if len(xs) != 2:
            raise ValueError(f"[{self.name}] expects exactly 2 inputs, got {len(xs)}")
        return xs[0] - xs[1]


class Multiply(_Merge):
    def call(self, inputs):
        xs = self._check(inputs)
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Average(Add):
    def call(self, inputs):
        return super().call(inputs) * (1.0 / len(inputs))


class Maximum(_Merge):
    def call(self, inputs):
        xs = self._check(inputs)
        out = xs[0]
        for x in xs[1:]:
            out = _core.maximum(out, x)
        return out


class Minimum(_Merge):
    def call(self, inputs):
        xs = self._check(inputs)
        out = xs[0]
        for x in xs[1:]:
            out = _core.minimum(out, x)
        return out


class Concatenate(_Merge):
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs):
        xs = self._check(inputs)
        rank = xs[0].dim()
        axis = self.axis % rank
        for x in xs:
            if x.dim() != rank or any(x.shape[d] != xs[0].shape[d] for d in range(rank) if d != axis):
                raise ValueError(f"[{self.name}] inputs must match except on the concatenation axis {self.axis}, "
                                 f"got shapes {[tuple(t.shape) for t in xs]}")
        return _core.cat(xs, axis)

    def get_config(self):
        return dict(super().get_config(), axis=self.axis)


def add(inputs):
    return Add()(inputs)


def concatenate(inputs, axis=-1):
    return Concatenate(axis=axis)(inputs)
