"""Keras metrics: stateful objects (update_state / result / reset_state) that average a per-sample
value over an epoch, weighted by the number of samples, and the per-sample functions behind them.
'accuracy' in compile() resolves to binary, sparse categorical or categorical accuracy from the
shapes of the targets and predictions, as Keras does."""

import numpy as np

from .._tensor import int64, float32, no_grad
from . import _backend, losses as losses_mod


def sparse_categorical_accuracy(y_true, y_pred):
    labels = y_true.to(int64) if y_true.dtype != int64 else y_true
    if labels.dim() == y_pred.dim() and labels.shape[-1] == 1:
        labels = labels.reshape(*labels.shape[:-1])
    return (y_pred.argmax(dim=-1) == labels).to(float32)


def categorical_accuracy(y_true, y_pred):
    return (y_pred.argmax(dim=-1) == y_true.argmax(dim=-1)).to(float32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    y = y_true.to(float32).reshape(*y_pred.shape) if y_true.numel() == y_pred.numel() else y_true
    return ((y_pred > threshold).to(float32) == y).to(float32).mean(dim=-1)


def accuracy(y_true, y_pred):
    return (y_pred == y_true.to(y_pred.dtype)).to(float32).mean(dim=-1)


class Metric:
    """Base class: subclasses implement update_state(y_true, y_pred, sample_weight=None), result()
    and reset_state()."""

    def __init__(self, name=None, dtype=None):
        self.name = name or _backend.snake_case(type(self).__name__)
        self.reset_state()

    def reset_state(self):
        pass

    def __call__(self, y_true, y_pred, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()


class Mean(Metric):
    """Weighted running mean of the values given to update_state."""

    def reset_state(self):
        self.total, self.count = 0.0, 0.0

    def update_state(self, values, sample_weight=None):
        with no_grad():
            v = _backend.to_numpy(_backend.float_tensor(values)).astype(np.float64)
            if sample_weight is None:
                self.total += float(v.sum())
                self.count += v.size
            else:
                sw = _backend.to_numpy(sample_weight).astype(np.float64)
                sw = np.broadcast_to(sw.reshape(sw.shape + (1,) * (v.ndim - sw.ndim)), v.shape)
                self.total += float((v * sw).sum())
                self.count += float(sw.sum())

    def result(self):
        return self.total / self.count if self.count else 0.0


class MeanMetricWrapper(Mean):
    def __init__(self, fn, name=None, dtype=None, **kwargs):
        self._fn, self._fn_kwargs = fn, kwargs
        super().__init__(name or fn.__name__)

    def update_state(self, y_true, y_pred, sample_weight=None):
        with no_grad():
            super().update_state(self._fn(_backend.to_tensor(y_true), _backend.float_tensor(y_pred),
                                          **self._fn_kwargs), sample_weight)


def _wrapper(cls_name, fn, default_name, **defaults):
    def __init__(self, name=default_name, dtype=None, **kwargs):
        MeanMetricWrapper.__init__(self, fn, name, dtype, **dict(defaults, **kwargs))
    return type(cls_name, (MeanMetricWrapper,), {"__init__": __init__})


Accuracy = _wrapper("Accuracy", accuracy, "accuracy")
SparseCategoricalAccuracy = _wrapper("SparseCategoricalAccuracy", sparse_categorical_accuracy,
                                     "sparse_categorical_accuracy")
CategoricalAccuracy = _wrapper("CategoricalAccuracy", categorical_accuracy, "categorical_accuracy")
BinaryAccuracy = _wrapper("BinaryAccuracy", binary_accuracy, "binary_accuracy", threshold=0.5)
MeanSquaredError = _wrapper("MeanSquaredError", losses_mod.mean_squared_error, "mean_squared_error")
MeanAbsoluteError = _wrapper("MeanAbsoluteError", losses_mod.mean_absolute_error, "mean_absolute_error")
SparseCategoricalCrossentropy = _wrapper("SparseCategoricalCrossentropy", losses_mod.sparse_categorical_crossentropy,
                                         "sparse_categorical_crossentropy")
CategoricalCrossentropy = _wrapper("CategoricalCrossentropy", losses_mod.categorical_crossentropy,
                                   "categorical_crossentropy")
BinaryCrossentropy = _wrapper("BinaryCrossentropy", losses_mod.binary_crossentropy, "binary_crossentropy")

_BY_NAME = {"sparse_categorical_accuracy": SparseCategoricalAccuracy, "categorical_accuracy": CategoricalAccuracy,
            "binary_accuracy": BinaryAccuracy, "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
            "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
            "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
            "categorical_crossentropy": CategoricalCrossentropy, "binary_crossentropy": BinaryCrossentropy}


def get(identifier, y_true_shape=None, y_pred_shape=None):
    """A Metric for a name, a Metric object or a function; 'accuracy'/'acc' picks the accuracy
    variant from the shapes as Keras does."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc"):
            if y_pred_shape is not None and (y_pred_shape[-1] == 1 or len(y_pred_shape) == 1):
                fn = binary_accuracy
            elif y_true_shape is not None and (len(y_true_shape) < len(y_pred_shape) or
                                               (len(y_true_shape) == len(y_pred_shape) and y_true_shape[-1] == 1)):
                fn = sparse_categorical_accuracy
            else:
                fn = categorical_accuracy
            return MeanMetricWrapper(fn, identifier)
        if identifier not in _BY_NAME:
            raise ValueError(f"[compile] unknown metric {identifier!r}; expected 'accuracy' or one of "
                             f"{sorted(_BY_NAME)}")
        return _BY_NAME[identifier](name=identifier)
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise ValueError(f"[compile] cannot interpret metric {identifier!r}")


__all__ = ["Metric", "Mean", "MeanMetricWrapper", "Accuracy", "SparseCategoricalAccuracy", "CategoricalAccuracy",
           "BinaryAccuracy", "MeanSquaredError", "MeanAbsoluteError", "sparse_categorical_accuracy",
           "categorical_accuracy", "binary_accuracy", "accuracy", "get"]
