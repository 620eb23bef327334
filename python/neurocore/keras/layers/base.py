"""Layer, the symbolic KerasTensor of the functional API, Input and InputLayer.

A Layer is an nn.Module (its weights are Parameters, so autograd, optimizers and state_dict work
unchanged) with Keras's life cycle: `build(input_shape)` creates weights on the first call, `call`
computes. Called on KerasTensors it records a node for `keras.Model(inputs, outputs)` and infers
the output shape by running `call` once on a zero batch of one, with autograd off."""
import inspect

import numpy as np

from ... import _core
from ..._tensor import no_grad, float32, int64
from ...nn.module import Module
from ...nn.parameter import Parameter
from .. import _backend, initializers, regularizers


class KerasTensor:
    """A symbolic tensor: shape (None for the batch), dtype and the layer call that made it."""

    def __init__(self, shape, dtype="float32", node=None, index=0, name=None):
        self.shape = tuple(shape)
        self.dtype = dtype
        self._node, self._index = node, index
        self.name = name

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


class Node:
    """One call of a layer in a functional graph: its inputs (a KerasTensor structure) and outputs."""

    def __init__(self, layer, args, kwargs, outputs):
        self.layer, self.args, self.kwargs, self.outputs = layer, args, kwargs, outputs


def flatten(structure):
    if isinstance(structure, (list, tuple)):
        return [x for s in structure for x in flatten(s)]
    if isinstance(structure, dict):
        return [x for k in structure for x in flatten(structure[k])]
    return [structure]


def map_structure(fn, structure):
    if isinstance(structure, (list, tuple)):
        return type(structure)(map_structure(fn, s) for s in structure)
    if isinstance(structure, dict):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    return fn(structure)


def shape_of(x):
    return tuple(x.shape)


def _dummy(kt):
    shape = tuple(1 if d is None else d for d in kt.shape)
    dtype = int64 if "int" in str(kt.dtype) else float32
    return _core._full(shape, 0, dtype)


class Layer(Module):
    """Base class of Keras layers. Args: trainable (True), name (auto: snake_case of the class),
    dtype (float32 only), input_shape / input_dim / batch_size (create an Input for a Sequential)."""

    _KNOWN_KWARGS = ("input_shape", "input_dim", "batch_input_shape", "batch_size", "dtype", "autocast")
    supports_masking = False  # True: the output keeps the input's Keras mask (see compute_mask)

    def __init__(self, trainable=True, name=None, dtype=None, **kwargs):
        super().__init__()
        for key in kwargs:
            if key not in self._KNOWN_KWARGS:
                raise TypeError(f"[{type(self).__name__}] unexpected keyword argument {key!r}")
        self.name = name or _backend.unique_name(_backend.snake_case(type(self).__name__))
        self._trainable = trainable
        self.built = False
        self._weight_specs = []  # (attribute name, trainable, regularizer) in creation order
        self._inbound_nodes = []
        self._call_takes_training = "training" in inspect.signature(self.call).parameters
        self._call_takes_mask = "mask" in inspect.signature(self.call).parameters
        self._build_input_shape = None
        self._input_shape_arg = None
        if "input_shape" in kwargs:
            self._input_shape_arg = (kwargs.get("batch_size"),) + tuple(kwargs["input_shape"])
        elif "input_dim" in kwargs:
            self._input_shape_arg = (kwargs.get("batch_size"), kwargs["input_dim"])
        elif "batch_input_shape" in kwargs:
            self._input_shape_arg = tuple(kwargs["batch_input_shape"])

    # --- weights ------------------------------------------------------------------------------
    def add_weight(self, shape, initializer="glorot_uniform", name=None, trainable=True, regularizer=None,
                   dtype=None):
        """Creates, registers and returns a weight of `shape` (an nn Parameter when trainable, a
        buffer otherwise)."""
        attr = name or f"weight_{len(self._weight_specs)}"
        value = initializers.get(initializer)(tuple(int(s) for s in shape))
        if trainable and self._trainable:
            self.register_parameter(attr, Parameter(value))
        else:
            self.register_buffer(attr, value)
        self._weight_specs.append((attr, trainable, regularizers.get(regularizer)))
        return getattr(self, attr)

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for attr, trainable, _ in self._weight_specs:
            if trainable:
                getattr(self, attr).requires_grad_(self._trainable)
        for layer in self._sublayers():
            layer.trainable = value

    def _sublayers(self):
        return [m for m in self.children() if isinstance(m, Layer)]

    def _own_weights(self, trainable=None):
        out = []
        for attr, is_trainable, _ in self._weight_specs:
            effective = is_trainable and self._trainable
            if trainable is None or effective == trainable:
                out.append(getattr(self, attr))
        return out

    @property
    def trainable_weights(self):
        out = self._own_weights(True) if self._trainable else []
        for layer in self._sublayers():
            out += layer.trainable_weights
        return _unique(out)

    @property
    def non_trainable_weights(self):
        out = self._own_weights(False) if self._trainable else self._own_weights()
        for layer in self._sublayers():
            out += layer.non_trainable_weights
        return _unique(out)

    @property
    def weights(self):
        """Trainable weights first, then non-trainable ones, as Keras lists them."""
        own = self._own_weights(True) + self._own_weights(False) if self._trainable else self._own_weights()
        for layer in self._sublayers():
            own += layer.weights
        return _unique(own)

    def get_weights(self):
        return [w.detach().numpy().copy() for w in self.weights]

    def set_weights(self, weights):
        mine = self.weights
        if len(weights) != len(mine):
            raise ValueError(f"[{self.name}] set_weights got {len(weights)} arrays, the layer has {len(mine)} weights")
        for w, value in zip(mine, weights):
            value = np.asarray(value)
            if tuple(value.shape) != tuple(w.shape):
                raise ValueError(f"[{self.name}] weight shape {tuple(w.shape)} is not compatible with the "
                                 f"provided weight shape {tuple(value.shape)}")
        with no_grad():
            for w, value in zip(mine, weights):
                w.copy_(_backend.to_tensor(np.asarray(value, dtype=np.float32)))

    @property
    def losses(self):
        """The regularisation penalties of this layer's (and its sub-layers') weights, as tensors."""
        out = []
        for attr, _, reg in self._weight_specs:
            if reg is not None:
                out.append(reg(getattr(self, attr)))
        for layer in self._sublayers():
            out += layer.losses
        return out

    def _penalty_plan(self):
        """(layer, weight name, regularizer) for each penalty `losses` computes, in its order, so a
        training loop can compute them without walking the layers each step; None when a layer
        overrides `losses` (then only `losses` itself knows)."""
        if type(self).losses is not Layer.losses:
            return None
        plan = [(self, attr, reg) for attr, _, reg in self._weight_specs if reg is not None]
        for layer in self._sublayers():
            sub = layer._penalty_plan()
            if sub is None:
                return None
            plan += sub
        return plan

    def count_params(self):
        return int(sum(int(np.prod(w.shape)) for w in self.weights))

    # --- life cycle ---------------------------------------------------------------------------
    def build(self, input_shape):
        self.built = True

    def _maybe_build(self, input_shape):
        if not self.built:
            self._build_input_shape = input_shape
            self.build(input_shape)
            self.built = True

    def call(self, inputs):
        return inputs

    def forward(self, *args, **kwargs):
        return self.__call__(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        inputs = args[0] if args else kwargs.get("inputs")
        if not self._call_takes_training:
            kwargs.pop("training", None)  # Keras passes it only to layers whose call takes it
        if type(inputs) is _core.Tensor:  # the common eager case: neither symbolic nor NumPy
            pass
        elif any(isinstance(t, KerasTensor) for t in flatten(inputs)):
            return self._symbolic_call(args, kwargs)
        elif any(isinstance(t, (np.ndarray, np.generic)) for t in flatten(inputs)):  # NumPy in, as Keras allows
            inputs = map_structure(lambda t: _backend.to_tensor(t) if isinstance(t, (np.ndarray, np.generic)) else t,
                                   inputs)
            args = (inputs,) + tuple(args[1:]) if args else args
            if not args:
                kwargs["inputs"] = inputs
        if not self.built:
            self._maybe_build(map_structure(shape_of, inputs))
        if self._call_takes_training and kwargs.get("training") is None:
            kwargs["training"] = _backend.in_training()
        mask = kwargs.get("mask")
        if mask is None and not isinstance(inputs, (list, tuple, dict)):
            mask = _backend.mask_of(inputs)  # the mask an earlier layer (Embedding(mask_zero=True), ...) attached
            if mask is not None and self._call_takes_mask:
                kwargs["mask"] = mask
        outputs = self.call(*args, **kwargs)
        out_mask = self.compute_mask(inputs, mask)
        if isinstance(outputs, (list, tuple)):
            masks = out_mask if isinstance(out_mask, (list, tuple)) else [out_mask] + [None] * (len(outputs) - 1)
            for t, m in zip(outputs, masks):
                if t is not inputs:
                    _backend.set_mask(t, m)
        elif outputs is not inputs:
            _backend.set_mask(outputs, out_mask)
        return outputs

    def compute_mask(self, inputs, mask=None):
        """The mask of the output: the input's when the layer supports masking (acts per step), else
        None, as Keras does."""
        return mask if self.supports_masking else None

    def _symbolic_call(self, args, kwargs):
        real_args = map_structure(lambda t: _dummy(t) if isinstance(t, KerasTensor) else t, args)
        with no_grad(), _backend.phase(False), _backend.symbolic():
            if not self.built:
                self._maybe_build(map_structure(lambda t: t.shape if isinstance(t, KerasTensor) else t, args[0]))
            kw = dict(kwargs)
            if self._call_takes_training and kw.get("training") is None:
                kw["training"] = False
            out = self.call(*real_args, **kw)
        node = Node(self, args, kwargs, None)
        counter = iter(range(1 << 30))
        outputs = map_structure(lambda t: KerasTensor((None,) + tuple(t.shape[1:]),
                                                      "int64" if t.dtype == int64 else "float32",
                                                      node, next(counter)), out)
        node.outputs = outputs
        self._inbound_nodes.append(node)
        return outputs

    def compute_output_shape(self, input_shape):
        """Output shape for `input_shape` (None for the batch), found by a dry run as in the
        functional API."""
        kt = KerasTensor(input_shape) if not isinstance(input_shape, list) else [KerasTensor(s) for s in input_shape]
        out = self._symbolic_call((kt,), {})
        self._inbound_nodes.pop()
        return map_structure(lambda t: t.shape, out)

    # --- config -------------------------------------------------------------------------------
    def get_config(self):
        config = {"name": self.name, "trainable": self._trainable}
        if self._input_shape_arg is not None:
            config["batch_input_shape"] = list(self._input_shape_arg)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def extra_repr(self):
        return f"name={self.name!r}"


def _unique(tensors):
    seen, out = set(), []
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
    return out


class InputLayer(Layer):
    """The placeholder layer an Input belongs to (no weights; shows as InputLayer in summaries)."""

    def __init__(self, shape=None, batch_size=None, dtype="float32", name=None, batch_shape=None, **kwargs):
        super().__init__(name=name or _backend.unique_name("input_layer"))
        if batch_shape is None:
            if shape is None:
                raise ValueError("[InputLayer] needs a shape, e.g. keras.Input(shape=(784,))")
            batch_shape = (batch_size,) + tuple(shape)
        self.batch_shape = tuple(batch_shape)
        self.input_dtype = str(dtype) if dtype is not None else "float32"
        self.output = KerasTensor(self.batch_shape, self.input_dtype, Node(self, (), {}, None), 0, self.name)
        self.output._node.outputs = self.output
        self.built = True

    def get_config(self):
        return {"name": self.name, "batch_shape": list(self.batch_shape), "dtype": self.input_dtype}


def Input(shape=None, batch_size=None, dtype="float32", name=None, batch_shape=None):
    """A symbolic input of `shape` (without the batch dimension), the start of a functional model."""
    if shape is not None:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return InputLayer(shape, batch_size, dtype, name, batch_shape).output
