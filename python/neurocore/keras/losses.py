"""Keras losses: functions (per-sample values) and Loss objects (weighted mean over the batch,
Keras's 'sum_over_batch_size'). Cross-entropies on probabilities produced by a softmax/sigmoid
layer use that layer's logits, as Keras on TensorFlow does; otherwise the probabilities are
clipped to [1e-7, 1 - 1e-7] before the log."""
from .. import _losses, _reduce
from .._tensor import int64, float32
from . import _backend

EPSILON = 1e-7


def _as_labels(y_true, y_pred, name):
    labels = y_true if y_true.dtype == int64 else y_true.to(int64)
    if labels.dim() == y_pred.dim() and labels.shape[-1] == 1:
        labels = labels.reshape(*labels.shape[:-1])
    if tuple(labels.shape) != tuple(y_pred.shape[:-1]):
        raise ValueError(f"[{name}] labels of shape {tuple(y_true.shape)} do not match predictions of shape "
                         f"{tuple(y_pred.shape)}")
    return labels


def _log_probs(y_pred, from_logits, kind="softmax"):
    if from_logits:
        return _reduce.log_softmax(y_pred, dim=-1)
    logits = _backend.logits_of(y_pred, kind)
    if logits is not None:
        return _reduce.log_softmax(logits, dim=-1)
    p = y_pred / y_pred.sum(dim=-1, keepdim=True)
    return p.clamp(EPSILON, 1.0 - EPSILON).log()


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """Per-sample -log p[label] for integer labels (N,) or (N, 1) and predictions (N, C)."""
    labels = _as_labels(y_true, y_pred, "sparse_categorical_crossentropy")
    classes = y_pred.shape[-1]
    flat = labels.reshape(-1)
    if flat.numel():
        lo, hi = int(flat.min().item()), int(flat.max().item())
        if lo < 0 or hi >= classes:
            raise ValueError(f"[sparse_categorical_crossentropy] label {hi if hi >= classes else lo} is out of range "
                             f"for {classes} classes (predictions of shape {tuple(y_pred.shape)})")
    logp = _log_probs(y_pred, from_logits).reshape(-1, classes)
    out = _losses.nll_loss(logp, flat, reduction="none")
    return out.reshape(*labels.shape)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample -sum(y_true * log p) for one-hot (or soft) targets."""
    if tuple(y_true.shape) != tuple(y_pred.shape):
        raise ValueError(f"[categorical_crossentropy] targets of shape {tuple(y_true.shape)} do not match "
                         f"predictions of shape {tuple(y_pred.shape)}")
    y = y_true.to(float32) if y_true.dtype != y_pred.dtype else y_true
    if label_smoothing:
        y = y * (1.0 - label_smoothing) + label_smoothing / y_pred.shape[-1]
    return -(y * _log_probs(y_pred, from_logits)).sum(dim=-1)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample mean over the last axis of the binary cross-entropy."""
    if tuple(y_true.shape) != tuple(y_pred.shape):
        if y_true.numel() == y_pred.numel():
            y_true = y_true.reshape(*y_pred.shape)
        else:
            raise ValueError(f"[binary_crossentropy] targets of shape {tuple(y_true.shape)} do not match "
                             f"predictions of shape {tuple(y_pred.shape)}")
    y = y_true.to(y_pred.dtype) if y_true.dtype != y_pred.dtype else y_true
    if label_smoothing:
        y = y * (1.0 - label_smoothing) + 0.5 * label_smoothing
    logits = y_pred if from_logits else _backend.logits_of(y_pred, "sigmoid")
    if logits is not None:
        per = _losses.binary_cross_entropy_with_logits(logits, y, reduction="none")
    else:
        p = y_pred.clamp(EPSILON, 1.0 - EPSILON)
        per = -(y * p.log() + (1.0 - y) * (1.0 - p).log())
    return per.mean(dim=-1)


def _same_shape(y_true, y_pred, name):
    if tuple(y_true.shape) != tuple(y_pred.shape):
        if y_true.numel() == y_pred.numel():
            return y_true.reshape(*y_pred.shape).to(y_pred.dtype)
        raise ValueError(f"[{name}] targets of shape {tuple(y_true.shape)} do not match predictions of shape "
                         f"{tuple(y_pred.shape)}")
    return y_true.to(y_pred.dtype) if y_true.dtype != y_pred.dtype else y_true


def mean_squared_error(y_true, y_pred):
    d = y_pred - _same_shape(y_true, y_pred, "mean_squared_error")
    return (d * d).mean(dim=-1)


def mean_absolute_error(y_true, y_pred):
    return (y_pred - _same_shape(y_true, y_pred, "mean_absolute_error")).abs().mean(dim=-1)


def huber(y_true, y_pred, delta=1.0):
    y = _same_shape(y_true, y_pred, "huber")
    return _losses.huber_loss(y_pred, y, reduction="none", delta=delta).mean(dim=-1)


mse, mae = mean_squared_error, mean_absolute_error


class Loss:
    """Base of loss objects: __call__(y_true, y_pred, sample_weight=None) -> scalar tensor (the
    per-sample values, weighted, summed and divided by their count)."""

    def __init__(self, name=None, reduction="sum_over_batch_size", **kwargs):
        if reduction not in ("sum_over_batch_size", "sum", "none", "mean"):
            raise ValueError(f"[{type(self).__name__}] unknown reduction {reduction!r}")
        self.name = name or _backend.snake_case(type(self).__name__)
        self.reduction = reduction
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        return self._fn(y_true, y_pred, **self._fn_kwargs)

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_true = _backend.to_tensor(y_true)
        y_pred = _backend.float_tensor(y_pred)
        values = self.call(y_true, y_pred)
        if sample_weight is not None:
            sw = _backend.float_tensor(sample_weight)
            if sw.dim() < values.dim():
                sw = sw.reshape(*sw.shape, *([1] * (values.dim() - sw.dim())))
            values = values * sw
        if self.reduction == "none":
            return values
        total = values.sum()
        if self.reduction == "sum":
            return total
        return total * (1.0 / max(values.numel(), 1))

    def get_config(self):
        return dict(name=self.name, reduction=self.reduction, **self._fn_kwargs)


def _loss_class(cls_name, fn, **defaults):
    def __init__(self, name=None, reduction="sum_over_batch_size", **kwargs):
        Loss.__init__(self, name or _backend.snake_case(cls_name), reduction, **dict(defaults, **kwargs))
    return type(cls_name, (Loss,), {"__init__": __init__, "_fn": staticmethod(fn)})


SparseCategoricalCrossentropy = _loss_class("SparseCategoricalCrossentropy", sparse_categorical_crossentropy,
                                            from_logits=False)
CategoricalCrossentropy = _loss_class("CategoricalCrossentropy", categorical_crossentropy, from_logits=False)
BinaryCrossentropy = _loss_class("BinaryCrossentropy", binary_crossentropy, from_logits=False)
MeanSquaredError = _loss_class("MeanSquaredError", mean_squared_error)
MeanAbsoluteError = _loss_class("MeanAbsoluteError", mean_absolute_error)
Huber = _loss_class("Huber", huber)

_FUNCTIONS = {"sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
              "categorical_crossentropy": CategoricalCrossentropy, "binary_crossentropy": BinaryCrossentropy,
              "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
              "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError, "huber": Huber}
_CLASSES = {c.__name__: c for c in set(_FUNCTIONS.values())}
_BY_FUNCTION = {sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
                categorical_crossentropy: CategoricalCrossentropy, binary_crossentropy: BinaryCrossentropy,
                mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError, huber: Huber}


class LossFunctionWrapper(Loss):
    def __init__(self, fn, name=None, reduction="sum_over_batch_size", **kwargs):
        super().__init__(name or getattr(fn, "__name__", "loss"), reduction, **kwargs)
        self._wrapped = fn

    def call(self, y_true, y_pred):
        return self._wrapped(y_true, y_pred, **self._fn_kwargs)


def get(identifier):
    """A Loss object for a name ('sparse_categorical_crossentropy', 'mse', ...), a Loss or a
    function (y_true, y_pred) -> per-sample losses."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _FUNCTIONS:
            raise ValueError(f"[compile] unknown loss {identifier!r}; expected one of {sorted(_FUNCTIONS)} or a "
                             "Loss object")
        return _FUNCTIONS[identifier]()
    if identifier in _BY_FUNCTION:
        return _BY_FUNCTION[identifier]()
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise ValueError(f"[compile] cannot interpret loss {identifier!r}")


def serialize(loss):
    if type(loss).__name__ in _CLASSES:
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    raise ValueError(f"[keras.losses] cannot serialize the custom loss {loss!r}")


def deserialize(config):
    return _CLASSES[config["class_name"]](**config["config"])


__all__ = ["Loss", "SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy",
           "MeanSquaredError", "MeanAbsoluteError", "Huber", "sparse_categorical_crossentropy",
           "categorical_crossentropy", "binary_crossentropy", "mean_squared_error", "mean_absolute_error", "mse",
           "mae", "huber", "get"]
