"""keras.Model (subclassed or functional), keras.Sequential and load_model."""
from ..nn import _fusion
from . import _backend, activations, saving, summary as summary_mod
from .layers.conv import Conv2D
from .layers.pooling import MaxPooling2D
from .layers.base import Layer, InputLayer, KerasTensor, flatten, map_structure
from .trainer import Trainer


class Model(Trainer, Layer):
    """A model: `keras.Model(inputs, outputs)` builds a functional model from layer calls on
    keras.Input tensors; a subclass that defines `call` (and creates its layers in __init__) is a
    subclassed model. Both train with compile/fit/evaluate/predict."""

    def __new__(cls, *args, **kwargs):
        if cls is Model and (args or "inputs" in kwargs):
            return object.__new__(Functional)
        return object.__new__(cls)

    def __init__(self, *args, name=None, trainable=True, **kwargs):
        if args or "inputs" in kwargs:
            raise TypeError("[Model] Model(inputs, outputs) builds a functional model")
        Layer.__init__(self, trainable=trainable, name=name or _backend.unique_name(
            _backend.snake_case(type(self).__name__) if type(self) is not Model else "functional"), **kwargs)
        self.compiled = False
        self.optimizer = None
        self.stop_training = False
        self.history = None

    @property
    def layers(self):
        return [m for m in self.children() if isinstance(m, Layer)]

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"[get_layer] no such layer: {name}. Existing layers are: {[l.name for l in self.layers]}")

    def build(self, input_shape):
        """Builds a subclassed model by calling it once on a zero batch of `input_shape`."""
        if type(self).call is Model.call:
            raise NotImplementedError(f"[{self.name}] a subclassed Model must define call()")
        shapes = input_shape
        kts = [KerasTensor(s) for s in shapes] if isinstance(shapes, list) else KerasTensor(shapes)
        self.built = True  # the dry run below builds the sub-layers, not the model again
        try:
            Layer._symbolic_call(self, (kts,), {})
        except BaseException:
            self.built = False
            raise
        self._inbound_nodes.pop()

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False, show_trainable=False,
                layer_range=None):
        """Prints the layer table (name (type), output shape, parameter count) and the totals with
        their sizes in bytes, as Keras 3 does."""
        summary_mod.print_summary(self, line_length, positions, print_fn)

    def save(self, filepath, overwrite=True):
        """Architecture (JSON) and weights in one zip file; see keras.saving."""
        saving.save_model(self, filepath, overwrite)

    def save_weights(self, filepath, overwrite=True):
        saving.save_weights(self, filepath, overwrite)

    def load_weights(self, filepath):
        saving.load_weights(self, filepath)

    def to_json(self):
        return saving.model_to_json(self)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable}


class Functional(Model):
    """A model defined by its inputs and the layer calls that lead to its outputs."""

    def __init__(self, inputs, outputs, name=None, trainable=True):
        Model.__init__(self, name=name or _backend.unique_name("functional"), trainable=trainable)
        self._inputs_struct, self._outputs_struct = inputs, outputs
        self.inputs = flatten(inputs)
        self.outputs = flatten(outputs)
        for t in self.inputs + self.outputs:
            if not isinstance(t, KerasTensor):
                raise TypeError(f"[Model] inputs and outputs must be KerasTensors (from keras.Input and layer "
                                f"calls), got {type(t).__name__}")
        self._nodes = self._topological_nodes()
        for kt in self.inputs:
            if not isinstance(kt._node.layer, InputLayer):
                raise ValueError("[Model] every input must come from keras.Input")
        for layer in self._layers_in_keras_order():
            if layer.name in self._modules:
                raise ValueError(f"[Model] the layer name {layer.name!r} is used by two different layers")
            self.add_module(layer.name, layer)
        self.output_names = [kt._node.layer.name for kt in self.outputs]
        self._call_takes_training = True
        self.built = True

    def _topological_nodes(self):
        order, state = [], {}

        def visit(node):
            if state.get(id(node)) == 2:
                return
            if state.get(id(node)) == 1:
                raise ValueError("[Model] the graph has a cycle")
            state[id(node)] = 1
            for kt in flatten(node.args):
                if isinstance(kt, KerasTensor):
                    visit(kt._node)
            state[id(node)] = 2
            order.append(node)

        for kt in self.inputs:
            visit(kt._node)
        for kt in self.outputs:
            visit(kt._node)
        reachable_inputs = {id(kt._node) for kt in self.inputs}
        for node in order:
            if isinstance(node.layer, InputLayer) and id(node) not in reachable_inputs:
                raise ValueError(f"[Model] output depends on the input {node.layer.name!r}, which is not in inputs")
        return order

    def _layers_in_keras_order(self):
        """Layers by decreasing depth (longest path to an output), ties in the order a depth-first
        walk from the outputs first meets them: Keras's order, which fixes get_weights()."""
        index, post = {}, []

        def walk(node, seen):
            if id(node) in seen:
                return
            index.setdefault(id(node.layer), len(index))
            seen.add(id(node))
            if not isinstance(node.layer, InputLayer):
                for t in flatten(node.args):
                    if isinstance(t, KerasTensor):
                        walk(t._node, seen)
            post.append(node)

        seen = set()
        for kt in self.outputs:
            walk(kt._node, seen)
        node_depth, layer_depth = {}, {}
        for node in reversed(post):
            depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
            layer_depth[id(node.layer)] = node_depth[id(node)] = depth
            if not isinstance(node.layer, InputLayer):
                for t in flatten(node.args):
                    if isinstance(t, KerasTensor):
                        node_depth[id(t._node)] = max(depth + 1, node_depth.get(id(t._node), 0))
        layers = {id(n.layer): n.layer for n in post}
        return sorted(layers.values(), key=lambda l: (-layer_depth[id(l)], index[id(l)]))

    def call(self, inputs, training=None):
        values = {}
        given = flatten(inputs) if isinstance(inputs, (list, tuple, dict)) else [inputs]
        if len(given) != len(self.inputs):
            raise ValueError(f"[{self.name}] expects {len(self.inputs)} inputs, got {len(given)}")
        for kt, value in zip(self.inputs, given):
            value = _backend.to_tensor(value)
            expected = kt.shape
            if value.dim() != len(expected) or any(e is not None and e != s for e, s in zip(expected[1:],
                                                                                         value.shape[1:])):
                raise ValueError(f"[{self.name}] Input {kt._node.layer.name!r} is incompatible: expected shape "
                                 f"{expected}, got {tuple(value.shape)}")
            values[id(kt)] = value
        for node in self._nodes:
            if isinstance(node.layer, InputLayer):
                continue
            args = map_structure(lambda t: values[id(t)] if isinstance(t, KerasTensor) else t, node.args)
            kwargs = dict(node.kwargs)
            if node.layer._call_takes_training and kwargs.get("training") is None:
                kwargs["training"] = training
            out = node.layer(*args, **kwargs)
            for kt, value in zip(flatten(node.outputs), flatten(out)):
                values[id(kt)] = value
        return map_structure(lambda t: values[id(t)], self._outputs_struct)

    @property
    def layers(self):
        return [m for m in self.children() if isinstance(m, Layer)]

    def get_config(self):
        return saving.functional_config(self)


class Sequential(Model):
    """A stack of layers, each feeding the next. `Sequential([layers])` or `.add(layer)`; the
    input shape comes from keras.Input, the first layer's input_shape=, or the first batch."""

    def __init__(self, layers=None, trainable=True, name=None):
        Model.__init__(self, name=name or _backend.unique_name("sequential"), trainable=trainable)
        self._input_layer = None
        self._layer_list = []
        self._call_takes_training = True
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        if isinstance(layer, KerasTensor):
            if not isinstance(layer._node.layer, InputLayer) or self._layer_list:
                raise ValueError("[Sequential] a keras.Input can only be the first element")
            self._input_layer = layer._node.layer
            return
        if isinstance(layer, InputLayer):
            self._input_layer = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"[Sequential] only Keras layers can be added, got {type(layer).__name__}")
        if layer.name in self._modules:
            raise ValueError(f"[Sequential] all layers added to a Sequential model should have unique names; "
                             f"{layer.name!r} is already in the model")
        self._layer_list.append(layer)
        self.add_module(layer.name, layer)
        if len(self._layer_list) == 1 and self._input_layer is None and layer._input_shape_arg is not None:
            self._input_layer = InputLayer(batch_shape=layer._input_shape_arg)
        self.built = False
        if self._input_layer is not None:
            self.build(self._input_layer.batch_shape)

    def pop(self):
        layer = self._layer_list.pop()
        del self._modules[layer.name]
        self.built = False
        return layer

    @property
    def layers(self):
        return list(self._layer_list)

    @property
    def input_shape(self):
        return self._input_layer.batch_shape if self._input_layer is not None else None

    def build(self, input_shape=None):
        if input_shape is None:
            raise ValueError("[Sequential] build needs an input shape")
        if self._input_layer is None or tuple(self._input_layer.batch_shape) != tuple(input_shape):
            self._input_layer = InputLayer(batch_shape=tuple(input_shape)) if self._input_layer is None else \
                self._input_layer
        kt = KerasTensor(tuple(input_shape))
        self._output_shapes = []
        for layer in self._layer_list:
            kt = layer._symbolic_call((kt,), {})
            layer._inbound_nodes.pop()
            self._output_shapes.append(kt.shape)
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        if self._layer_list and x.dim() >= 1 and self._input_layer is not None:
            expected = self._input_layer.batch_shape
            if x.dim() != len(expected) or any(e is not None and e != s for e, s in zip(expected[1:], x.shape[1:])):
                first = self._layer_list[0]
                raise ValueError(f"[{first.name}] Input 0 of layer \"{first.name}\" is incompatible with the layer: "
                                 f"expected shape={expected}, found shape={tuple(x.shape)}")
        layers = self._layer_list
        pool_first = _fusion.pool_before_relu()
        i, n = 0, len(layers)
        while i < n:
            layer = layers[i]
            if pool_first and i + 1 < n and _relu_then_max_pool(layer, layers[i + 1]):
                # Pool before the ReLU, as nn.Sequential does (nn/_fusion.py's _run_modules says
                # why values and gradients are the same); the convolution's own output is not
                # observable inside a Sequential.
                pooled = layers[i + 1](layer._convolve(x, False).permute(0, 2, 3, 1))
                x = pooled.permute(0, 3, 1, 2).relu().permute(0, 2, 3, 1)  # the ReLU on the (N, C, H, W) layout
                i += 2
                continue
            x = layer(x, training=training) if layer._call_takes_training else layer(x)
            i += 1
        return x

    def __call__(self, *args, **kwargs):
        inputs = args[0] if args else kwargs.get("inputs")
        if not isinstance(inputs, KerasTensor) and not isinstance(inputs, (list, tuple)):
            inputs = _backend.to_tensor(inputs)
            if not self.built:
                self.build((None,) + tuple(inputs.shape[1:]))
            args = (inputs,) + tuple(args[1:])
        return Layer.__call__(self, *args, **kwargs)

    def get_config(self):
        return saving.sequential_config(self)


def _relu_then_max_pool(layer, next_layer):
    """True for a built Conv2D with a plain ReLU activation followed by a MaxPooling2D (exact
    classes: a subclass may override call)."""
    return (type(layer) is Conv2D and layer.activation is activations.relu and layer.built
            and type(next_layer) is MaxPooling2D)


def load_model(filepath, custom_objects=None, compile=True):
    return saving.load_model(filepath, custom_objects, compile)


def model_from_json(json_string, custom_objects=None):
    return saving.model_from_json(json_string, custom_objects)


def clone_model(model):
    return saving.model_from_config(saving.model_config(model))

