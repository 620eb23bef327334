"""SimpleRNN, LSTM and GRU with Keras 3's arguments, defaults, initialisers and weight layouts:
kernel (features, k*units), recurrent_kernel (units, k*units), bias (k*units,) — gate order
LSTM (i, f, c, o), GRU (z, r, h) with a (2, 3*units) bias (input and recurrent rows) when
reset_after=True.

The default configuration (tanh, sigmoid gates, GRU reset_after=True, no recurrent dropout in
training) runs on the fused C++ recurrent kernel of nn.LSTM/GRU/RNN: one call per layer for the
whole sequence. Keras weights are handed to it as views (LSTM's gate order is PyTorch's; GRU's
z, r, h columns are regrouped into PyTorch's r, z, n). A Keras mask (explicit `mask=` or from
Embedding(mask_zero=True) / Masking) is honoured on the same kernel: masked steps leave the state
unchanged, so each sample's unmasked steps are gathered into a packed batch (PackedSequence's
layout), run, and scattered back, with Keras's outputs at masked steps (the previous output, zero
before the first unmasked step, or zero everywhere masked for Bidirectional's sequences). Other
activations, GRU reset_after=False and recurrent_dropout in training run a per-step loop of
differentiable library ops with Keras's cell formulas."""
import numpy as np

from ... import _core, _math
from ..._creation import ones, zeros
from ..._indexing import cat, stack
from ..._tensor import tensor
from .. import _backend, activations, initializers, regularizers
from .base import Layer

_MODES = {"RNN_TANH": 0, "RNN_RELU": 1, "LSTM": 2, "GRU": 3}


class _Plan:
    """Index maps between a (batch, steps) sequence with a mask and the packed, length-sorted
    batch the C++ kernel runs on (processing order reversed for go_backwards)."""

    def __init__(self, mask, batch, steps, go_backwards, zero_output_for_mask):
        order = np.arange(steps)[::-1] if go_backwards else np.arange(steps)
        valid = np.ones((batch, steps), bool) if mask is None else mask[:, order]
        lengths = valid.sum(1)
        by_length = np.argsort(-lengths, kind="stable")
        active = by_length[lengths[by_length] > 0]
        self.tmax = int(lengths.max()) if batch else 0
        first = np.argsort(~valid, axis=1, kind="stable")  # each row's valid steps first, in order
        pos = order[first]
        took = np.arange(self.tmax)[:, None] < lengths[active][None, :]  # (tmax, active): packed rows
        self.rows_in = (active[None, :] * steps + pos[active, :self.tmax].T)[took]
        self.batch_sizes = [int(n) for n in took.sum(1)]
        self.n = int(took.sum())
        rownum = np.zeros(took.shape, np.int64)
        rownum[took] = np.arange(self.n)
        rank = np.zeros(batch, np.int64)
        rank[active] = np.arange(len(active))
        count = np.cumsum(valid, axis=1)
        if self.tmax:
            out_rows = np.where(count > 0, rownum[np.maximum(count - 1, 0), rank[:, None]], self.n)
        else:
            out_rows = np.full((batch, steps), self.n)
        if zero_output_for_mask:
            out_rows = np.where(valid, out_rows, self.n)
        self.out_rows = out_rows  # row of [packed outputs; zeros] for each (sample, processing step)
        self.active = active
        self.final_rows = np.where(lengths > 0, rank, len(active) + np.arange(batch))  # [kernel states; s0]


def _rows(table, rows):
    return table[tensor(np.ascontiguousarray(rows, dtype=np.int64).reshape(-1))]


class _RNN(Layer):
    """The shared machinery of SimpleRNN, LSTM and GRU (Keras's RNN layer over one cell)."""

    _gates = 1
    _n_states = 1

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False, stateful=False, unroll=False,
                 seed=None, zero_output_for_mask=False, **kwargs):
        kind = type(self).__name__
        kwargs.pop("use_cudnn", None)  # "auto" everywhere: the fused kernel is used whenever it applies
        kwargs.pop("implementation", None)
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"[{kind}] units must be a positive integer, got {units!r}")
        for arg, value in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"[{kind}] {arg} must be in [0, 1], got {value}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful, self.unroll = bool(go_backwards), bool(stateful), bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self._states = None

    # --- weights ------------------------------------------------------------------------------
    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"[{self.name}] expected input of shape (batch, timesteps, features) with known "
                             f"features, got {tuple(input_shape)}")
        k = self._gates * self.units
        self.kernel = self.add_weight((input_shape[-1], k), self.kernel_initializer, "kernel",
                                      regularizer=self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight((self.units, k), self.recurrent_initializer, "recurrent_kernel",
                                                regularizer=self.recurrent_regularizer)
        self.bias = self.add_weight(self._bias_shape(), self._bias_init(), "bias",
                                    regularizer=self.bias_regularizer) if self.use_bias else None

    def _fused_weights(self):
        """(w_ih, w_hh, b_ih, b_hh) in the kernel's (PyTorch's) layout, as views of the Keras weights."""
        return self.kernel.transpose(0, 1), self.recurrent_kernel.transpose(0, 1), self.bias, None

    def _fused_mode(self):
        """The C++ kernel's mode for this configuration, or None when it needs the per-step path."""
        return None

    # --- call ---------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if "initial_state" in kwargs and len(args) == 1:  # positional, so the functional graph tracks it
            args = (args[0], kwargs.pop("initial_state"))
        return super().__call__(*args, **kwargs)

    def _check_input(self, x):
        features = self.kernel.shape[0]
        if x.dim() != 3 or x.shape[-1] != features:
            raise ValueError(f"[{self.name}] Input 0 of layer \"{self.name}\" is incompatible with the layer: "
                             f"expected shape (batch, timesteps, {features}), but received input with shape "
                             f"{tuple(x.shape)}")
        if x.shape[1] == 0:
            raise ValueError(f"[{self.name}] the input has no time steps (input shape {tuple(x.shape)})")

    def _initial_states(self, x, initial_state):
        batch = x.shape[0]
        if initial_state is None and self.stateful and self._states is not None:
            if self._states[0].shape[0] != batch:
                raise ValueError(f"[{self.name}] a stateful RNN keeps states for batch size "
                                 f"{self._states[0].shape[0]}, but received input with shape {tuple(x.shape)}; "
                                 "call reset_states() to start anew")
            initial_state = self._states
        if initial_state is None:
            return [None] * self._n_states
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != self._n_states:
            raise ValueError(f"[{self.name}] expects {self._n_states} initial state tensor(s), got {len(states)}")
        out = []
        for s in states:
            s = _backend.float_tensor(s)
            if tuple(s.shape) != (batch, self.units):
                raise ValueError(f"[{self.name}] an initial state has shape {tuple(s.shape)}, expected "
                                 f"{(batch, self.units)} (input shape {tuple(x.shape)})")
            out.append(s)
        return out

    def _mask_array(self, mask, x):
        if mask is None:
            return None
        m = np.asarray(_backend.to_numpy(mask)).astype(bool)
        if m.shape != tuple(x.shape[:2]):
            raise ValueError(f"[{self.name}] the mask has shape {m.shape}, expected (batch, timesteps) = "
                             f"{tuple(x.shape[:2])}")
        return None if m.all() else m

    def call(self, sequences, initial_state=None, mask=None, training=None):
        x = _backend.float_tensor(sequences)
        self._check_input(x)
        states0 = self._initial_states(x, initial_state)
        m = self._mask_array(mask, x)
        mode = self._fused_mode()
        per_step = mode is None or (training and self.recurrent_dropout > 0)
        if per_step:
            outputs, last, states = self._run_steps(x, states0, m, training)
        else:
            if training and self.dropout > 0:  # one mask per sequence, shared by every step and gate
                x = x * _math.dropout(ones(x.shape[0], 1, x.shape[2]), self.dropout, True)
            outputs, last, states = self._run_fused(mode, x, states0, m)
        if self.stateful and not _backend.in_symbolic():
            self._states = [s.detach() for s in states]
        output = outputs if self.return_sequences else last
        if self.return_state:
            return (output, *states)
        return output

    def _run_fused(self, mode, x, states0, mask):
        batch, steps, features = x.shape
        w_ih, w_hh, b_ih, b_hh = self._fused_weights()
        lstm = mode == _MODES["LSTM"]
        c0 = states0[1] if lstm else None
        if mask is None and not self.go_backwards:  # every sample runs every step: time-major, no gather
            data = x.transpose(0, 1).reshape(steps * batch, features)
            res = _core._rnn_layer(mode, data, [batch] * steps, False, states0[0], c0, w_ih, w_hh, b_ih, b_hh,
                                   None, self.name)
            outputs = res[0].reshape(steps, batch, self.units).transpose(0, 1) if self.return_sequences else None
            return outputs, res[1], list(res[1:])
        plan = _Plan(mask, batch, steps, self.go_backwards, self.zero_output_for_mask)
        filled = [s if s is not None else zeros(batch, self.units) for s in states0]
        empty_row = zeros(1, self.units)
        if plan.tmax == 0:  # every step of every sample masked: states unchanged, outputs zero
            y, finals = empty_row, []
        else:
            active = tensor(plan.active.astype(np.int64))
            data = _rows(x.reshape(batch * steps, features), plan.rows_in)
            h0 = states0[0][active] if states0[0] is not None else None
            c0 = c0[active] if c0 is not None else None
            res = _core._rnn_layer(mode, data, plan.batch_sizes, False, h0, c0, w_ih, w_hh, b_ih, b_hh, None,
                                   self.name)
            y, finals = cat([res[0], empty_row], 0), list(res[1:])
        states = [_rows(cat(finals[i:i + 1] + [s0], 0), plan.final_rows) for i, s0 in enumerate(filled)]
        outputs = _rows(y, plan.out_rows).reshape(batch, steps, self.units) if self.return_sequences else None
        last = _rows(y, plan.out_rows[:, -1])
        return outputs, last, states

    def _run_steps(self, x, states0, mask, training):
        """Keras's cell loop, step by step, on differentiable library ops."""
        batch, steps, features = x.shape
        states = [s if s is not None else zeros(batch, self.units) for s in states0]
        per_gate = training and self.recurrent_dropout > 0 and self._gates > 1  # Keras's implementation 1
        n_masks = self._gates if per_gate else 1
        dp = [None] * n_masks
        rdp = [None] * n_masks
        if training and self.dropout > 0:
            dp = [_math.dropout(ones(batch, 1, features), self.dropout, True) for _ in range(n_masks)]
        if training and self.recurrent_dropout > 0:
            rdp = [_math.dropout(ones(batch, self.units), self.recurrent_dropout, True) for _ in range(n_masks)]
        xg = self._project_inputs(x, dp)
        m = tensor(np.ascontiguousarray(mask)) if mask is not None else None
        prev = zeros(batch, self.units)
        outs = []
        for t in (range(steps - 1, -1, -1) if self.go_backwards else range(steps)):
            out, new = self._cell([g[:, t] for g in xg], states, rdp)
            if m is not None:  # a masked step keeps the states and repeats (or zeroes) the output
                keep = m[:, t:t + 1]
                new = [_core.where(keep, n, s) for n, s in zip(new, states)]
                out = _core.where(keep, out, 0.0 if self.zero_output_for_mask else prev)
            states, prev = new, out
            outs.append(out)
        outputs = stack(outs, 1) if self.return_sequences else None
        return outputs, outs[-1], states

    def _input_bias(self):
        return self.bias

    def _project_inputs(self, x, dp):
        """x @ kernel + input bias for all steps, split into the gates' (batch, steps, units) parts;
        with one dropout mask per gate (recurrent dropout in training), each gate sees its own."""
        u, k = self.units, self._gates
        bias = self._input_bias()
        if len(dp) == 1 or all(m is None for m in dp):
            xd = x if dp[0] is None else x * dp[0]
            proj = _core.linear(xd, self.kernel.transpose(0, 1), bias)
            return [proj[..., g * u:(g + 1) * u] for g in range(k)]
        return [_core.linear(x * dp[g], self.kernel[:, g * u:(g + 1) * u].transpose(0, 1),
                             None if bias is None else bias[g * u:(g + 1) * u]) for g in range(k)]

    def _recurrent(self, h, rdp, g):
        """The gate g's part of (h * recurrent dropout mask) @ recurrent_kernel."""
        mask = rdp[g if len(rdp) > 1 else 0]
        hd = h if mask is None else h * mask
        return hd @ self.recurrent_kernel[:, g * self.units:(g + 1) * self.units]

    def reset_states(self, states=None):
        """Forgets (or sets) the states a stateful layer carries from batch to batch."""
        self._states = None if states is None else [_backend.float_tensor(s) for s in states]

    reset_state = reset_states

    def compute_mask(self, inputs, mask=None):
        out = mask if self.return_sequences else None
        return [out] + [None] * self._n_states if self.return_state else out

    def get_config(self):
        return dict(super().get_config(), units=self.units, activation=activations.serialize(self.activation),
                    use_bias=self.use_bias, kernel_initializer=initializers.serialize(self.kernel_initializer),
                    recurrent_initializer=initializers.serialize(self.recurrent_initializer),
                    bias_initializer=initializers.serialize(self.bias_initializer),
                    kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                    recurrent_regularizer=regularizers.serialize(self.recurrent_regularizer),
                    bias_regularizer=regularizers.serialize(self.bias_regularizer), dropout=self.dropout,
                    recurrent_dropout=self.recurrent_dropout, return_sequences=self.return_sequences,
                    return_state=self.return_state, go_backwards=self.go_backwards, stateful=self.stateful,
                    unroll=self.unroll, zero_output_for_mask=self.zero_output_for_mask)


class SimpleRNN(_RNN):
    """Fully connected RNN: h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias).

    Args: units; activation ('tanh'); use_bias (True); kernel_initializer ('glorot_uniform');
    recurrent_initializer ('orthogonal'); bias_initializer ('zeros'); kernel/recurrent/bias
    regularizers (None); dropout, recurrent_dropout (0); return_sequences, return_state,
    go_backwards, stateful (False: True carries the final states into the next call until
    reset_states()); unroll and seed are accepted (the results do not depend on them; draws come
    from nc.manual_seed). call(sequences, initial_state=None, mask=None, training=None)."""

    def _fused_mode(self):
        if self.activation is activations.tanh:
            return _MODES["RNN_TANH"]
        if self.activation is activations.relu:
            return _MODES["RNN_RELU"]
        return None

    def _cell(self, xg, states, rdp):
        h = self.activation(xg[0] + self._recurrent(states[0], rdp, 0))
        return h, [h]


class LSTM(_RNN):
    """Long short-term memory, Keras's gate order (i, f, c, o): c_t = f * c_{t-1} + i * act(z_c),
    h_t = o * act(c_t). Args: as SimpleRNN, plus recurrent_activation ('sigmoid') and
    unit_forget_bias (True: the forget gate's bias starts at 1). States: [h, c]."""

    _gates = 4
    _n_states = 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, u = self.bias_initializer, self.units
        return lambda shape, dtype=None: cat([base((u,)), ones(u), base((2 * u,))], 0)

    def _fused_mode(self):
        if self.activation is activations.tanh and self.recurrent_activation is activations.sigmoid:
            return _MODES["LSTM"]
        return None

    def _cell(self, xg, states, rdp):
        h, c = states
        z = [xg[g] + self._recurrent(h, rdp, g) for g in range(4)]
        ra = self.recurrent_activation
        c = ra(z[1]) * c + ra(z[0]) * self.activation(z[2])
        h = ra(z[3]) * self.activation(c)
        return h, [h, c]

    def get_config(self):
        return dict(super().get_config(), recurrent_activation=activations.serialize(self.recurrent_activation),
                    unit_forget_bias=self.unit_forget_bias)


def _zrh_to_rzn(w, u):
    """Keras's GRU gate blocks (z, r, h) on the last axis regrouped as PyTorch's (r, z, n)."""
    return cat([w[..., u:2 * u], w[..., :u], w[..., 2 * u:]], -1)


class GRU(_RNN):
    """Gated recurrent unit, Keras's gate order (z, r, h): h_t = z * h_{t-1} + (1 - z) * hh with
    hh = act(x W_h + b_h + r * (h_{t-1} U_h + b'_h)) when reset_after=True (the default, a (2, 3u)
    bias of input and recurrent rows), act(x W_h + (r * h_{t-1}) U_h + b_h) otherwise. Args: as
    LSTM without unit_forget_bias, plus reset_after (True). States: [h]."""

    _gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True, reset_after=True,
                 **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _fused_mode(self):
        if self.reset_after and self.activation is activations.tanh and \
                self.recurrent_activation is activations.sigmoid:
            return _MODES["GRU"]
        return None

    def _fused_weights(self):
        u = self.units
        w_ih = _zrh_to_rzn(self.kernel, u).transpose(0, 1)
        w_hh = _zrh_to_rzn(self.recurrent_kernel, u).transpose(0, 1)
        if self.bias is None:
            return w_ih, w_hh, None, None
        return w_ih, w_hh, _zrh_to_rzn(self.bias[0], u), _zrh_to_rzn(self.bias[1], u)

    def _input_bias(self):
        if self.bias is None:
            return None
        return self.bias[0] if self.reset_after else self.bias

    def _cell(self, xg, states, rdp):
        h = states[0]
        u, ra = self.units, self.recurrent_activation
        rb = self.bias[1] if self.reset_after and self.bias is not None else None
        rz, rr = self._recurrent(h, rdp, 0), self._recurrent(h, rdp, 1)
        if rb is not None:
            rz, rr = rz + rb[:u], rr + rb[u:2 * u]
        z, r = ra(xg[0] + rz), ra(xg[1] + rr)
        if self.reset_after:
            rh = self._recurrent(h, rdp, 2)
            if rb is not None:
                rh = rh + rb[2 * u:]
            hh = self.activation(xg[2] + r * rh)
        else:
            mask = rdp[2 if len(rdp) > 1 else 0]
            hd = h if mask is None else h * mask
            hh = self.activation(xg[2] + (r * hd) @ self.recurrent_kernel[:, 2 * u:])
        h = z * h + (1.0 - z) * hh
        return h, [h]

    def get_config(self):
        return dict(super().get_config(), recurrent_activation=activations.serialize(self.recurrent_activation),
                    reset_after=self.reset_after)
