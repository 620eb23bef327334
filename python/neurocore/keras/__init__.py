"""``neurocore.keras``: the Keras 3 API (Sequential, functional and subclassed models, layers,
compile/fit/evaluate/predict, callbacks, losses, metrics, optimizers) on neurocore's C++ kernels.

    from neurocore import keras
    model = keras.Sequential([keras.layers.Dense(10, activation="softmax", input_shape=(784,))])
"""
from . import (_backend, activations, initializers, regularizers, losses, metrics, optimizers, callbacks, layers,
               saving)
from .layers import Input, Layer
from .models import Model, Sequential, Functional, load_model, model_from_json, clone_model
from . import models
from ._backend import clear_session


class backend:  # noqa: N801 - keras.backend.clear_session()
    clear_session = staticmethod(clear_session)


class utils:  # noqa: N801 - keras.utils.clear_session / to_categorical
    clear_session = staticmethod(clear_session)

    @staticmethod
    def to_categorical(y, num_classes=None):
        import numpy as np
        y = np.asarray(y, dtype=np.int64).reshape(-1)
        n = int(y.max()) + 1 if num_classes is None else int(num_classes)
        out = np.zeros((len(y), n), np.float32)
        out[np.arange(len(y)), y] = 1.0
        return out


__all__ = ["Input", "Layer", "Model", "Sequential", "Functional", "load_model", "model_from_json", "clone_model",
           "activations", "initializers", "regularizers", "losses", "metrics", "optimizers", "callbacks", "layers",
           "saving", "models", "backend", "utils", "clear_session"]
