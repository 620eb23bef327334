"""ONNX's fused recurrent operators (RNN, GRU, LSTM) as neurocore ops.

ONNX packs each direction's weights as W (D, gates*H, I), R (D, gates*H, H), B (D, 2*gates*H) with
its own gate order: LSTM i, o, f, c and GRU z, r, h, where PyTorch's layers use i, f, g, o and
r, z, n. The gates are reordered with differentiable ops, so gradients reach the ONNX-layout
Parameters. Where the node computes what PyTorch's layers compute (default activations, no clip,
GRU with ``linear_before_reset=1``), each direction is one call of the fused layer kernel
(``_core._rnn_layer``, as nn.LSTM runs). GRU's ``linear_before_reset=0``, ONNX's default, applies
the reset gate before the recurrent projection: there the input projection of all steps is one
matmul and the steps run one after the other with neurocore ops (autograd records them).
"""
import numpy as np

from .. import _core
from .. import _functions as F_
from ._import_ops import shape_of, to_tensor

# ONNX gate blocks -> PyTorch's order
_ORDER = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2]}
_DEFAULT_ACTIVATIONS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}


def _reorder(w, kind, hidden):
    """Rows of gate blocks (gates*H, ...) from ONNX's gate order to PyTorch's."""
    order = _ORDER.get(kind)
    if order is None:
        return w
    blocks = w.reshape((len(order), hidden) + tuple(w.shape[1:]))
    picked = blocks.index_select(0, to_tensor(np.array(order, dtype=np.int64)))
    return picked.reshape(tuple(w.shape))


def _activations(ctx, kind, attrs, directions):
    names = attrs.get("activations")
    names = [a.decode() if isinstance(a, bytes) else a for a in names] if names else None
    default = _DEFAULT_ACTIVATIONS[kind]
    if names is None:
        return "RNN_TANH" if kind == "RNN" else kind
    per_direction = [names[i * len(default):(i + 1) * len(default)] for i in range(directions)]
    if kind == "RNN" and all(p == ["Relu"] for p in per_direction):
        return "RNN_RELU"
    if any(p != default for p in per_direction):
        raise ctx.error(f"activations {names} are not supported (only {default} per direction"
                        f"{' or Relu' if kind == 'RNN' else ''})")
    return "RNN_TANH" if kind == "RNN" else kind


def _recurrent(kind):
    def op(ctx, inputs, attrs, n_outputs):
        inputs = list(inputs) + [None] * (8 - len(inputs))
        x, w, r, b, seq_lens, h0 = (to_tensor(v, inputs[0]) if v is not None else None for v in inputs[:6])
        c0 = to_tensor(inputs[6], x) if kind == "LSTM" and inputs[6] is not None else None
        if kind == "LSTM" and inputs[7] is not None:
            raise ctx.error("peephole weights (input P) are not supported")
        for unsupported in ("clip", "input_forget"):
            if attrs.get(unsupported):
                raise ctx.error(f"attribute {unsupported} is not supported")
        direction = attrs.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        if direction not in ("forward", "reverse", "bidirectional"):
            raise ctx.error(f"unknown direction {direction!r}")
        D = 2 if direction == "bidirectional" else 1
        mode = _activations(ctx, kind, attrs, D)
        gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[kind]
        H = attrs.get("hidden_size", w.shape[1] // gates)
        layout = attrs.get("layout", 0)
        if x.dim() != 3 or w.dim() != 3 or tuple(w.shape[:2]) != (D, gates * H) or tuple(r.shape) != (D, gates * H, H):
            raise ctx.error(f"expects X (T, B, I), W ({D}, {gates * H}, I), R ({D}, {gates * H}, {H}); got "
                            f"{shape_of(x)}, {shape_of(w)}, {shape_of(r)}")
        if layout:
            x = x.transpose(0, 1)
            h0 = None if h0 is None else h0.transpose(0, 1)
            c0 = None if c0 is None else c0.transpose(0, 1)
        T, B, I = x.shape
        if I != w.shape[2]:
            raise ctx.error(f"input has {I} features, W expects {w.shape[2]} (input shape {shape_of(x)})")
        if seq_lens is not None:
            lens = seq_lens.numpy() if hasattr(seq_lens, "numpy") else np.asarray(seq_lens)
            if np.any(lens != T):
                raise ctx.error(f"sequence_lens {lens.tolist()} differ from the sequence length {T}: "
                                "variable-length batches are not supported")
        linear_before_reset = bool(attrs.get("linear_before_reset", 0))
        ys, hs, cs = [], [], []
        for d in range(D):
            w_ih, w_hh = _reorder(w[d], kind, H), _reorder(r[d], kind, H)
            b_ih = b_hh = None
            if b is not None:
                b_ih, b_hh = _reorder(b[d][:gates * H], kind, H), _reorder(b[d][gates * H:], kind, H)
            y, h_n, c_n = _direction(mode, x, w_ih, w_hh, b_ih, b_hh, None if h0 is None else h0[d],
                                     None if c0 is None else c0[d], direction == "reverse" or d == 1, H,
                                     linear_before_reset)
            ys.append(y)
            hs.append(h_n)
            if kind == "LSTM":
                cs.append(c_n)
        y = F_.stack(ys, 1)                      # (T, D, B, H)
        h_n = F_.stack(hs, 0)                    # (D, B, H)
        c_n = F_.stack(cs, 0) if cs else None
        if layout:
            y = y.permute(2, 0, 1, 3)            # (B, T, D, H)
            h_n = h_n.transpose(0, 1)
            c_n = None if c_n is None else c_n.transpose(0, 1)
        return (y, h_n, c_n)[:n_outputs]
    return op


_FUSED_MODES = {"RNN_TANH": 0, "RNN_RELU": 1, "LSTM": 2, "GRU": 3}


def _direction(mode, x, w_ih, w_hh, b_ih, b_hh, h, c, reverse, H, linear_before_reset):
    """One direction over the sequence x (T, B, I), gates in PyTorch's order: (outputs (T, B, H), h_T, c_T)."""
    T, B, _ = x.shape
    if mode != "GRU" or linear_before_reset:
        # PyTorch's cell semantics: the fused layer kernel, one C++ call for the whole sequence
        # (forward and backward through time in C++).
        res = _core._rnn_layer(_FUSED_MODES[mode], x.reshape(T * B, x.shape[2]), [B] * T, bool(reverse), h, c,
                               w_ih, w_hh, b_ih, b_hh, None, mode.split("_")[0].lower())
        return res[0].reshape(T, B, H), res[1], res[2] if mode == "LSTM" else None
    gi = x.matmul(w_ih.t())
    if b_ih is not None:
        gi = gi + b_ih
    if h is None:
        h = _core._full((B, H), 0.0, x.dtype)
    if mode == "LSTM" and c is None:
        c = _core._full((B, H), 0.0, x.dtype)
    if mode == "GRU" and not linear_before_reset:  # the candidate's recurrent matmul comes after the reset gate
        w_rz, w_n = w_hh[:2 * H], w_hh[2 * H:]
        b_rz, b_n = (None, None) if b_hh is None else (b_hh[:2 * H], b_hh[2 * H:])
    outputs = [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        g = gi[t]
        if mode == "GRU" and not linear_before_reset:
            gh = h.matmul(w_rz.t()) if b_rz is None else h.matmul(w_rz.t()) + b_rz
            r, z = (g[:, :H] + gh[:, :H]).sigmoid(), (g[:, H:2 * H] + gh[:, H:]).sigmoid()
            hn = (r * h).matmul(w_n.t())
            n = (g[:, 2 * H:] + (hn if b_n is None else hn + b_n)).tanh()
            h = n + z * (h - n)
        else:
            gh = h.matmul(w_hh.t()) if b_hh is None else h.matmul(w_hh.t()) + b_hh
            if mode == "LSTM":
                s = g + gh
                i, f = s[:, :H].sigmoid(), s[:, H:2 * H].sigmoid()
                cand, o = s[:, 2 * H:3 * H].tanh(), s[:, 3 * H:].sigmoid()
                c = f * c + i * cand
                h = o * c.tanh()
            elif mode == "GRU":
                r, z = (g[:, :H] + gh[:, :H]).sigmoid(), (g[:, H:2 * H] + gh[:, H:2 * H]).sigmoid()
                n = (g[:, 2 * H:] + r * gh[:, 2 * H:]).tanh()
                h = n + z * (h - n)
            else:
                h = (g + gh).tanh() if mode == "RNN_TANH" else (g + gh).relu()
        outputs[t] = h
    return F_.stack(outputs, 0), h, c


RECURRENT_OPS = {"RNN": _recurrent("RNN"), "GRU": _recurrent("GRU"), "LSTM": _recurrent("LSTM")}
