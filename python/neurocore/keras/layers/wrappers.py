"""Bidirectional (a recurrent layer run forwards and on the reversed sequence, outputs merged) and
TimeDistributed (a layer applied to every time step), with Keras 3's arguments and weight order
(Bidirectional: the forward layer's weights, then the backward layer's)."""
from ..._indexing import cat, flip
from .base import Layer


def _clone(layer, **overrides):
    """A fresh layer of the same class from layer.get_config() with `overrides` (Keras builds the
    forward and backward copies this way)."""
    config = dict(layer.get_config(), **overrides)
    config.pop("batch_input_shape", None)
    return type(layer).from_config(config)


def _strip(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


class Bidirectional(Layer):
    """Runs `layer` over the sequence and a copy (or `backward_layer`) over the reversed sequence and
    merges the two outputs (the backward sequence put back in time order first).

    Args: layer (SimpleRNN, LSTM or GRU); merge_mode ('concat' (default), 'sum', 'mul', 'ave' or
    None: the two outputs as a list); backward_layer (None: a copy of `layer` with
    go_backwards=True). With return_state the result is [output, *forward states, *backward
    states]. call(sequences, initial_state=None (forward states then backward ones), mask=None)."""

    supports_masking = True

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(f"[Bidirectional] needs a keras layer, got {layer!r}")
        if backward_layer is not None and not isinstance(backward_layer, Layer):
            raise ValueError(f"[Bidirectional] backward_layer must be a keras layer, got {backward_layer!r}")
        if merge_mode not in ("sum", "mul", "ave", "concat", None):
            raise ValueError(f"[Bidirectional] invalid merge_mode {merge_mode!r}; expected one of 'sum', 'mul', "
                             "'ave', 'concat' or None")
        for attr in ("go_backwards", "return_sequences", "return_state", "stateful"):
            if not hasattr(layer, attr):
                raise ValueError(f"[Bidirectional] wraps recurrent layers (SimpleRNN, LSTM, GRU), got "
                                 f"{type(layer).__name__}")
        if layer._input_shape_arg is not None:
            kwargs.setdefault("batch_input_shape", layer._input_shape_arg)
        super().__init__(**kwargs)
        self.forward_layer = _clone(layer, name="forward_" + _strip(layer.name, "forward_"))
        if backward_layer is None:
            backward_layer = _clone(layer, name="backward_" + _strip(layer.name, "backward_"),
                                    go_backwards=not layer.go_backwards)
        self.backward_layer = backward_layer
        if self.forward_layer.go_backwards == self.backward_layer.go_backwards:
            raise ValueError("[Bidirectional] the forward and backward layers must have different go_backwards, got "
                             f"{self.forward_layer.go_backwards} for both")
        for attr in ("stateful", "return_sequences", "return_state"):
            if getattr(self.forward_layer, attr) != getattr(self.backward_layer, attr):
                raise ValueError(f"[Bidirectional] the forward and backward layers must have the same {attr}, got "
                                 f"{getattr(self.forward_layer, attr)} and {getattr(self.backward_layer, attr)}")
        for sub in (self.forward_layer, self.backward_layer):  # Keras zeroes masked steps of both sequences
            sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self.return_sequences = self.forward_layer.return_sequences
        self.return_state = self.forward_layer.return_state
        self.stateful = self.forward_layer.stateful
        self._init_weights = weights

    def build(self, input_shape):
        self.forward_layer._maybe_build(input_shape)
        self.backward_layer._maybe_build(input_shape)
        if self._init_weights is not None:
            self.set_weights(self._init_weights)
            self._init_weights = None

    def __call__(self, *args, **kwargs):
        if "initial_state" in kwargs and len(args) == 1:
            args = (args[0], kwargs.pop("initial_state"))
        return super().__call__(*args, **kwargs)

    def call(self, sequences, initial_state=None, mask=None, training=None):
        forward_state = backward_state = None
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) % 2:
                raise ValueError(f"[{self.name}] initial_state must be a list of the forward states followed by the "
                                 "backward states")
            half = len(initial_state) // 2
            forward_state, backward_state = list(initial_state[:half]), list(initial_state[half:])
        y = self.forward_layer.call(sequences, forward_state, mask, training)
        y_rev = self.backward_layer.call(sequences, backward_state, mask, training)
        states = ()
        if self.return_state:
            states = tuple(y[1:]) + tuple(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = flip(y_rev, [1])
        if self.merge_mode == "concat":
            output = cat([y, y_rev], -1)
        elif self.merge_mode == "sum":
            output = y + y_rev
        elif self.merge_mode == "ave":
            output = (y + y_rev) * 0.5
        elif self.merge_mode == "mul":
            output = y * y_rev
        else:
            output = (y, y_rev)
        if self.return_state:
            return (output + states) if self.merge_mode is None else (output,) + states
        return output

    def compute_mask(self, inputs, mask=None):
        out = mask if self.return_sequences else None
        outs = [out, out] if self.merge_mode is None else [out]
        if self.return_state:
            n = len(self.forward_layer.compute_mask(inputs, mask)) - 1
            return outs + [None] * (2 * n)
        return outs if self.merge_mode is None else out

    def reset_states(self, states=None):
        self.forward_layer.reset_states()
        self.backward_layer.reset_states()

    reset_state = reset_states

    def get_config(self):
        return dict(super().get_config(), layer=_entry(self.forward_layer), backward_layer=_entry(self.backward_layer),
                    merge_mode=self.merge_mode)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layer = _make(config.pop("layer"))
        backward = config.pop("backward_layer", None)
        return cls(layer, backward_layer=_make(backward) if backward else None, **config)


def _entry(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def _make(entry):
    from .. import layers as layers_mod
    cls = getattr(layers_mod, entry["class_name"], None)
    if cls is None:
        raise ValueError(f"[load_model] unknown layer class {entry['class_name']!r}")
    return cls.from_config(dict(entry["config"]))


class TimeDistributed(Layer):
    """Applies `layer` to every time step of a (batch, timesteps, ...) input: the steps are folded
    into the batch for one call of the layer (so its kernels see one big batch) and unfolded after.
    The layer's weights are this layer's; a Keras mask passes through unchanged."""

    supports_masking = True

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(f"[TimeDistributed] needs a keras layer, got {layer!r}")
        super().__init__(**kwargs)
        self.layer = layer

    def _child_shape(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"[{self.name}] expects an input of at least 3 dimensions (batch, timesteps, ...), got "
                             f"shape {tuple(input_shape)}")
        return (input_shape[0],) + tuple(input_shape[2:])

    def build(self, input_shape):
        self.layer._maybe_build(self._child_shape(input_shape))

    def call(self, inputs, training=None, mask=None):
        self._child_shape(tuple(inputs.shape))
        if mask is not None and tuple(mask.shape[:2]) != tuple(inputs.shape[:2]):
            raise ValueError(f"[{self.name}] the mask has shape {tuple(mask.shape)}, incompatible with the input shape "
                             f"{tuple(inputs.shape)}")
        batch, steps = inputs.shape[0], inputs.shape[1]
        folded = inputs.reshape(batch * steps, *inputs.shape[2:])
        y = self.layer(folded, training=training) if self.layer._call_takes_training else self.layer(folded)
        return y.reshape(batch, steps, *y.shape[1:])

    def get_config(self):
        return dict(super().get_config(), layer=_entry(self.layer))

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(_make(config.pop("layer")), **config)
