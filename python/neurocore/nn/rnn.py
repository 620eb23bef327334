"""Recurrent layers: RNN, LSTM, GRU and their single-step cells.

Each layer and direction runs over the whole sequence in one C++ call (``_core._rnn_layer``):
the input projection of all steps is one GEMM, every step one GEMM on the state plus one fused
pass over the gates, and backward runs through time in C++. Padded batches and PackedSequence
inputs take the same path (a padded batch is a packed one whose batch sizes are all equal).
"""
import math
import warnings
import weakref

import numpy as np

from .. import _core
from .._core import Tensor
from .._creation import empty
from .._indexing import cat, stack
from .._math import dropout as _dropout
from .._tensor import tensor
from . import init
from .module import Module
from .parameter import Parameter
from .utils.rnn import PackedSequence, _export_hooks

_MODES = {"RNN_TANH": 0, "RNN_RELU": 1, "LSTM": 2, "GRU": 3}
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _permute_batch(h, permutation, dim=1):
    """h with its batch dim reordered (rows of a PackedSequence's sorted batch), differentiably."""
    if permutation is None or h is None:
        return h
    hook = _export_hooks.get("permute_batch")
    if hook is not None:
        return hook(_permute_rows, h, permutation, dim)
    return _permute_rows(h, permutation, dim)


def _permute_rows(h, permutation, dim):
    idx = permutation.numpy().astype(np.int64)
    moved = h.transpose(0, dim) if dim else h
    out = _core._embedding(moved.reshape(moved.shape[0], -1), tensor(idx), -1, False).reshape(tuple(moved.shape))
    return out.transpose(0, dim) if dim else out


# Per recurrent layer, its inference calls' thread choice (kept out of the module: state_dict,
# copies and pickles do not see it).
_thread_choices = weakref.WeakKeyDictionary()


class RNNBase(Module):
    """The shared machinery of RNN, LSTM and GRU (PyTorch's RNNBase: parameters, checks, layers)."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        num_directions = 2 if bidirectional else 1
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             "element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}")
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"hidden_size must be a positive integer, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input = input_size if layer == 0 else real_hidden * num_directions
                suffix = "_reverse" if direction == 1 else ""
                params = [("weight_ih", (gate_size, layer_input)), ("weight_hh", (gate_size, real_hidden))]
                if bias:
                    params += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size > 0:
                    params.append(("weight_hr", (proj_size, hidden_size)))
                names = []
                for base, shape in params:
                    name = f"{base}_l{layer}{suffix}"
                    setattr(self, name, Parameter(empty(*shape, dtype=dtype)))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def flatten_parameters(self):
        """Kept for code written for PyTorch: the weights are always used in place, nothing to do."""

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def extra_repr(self):
        s = "{input_size}, {hidden_size}"
        if self.proj_size != 0:
            s += ", proj_size={proj_size}"
        if self.num_layers != 1:
            s += ", num_layers={num_layers}"
        if self.bias is not True:
            s += ", bias={bias}"
        if self.batch_first is not False:
            s += ", batch_first={batch_first}"
        if self.dropout != 0:
            s += ", dropout={dropout}"
        if self.bidirectional is not False:
            s += ", bidirectional={bidirectional}"
        return s.format(**self.__dict__)

    @property
    def _name(self):
        return {"RNN_TANH": "rnn", "RNN_RELU": "rnn", "LSTM": "lstm", "GRU": "gru"}[self.mode]

    def _check_state(self, h, expected, what):
        if not isinstance(h, Tensor):
            raise TypeError(f"[{self._name}] {what} must be a Tensor, got {type(h).__name__}")
        if tuple(h.shape) != expected:
            raise ValueError(f"[{self._name}] Expected hidden size {expected} for {what}, got {tuple(h.shape)}")

    def forward(self, input, hx=None):
        if _core.is_grad_enabled():
            return self._forward(input, hx)
        # Inference: each step waits for the threads sharing it, which costs more than it saves
        # where the host put them on cores that share no cache (batch-1 LSTM, 100 steps: 290 us
        # on two threads, 235 us on one; 172 us on two that share one). The layer's calls time
        # themselves and run alone where that is faster; the results are the same bits.
        choice = _thread_choices.get(self)
        if choice is None:
            choice = _thread_choices[self] = _core._ThreadChoice()
        return choice(lambda: self._forward(input, hx))

    def _forward(self, input, hx):
        name = self._name
        lstm = self.mode == "LSTM"
        D = 2 if self.bidirectional else 1
        P = self.proj_size if self.proj_size > 0 else self.hidden_size
        packed = isinstance(input, PackedSequence)
        if packed:
            data, batch_sizes = input.data, [int(b) for b in input.batch_sizes.numpy()]
            sorted_indices, unsorted_indices = input.sorted_indices, input.unsorted_indices
            B, batched = batch_sizes[0], True
            in_shape = tuple(data.shape)
            if data.dim() != 2:
                raise ValueError(f"[{name}] packed input data must be 2-D (rows, features), got shape {in_shape}")
        else:
            if not isinstance(input, Tensor):
                raise TypeError(f"[{name}] input must be a Tensor or PackedSequence, got {type(input).__name__}")
            in_shape = tuple(input.shape)
            if input.dim() not in (2, 3):
                raise ValueError(f"[{name}] expected input to be 2-D (unbatched) or 3-D, got {input.dim()}-D "
                                 f"(input shape {in_shape})")
            batched = input.dim() == 3
            x = input if batched else input.unsqueeze(0 if self.batch_first else 1)
            if self.batch_first:
                x = x.transpose(0, 1)
            T, B = x.shape[0], x.shape[1]
            if T == 0:
                raise ValueError(f"[{name}] the input has no time steps (input shape {in_shape})")
            data = x.reshape(T * B, x.shape[2])
            batch_sizes = [B] * T
            sorted_indices = unsorted_indices = None
        if in_shape[-1] != self.input_size:
            raise ValueError(f"[{name}] input has {in_shape[-1]} features, expected {self.input_size} "
                             f"(input shape {in_shape})")
        if not data.dtype.is_floating_point:
            raise TypeError(f"[{name}] input must be float32 or float64, got {data.dtype}")
        h0 = c0 = None
        if hx is not None:
            if lstm:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError(f"[{name}] hx must be a tuple (h0, c0), got {type(hx).__name__}")
                h0, c0 = hx
            else:
                h0 = hx
            lead = (self.num_layers * D,)
            if not batched:
                self._check_state(h0, lead + (P,), "h0")
                h0 = h0.unsqueeze(1)
                if lstm:
                    self._check_state(c0, lead + (self.hidden_size,), "c0")
                    c0 = c0.unsqueeze(1)
            else:
                self._check_state(h0, lead + (B, P), "h0")
                if lstm:
                    self._check_state(c0, lead + (B, self.hidden_size), "c0")
            h0, c0 = _permute_batch(h0, sorted_indices), _permute_batch(c0, sorted_indices)
        mode = _MODES[self.mode]
        layer_input = data
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(D):
                k = layer * D + direction
                w = [getattr(self, n) for n in self._all_weights[k]]
                w_ih, w_hh = w[0], w[1]
                b_ih, b_hh = (w[2], w[3]) if self.bias else (None, None)
                w_hr = w[-1] if self.proj_size > 0 else None
                res = _core._rnn_layer(mode, layer_input, batch_sizes, direction == 1,
                                       None if h0 is None else h0[k], None if c0 is None else c0[k],
                                       w_ih, w_hh, b_ih, b_hh, w_hr, name)
                outs.append(res[0])
                h_n.append(res[1])
                if lstm:
                    c_n.append(res[2])
            layer_input = outs[0] if D == 1 else cat(outs, 1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = _dropout(layer_input, self.dropout, True)
        h_n = _permute_batch(stack(h_n, 0), unsorted_indices)
        if lstm:
            c_n = _permute_batch(stack(c_n, 0), unsorted_indices)
        if packed:
            output = PackedSequence(layer_input, input.batch_sizes, sorted_indices, unsorted_indices)
        else:
            output = layer_input.reshape(T, B, D * P)
            if self.batch_first:
                output = output.transpose(0, 1)
            if not batched:
                output = output.squeeze(0 if self.batch_first else 1)
                h_n = h_n.squeeze(1)
                if lstm:
                    c_n = c_n.squeeze(1)
        return (output, (h_n, c_n)) if lstm else (output, h_n)


class RNN(RNNBase):
    r"""Elman RNN: :math:`h_t = \tanh(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh})` (or ReLU).

    Args:
        input_size, hidden_size: feature sizes of x and h.
        num_layers: stacked layers. Default: 1.
        nonlinearity: ``'tanh'`` or ``'relu'``. Default: ``'tanh'``.
        bias: use b_ih and b_hh. Default: ``True``.
        batch_first: input and output are (B, T, *) instead of (T, B, *). Default: ``False``.
        dropout: dropout on the outputs of every layer but the last. Default: 0.
        bidirectional: add a reverse-time direction. Default: ``False``.

    ``forward(input, h0=None)`` returns ``(output, h_n)`` as PyTorch does; input may be a
    PackedSequence or an unbatched 2-D (T, input_size) tensor.
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self.nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self.nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, *args, **kwargs)


class LSTM(RNNBase):
    r"""Long short-term memory, PyTorch's gate order (i, f, g, o):
    :math:`c_t = f \odot c_{t-1} + i \odot g`, :math:`h_t = o \odot \tanh(c_t)` (times W_hr with
    ``proj_size > 0``).

    Args: as ``RNN`` (no nonlinearity), plus ``proj_size`` (Default: 0, no projection).
    ``forward(input, (h0, c0)=None)`` returns ``(output, (h_n, c_n))``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    r"""Gated recurrent unit, PyTorch's gate order (r, z, n):
    :math:`n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))`,
    :math:`h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}`.

    Args: as ``RNN`` (no nonlinearity). ``forward(input, h0=None)`` returns ``(output, h_n)``.
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


class RNNCellBase(Module):
    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = Parameter(empty(num_chunks * hidden_size, input_size, dtype=dtype))
        self.weight_hh = Parameter(empty(num_chunks * hidden_size, hidden_size, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(empty(num_chunks * hidden_size, dtype=dtype))
            self.bias_hh = Parameter(empty(num_chunks * hidden_size, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self):
        s = "{input_size}, {hidden_size}"
        if "bias" in self.__dict__ and self.bias is not True:
            s += ", bias={bias}"
        if "nonlinearity" in self.__dict__ and self.nonlinearity != "tanh":
            s += ", nonlinearity={nonlinearity}"
        return s.format(**self.__dict__)

    def _step(self, mode, input, h, c=None):
        """One time step through the layer kernel (a sequence of length 1)."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"[{name}] input must be a Tensor, got {type(input).__name__}")
        if input.dim() not in (1, 2):
            raise ValueError(f"[{name}] Expected input to be 1D or 2D, got {input.dim()}D instead "
                             f"(input shape {tuple(input.shape)})")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"[{name}] input has {input.shape[-1]} features, expected {self.input_size} "
                             f"(input shape {tuple(input.shape)})")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        B = x.shape[0]
        states = []
        for what, s in (("hx", h), ("cx", c)):
            if s is not None:
                want = (B, self.hidden_size) if batched else (self.hidden_size,)
                if not isinstance(s, Tensor) or tuple(s.shape) != want:
                    got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
                    raise ValueError(f"[{name}] {what} has shape {got}, expected {want}")
                s = s if batched else s.unsqueeze(0)
            states.append(s)
        res = _core._rnn_layer(mode, x, [B], False, states[0], states[1], self.weight_ih, self.weight_hh,
                               self.bias_ih, self.bias_hh, None, name)
        out = res[1:] if mode == _MODES["LSTM"] else res[1:2]
        if not batched:
            out = [o.squeeze(0) for o in out]
        return out


class RNNCell(RNNCellBase):
    """One step of ``RNN``: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or ReLU).
    Args: input_size, hidden_size, bias (default True), nonlinearity (default 'tanh')."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, num_chunks=1, dtype=dtype)

    def forward(self, input, hx=None):
        return self._step(_MODES["RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"], input, hx)[0]


class LSTMCell(RNNCellBase):
    """One step of ``LSTM``: ``forward(input, (h, c)=None)`` returns ``(h', c')``.
    Args: input_size, hidden_size, bias (default True)."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, dtype=dtype)

    def forward(self, input, hx=None):
        h, c = (None, None) if hx is None else hx
        return tuple(self._step(_MODES["LSTM"], input, h, c))


class GRUCell(RNNCellBase):
    """One step of ``GRU``: ``forward(input, h=None)`` returns ``h'``.
    Args: input_size, hidden_size, bias (default True)."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, dtype=dtype)

    def forward(self, input, hx=None):
        return self._step(_MODES["GRU"], input, hx)[0]
