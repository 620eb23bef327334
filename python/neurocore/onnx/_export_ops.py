"""Op records (what the tracer of ``neurocore.export`` appends: op name, attributes, input and output
values) as ONNX nodes. One function per recorded op: ``emit(b, ins, attrs, shapes)`` adds nodes to
the builder ``b`` and returns the name of the output; ``ins`` are the ONNX names of the inputs and
``shapes`` their shapes at trace time."""
import math

import numpy as np

from ._common import OnnxError, require_onnx


class Builder:
    """Collects nodes and initializers with unique names."""

    def __init__(self, opset):
        self.onnx = require_onnx("onnx.export")
        self.opset = opset
        self.nodes, self.initializers = [], []
        self.names = set()
        self.scope = ""

    def unique(self, hint):
        name, n = hint, 1
        while name in self.names:
            name, n = f"{hint}_{n}", n + 1
        self.names.add(name)
        return name

    def const(self, value, hint="const", dtype=np.float32):
        name = self.unique(f"{self.scope}/{hint}")
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def weight(self, array, name):
        self.names.add(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    def node(self, op, inputs, n_outputs=1, **attrs):
        base = self.unique(f"{self.scope}/{op}")
        outputs = [self.unique(f"{base}_output_{i}") for i in range(n_outputs)]
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), outputs, name=base, **attrs))
        return outputs[0] if n_outputs == 1 else outputs


def _binary(op_type):
    def emit(b, ins, attrs, shapes):
        if "scalar" in attrs:
            c = b.const(attrs["scalar"], "scalar")
            return b.node(op_type, [c, ins[0]] if attrs.get("reverse") else [ins[0], c])
        return b.node(op_type, ins[:2])
    return emit


def _unary(op_type):
    return lambda b, ins, attrs, shapes: b.node(op_type, ins[:1])


def _silu(b, ins, attrs, shapes):
    return b.node("Mul", [ins[0], b.node("Sigmoid", ins[:1])])


def _mish(b, ins, attrs, shapes):
    return b.node("Mul", [ins[0], b.node("Tanh", [b.node("Softplus", ins[:1])])])


def _elu(b, ins, attrs, shapes):
    alpha, scale = float(attrs.get("alpha", 1.0)), float(attrs.get("scale", 1.0))
    if scale == 1.0:
        return b.node("Elu", ins[:1], alpha=alpha)
    return b.node("Selu", ins[:1], alpha=alpha, gamma=scale)


def _gelu(b, ins, attrs, shapes):
    approximate = attrs.get("approximate", "none")
    if b.opset >= 20:
        return b.node("Gelu", ins[:1], approximate=approximate)
    x = ins[0]
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = b.node("Mul", [b.node("Mul", [x, x]), x])
        inner = b.node("Mul", [b.node("Add", [x, b.node("Mul", [cube, b.const(0.044715)])]),
                               b.const(math.sqrt(2.0 / math.pi))])
        t = b.node("Tanh", [inner])
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        t = b.node("Erf", [b.node("Div", [x, b.const(math.sqrt(2.0))])])
    return b.node("Mul", [b.node("Mul", [x, b.const(0.5)]), b.node("Add", [t, b.const(1.0)])])


def _leaky_relu(b, ins, attrs, shapes):
    return b.node("LeakyRelu", ins[:1], alpha=float(attrs.get("negative_slope", 0.01)))


def _softplus(b, ins, attrs, shapes):
    beta = float(attrs.get("beta", 1.0))
    if beta == 1.0:
        return b.node("Softplus", ins[:1])
    scaled = b.node("Mul", [ins[0], b.const(beta)])
    return b.node("Div", [b.node("Softplus", [scaled]), b.const(beta)])


def _hardtanh(b, ins, attrs, shapes):
    return b.node("Clip", [ins[0], b.const(attrs.get("min_val", -1.0)), b.const(attrs.get("max_val", 1.0))])


def _act(b, y, attrs):
    act = attrs.get("act", "none")
    if act == "none":
        return y
    if act == "relu":
        return b.node("Relu", [y])
    raise OnnxError(f"[onnx.export] fused activation {act!r} has no ONNX mapping")


def _linear(b, ins, attrs, shapes):
    if len(shapes[0]) == 2:
        y = b.node("Gemm", ins, transB=1)
    else:  # (..., in) @ W.T (+ b), as PyTorch exports Linear on N-D input
        y = b.node("MatMul", [ins[0], b.node("Transpose", [ins[1]], perm=[1, 0])])
        if len(ins) > 2:
            y = b.node("Add", [y, ins[2]])
    return _act(b, y, attrs)


def _matmul(b, ins, attrs, shapes):
    return b.node("MatMul", ins[:2])


def _conv2d(b, ins, attrs, shapes):
    top, bottom, left, right = attrs["padding"]
    kernel = list(shapes[1][2:])
    y = b.node("Conv", ins, kernel_shape=kernel, strides=list(attrs["stride"]), dilations=list(attrs["dilation"]),
               group=int(attrs["groups"]), pads=[top, left, bottom, right])
    return _act(b, y, attrs)


def _conv_transpose2d(b, ins, attrs, shapes):
    ph, pw = attrs["padding"]
    return b.node("ConvTranspose", ins, kernel_shape=list(shapes[1][2:]), strides=list(attrs["stride"]),
                  dilations=list(attrs["dilation"]), group=int(attrs["groups"]), pads=[ph, pw, ph, pw],
                  output_padding=list(attrs["output_padding"]))


def _pool_pads(attrs, shapes, kind):
    """(pads, ceil_mode) for ONNX. PyTorch's ceil mode drops a last window that would start in the end
    padding; ONNX's keeps it. Where that happens, the windows are counted with floor mode and a larger
    end pad instead (ignored by max pooling and by averages that exclude padding)."""
    ph, pw = attrs["padding"]
    pads = [ph, pw, ph, pw]
    if not attrs["ceil_mode"]:
        return pads, 0
    ends, dropped = [], False
    for size, k, s, p, d in zip(shapes[0][-2:], attrs["kernel"], attrs["stride"], (ph, pw),
                                attrs.get("dilation", [1, 1])):
        span = d * (k - 1) + 1
        out = -(-(size + 2 * p - span) // s) + 1
        if (out - 1) * s >= size + p:
            out, dropped = out - 1, True
        ends.append(max(p, (out - 1) * s + span - p - size))
    if not dropped:
        return pads, 1
    if kind == "avg" and attrs["count_include_pad"]:
        raise OnnxError("[onnx.export] avg_pool2d with ceil_mode and count_include_pad, where PyTorch's rule drops "
                        "the last window, has no ONNX equivalent")
    if any(e >= k for e, k in zip(ends, attrs["kernel"])):
        raise OnnxError(f"[onnx.export] {kind}_pool2d with ceil_mode: the end padding {ends} that reproduces "
                        f"PyTorch's output size is not smaller than the kernel {list(attrs['kernel'])}")
    return [ph, pw] + ends, 0


def _max_pool2d(b, ins, attrs, shapes):
    pads, ceil = _pool_pads(attrs, shapes, "max")
    return b.node("MaxPool", ins[:1], kernel_shape=list(attrs["kernel"]), strides=list(attrs["stride"]),
                  pads=pads, dilations=list(attrs["dilation"]), ceil_mode=ceil)


def _avg_pool2d(b, ins, attrs, shapes):
    if attrs.get("divisor_override"):
        raise OnnxError("[onnx.export] avg_pool2d with divisor_override has no ONNX equivalent")
    pads, ceil = _pool_pads(attrs, shapes, "avg")
    return b.node("AveragePool", ins[:1], kernel_shape=list(attrs["kernel"]), strides=list(attrs["stride"]),
                  pads=pads, ceil_mode=ceil, count_include_pad=int(attrs["count_include_pad"]))


def _adaptive_avg_pool2d(b, ins, attrs, shapes):
    in_h, in_w = shapes[0][-2:]
    out_h, out_w = attrs["output_size"]
    if (out_h, out_w) == (1, 1):
        return b.node("GlobalAveragePool", ins[:1])
    if in_h % out_h or in_w % out_w:
        raise OnnxError(f"[onnx.export] adaptive_avg_pool2d from {in_h}x{in_w} to {out_h}x{out_w}: ONNX has no "
                        "adaptive pooling, and the input size is not a multiple of the output size")
    k = [in_h // out_h, in_w // out_w]
    return b.node("AveragePool", ins[:1], kernel_shape=k, strides=k)


def _batch_norm(b, ins, attrs, shapes):
    x, mean, var = ins[:3]
    rest = ins[3:]
    c = shapes[0][1]
    scale = rest.pop(0) if attrs.get("has_weight") else b.const(np.ones(c), "bn_scale")
    bias = rest.pop(0) if attrs.get("has_bias") else b.const(np.zeros(c), "bn_bias")
    return b.node("BatchNormalization", [x, scale, bias, mean, var], epsilon=float(attrs["eps"]))


def _layer_norm(b, ins, attrs, shapes):
    shape = list(attrs["normalized_shape"])
    rest = list(ins[1:])
    scale = rest.pop(0) if attrs.get("has_weight") else b.const(np.ones(shape), "ln_scale")
    bias = rest.pop(0) if attrs.get("has_bias") else b.const(np.zeros(shape), "ln_bias")
    return b.node("LayerNormalization", [ins[0], scale, bias], axis=-len(shape), epsilon=float(attrs["eps"]))


def _softmax(op_type):
    return lambda b, ins, attrs, shapes: b.node(op_type, ins[:1], axis=int(attrs["dim"]))


def _reshape(b, ins, attrs, shapes):
    return b.node("Reshape", [ins[0], b.const(attrs["shape"], "shape", np.int64)])


def _permute(b, ins, attrs, shapes):
    return b.node("Transpose", ins[:1], perm=list(attrs["dims"]))


def _cat(b, ins, attrs, shapes):
    return b.node("Concat", ins, axis=int(attrs["dim"]))


def _reduce(op_type):
    def emit(b, ins, attrs, shapes):
        axes, keep = list(attrs["dims"]), int(attrs["keepdim"])
        if op_type == "ReduceMean" and b.opset < 18:  # axes became an input in opset 18
            return b.node(op_type, ins[:1], axes=axes, keepdims=keep)
        return b.node(op_type, [ins[0], b.const(axes, "axes", np.int64)], keepdims=keep)
    return emit


# ---- sequence models ----

# PyTorch's gate blocks in ONNX's order: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h.
_GATE_ORDER = {2: [0, 3, 1, 2], 3: [1, 0, 2]}


def _gates_reordered(b, w, mode, hidden):
    """Rows of a PyTorch gate-stacked weight or bias in ONNX's gate order, with a leading num_directions
    axis of 1 (a Gather on the initializer, so the file keeps the state_dict's names and layouts)."""
    order = _GATE_ORDER.get(mode, [0])
    rows = np.concatenate([np.arange(g * hidden, (g + 1) * hidden) for g in order]).astype(np.int64)
    return b.node("Gather", [w, b.const(rows, "gate_order", np.int64)], axis=0)


def _unsqueeze(b, x, axes):
    return b.node("Unsqueeze", [x, b.const(list(axes), "axes", np.int64)])


def _squeeze(b, x, axes):
    return b.node("Squeeze", [x, b.const(list(axes), "axes", np.int64)])


def _rnn(b, ins, attrs, shapes):
    """One layer and direction as ONNX's fused LSTM / GRU / RNN on the (steps, batch, features) view
    of the recorded (steps * batch, features) input."""
    mode, steps = int(attrs["mode"]), int(attrs["steps"])
    if attrs["has_proj"]:
        raise OnnxError("[onnx.export] an LSTM with proj_size > 0 has no ONNX equivalent (ONNX's LSTM has no "
                        "projection); export it with proj_size=0")
    rest = list(ins[1:])
    h0 = rest.pop(0) if attrs["has_h0"] else None
    c0 = rest.pop(0) if attrs["has_c0"] else None
    w_ih, w_hh = rest.pop(0), rest.pop(0)
    hidden = shapes[1 + attrs["has_h0"] + attrs["has_c0"]][0] // {2: 4, 3: 3}.get(mode, 1)
    features = shapes[0][1]
    x = b.node("Reshape", [ins[0], b.const([steps, -1, features], "shape", np.int64)])
    W = _unsqueeze(b, _gates_reordered(b, w_ih, mode, hidden), [0])
    R = _unsqueeze(b, _gates_reordered(b, w_hh, mode, hidden), [0])
    B = ""
    if attrs["has_bias"]:
        b_ih, b_hh = rest.pop(0), rest.pop(0)
        B = _unsqueeze(b, b.node("Concat", [_gates_reordered(b, b_ih, mode, hidden),
                                            _gates_reordered(b, b_hh, mode, hidden)], axis=0), [0])
    inputs = [x, W, R, B, "", _unsqueeze(b, h0, [0]) if h0 else ""]
    kw = {"hidden_size": hidden, "direction": "reverse" if attrs["reverse"] else "forward"}
    if mode == 2:
        op, n_out = "LSTM", 3
        inputs.append(_unsqueeze(b, c0, [0]) if c0 else "")
    elif mode == 3:
        op, n_out = "GRU", 2
        kw["linear_before_reset"] = 1
    else:
        op, n_out = "RNN", 2
        kw["activations"] = ["Relu" if mode == 1 else "Tanh"]
    while inputs and inputs[-1] == "":
        inputs.pop()
    outs = b.node(op, inputs, n_outputs=n_out, **kw)
    y = b.node("Reshape", [outs[0], b.const([-1, hidden], "shape", np.int64)])  # (T, 1, B, H) -> (T * B, H)
    return [y] + [_squeeze(b, o, [0]) for o in outs[1:]]


def _attention(b, ins, attrs, shapes):
    """softmax(q k^T * scale + mask) v: the opset-23 Attention op when the opset allows, else
    MatMul / Softmax (grouped-query heads by broadcasting a (..., Hk, 1, S, E) key)."""
    q, k, v = ins[:3]
    qs, ks = shapes[0], shapes[1]
    nd, L, S, E = len(qs), qs[-2], ks[-2], qs[-1]
    scale = attrs["scale"] or 1.0 / math.sqrt(E)
    mask = ins[3] if attrs["has_mask"] else None
    if mask is not None and attrs.get("mask_bool") and not (b.opset >= 23 and nd == 4):
        # bool (True: takes part) as the additive mask 0 / -inf that the MatMul form adds
        mask = b.node("Where", [mask, b.const(np.float32(0), "zero"), b.const(np.float32(-np.inf), "neg_inf")])
    if b.opset >= 23 and nd == 4:
        mr = len(shapes[3]) if mask is not None else 0
        if mask is not None and (mr < 2 or shapes[3][-2] != L):  # ONNX Runtime's Attention doesn't broadcast it over L
            mask = b.node("Expand", [mask, b.const([1] * max(mr - 2, 0) + [L, S], "mask_shape", np.int64)])
        inputs = [q, k, v] + ([mask] if mask else [])
        return b.node("Attention", inputs, is_causal=int(attrs["is_causal"]), scale=float(scale))
    group = qs[-3] // ks[-3] if attrs["enable_gqa"] and nd >= 3 else 1
    if group > 1:
        lead = [0] * (nd - 3)
        q = b.node("Reshape", [q, b.const(lead + [ks[-3], group, L, E], "shape", np.int64)])
        k = _unsqueeze(b, k, [nd - 2])
        v = _unsqueeze(b, v, [nd - 2])
    perm = list(range(nd + (group > 1)))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    scores = b.node("MatMul", [b.node("Mul", [q, b.const(scale, "scale")]), b.node("Transpose", [k], perm=perm)])
    if group > 1 and mask is not None and len(shapes[3]) >= 3:  # the mask's heads dim split as (Hk, group)
        mr = len(shapes[3])
        if shapes[3][-3] == 1:
            mask = _unsqueeze(b, mask, [mr - 3])
        else:
            mask = b.node("Reshape", [mask, b.const([0] * (mr - 3) + [ks[-3], group, L, S], "shape", np.int64)])
    if attrs["is_causal"]:
        causal = np.triu(np.full((L, S), -np.inf, dtype=np.float32), 1)
        scores = b.node("Add", [scores, b.const(causal, "causal_mask")])
    if mask is not None:
        scores = b.node("Add", [scores, mask])
    out = b.node("MatMul", [b.node("Softmax", [scores], axis=-1), v])
    if group > 1:
        out = b.node("Reshape", [out, b.const([0] * (nd - 3) + [qs[-3], L, shapes[2][-1]], "shape", np.int64)])
    return out


def _where(b, ins, attrs, shapes):
    return b.node("Where", list(ins[:3]))


def _packed(b, ins, attrs, shapes):
    raise OnnxError("[onnx.export] packed sequences (pack_padded_sequence with the lengths as an input) have no ONNX "
                    "export here; export the padded batch instead, or use neurocore.export, whose runtime runs them")


def _embedding(b, ins, attrs, shapes):
    return b.node("Gather", [ins[0], ins[1]], axis=0)


def _rms_norm(b, ins, attrs, shapes):
    n = len(attrs["normalized_shape"])
    axes = list(range(-n, 0))
    if b.opset >= 23:
        scale = ins[1] if attrs["has_weight"] else b.const(np.ones(attrs["normalized_shape"]), "rms_scale")
        return b.node("RMSNormalization", [ins[0], scale], axis=-n, epsilon=float(attrs["eps"]))
    x = ins[0]
    ms = b.node("ReduceMean", [b.node("Mul", [x, x]), b.const(axes, "axes", np.int64)], keepdims=1)
    y = b.node("Div", [x, b.node("Sqrt", [b.node("Add", [ms, b.const(attrs["eps"], "eps")])])])
    return b.node("Mul", [y, ins[1]]) if attrs["has_weight"] else y


def _target_shape(b, attrs):
    """The shape attribute as an int64 tensor; dims that follow a dynamic axis are read from that
    graph input's shape."""
    shape, dynamic = list(attrs["shape"]), attrs.get("dynamic_dims", {})
    if dynamic:
        parts = []
        for k, d in enumerate(shape):
            if k in dynamic:
                name, axis = dynamic[k]
                parts.append(b.node("Gather", [b.node("Shape", [name]), b.const([axis], "axis", np.int64)], axis=0))
            else:
                parts.append(b.const([d], "dim", np.int64))
        return b.node("Concat", parts, axis=0)
    return b.const(shape, "shape", np.int64)


def _expand(b, ins, attrs, shapes):
    return b.node("Expand", [ins[0], _target_shape(b, attrs)])


def _full(b, ins, attrs, shapes):
    target = _target_shape(b, attrs)
    value = b.onnx.numpy_helper.from_array(np.array([attrs["value"]], dtype=np.float32), "value")
    return b.node("ConstantOfShape", [target], value=value)


def _slice(b, ins, attrs, shapes):
    starts, ends, axes, steps, dropped = [], [], [], [], []
    for d, (start, step, length, keep) in enumerate(attrs["dims"]):
        if length == -1:
            continue
        starts.append(start)
        ends.append(start + (length - 1) * step + 1 if length > 0 else start)
        axes.append(d)
        steps.append(step)
        if not keep:
            dropped.append(d)
    y = ins[0]
    if axes:
        y = b.node("Slice", [y, b.const(starts, "starts", np.int64), b.const(ends, "ends", np.int64),
                             b.const(axes, "axes", np.int64), b.const(steps, "steps", np.int64)])
    if dropped:
        y = _squeeze(b, y, dropped)
    if attrs["new_axes"]:
        y = _unsqueeze(b, y, attrs["new_axes"])
    return y if y is not ins[0] else b.node("Identity", [y])


EMITTERS = {
    "add": _binary("Add"), "sub": _binary("Sub"), "mul": _binary("Mul"), "div": _binary("Div"),
    "relu": _unary("Relu"), "sigmoid": _unary("Sigmoid"), "tanh": _unary("Tanh"), "silu": _silu, "mish": _mish,
    "elu": _elu, "gelu": _gelu, "leaky_relu": _leaky_relu, "softplus": _softplus, "hardtanh": _hardtanh,
    "linear": _linear, "matmul": _matmul, "conv2d": _conv2d, "conv_transpose2d": _conv_transpose2d,
    "max_pool2d": _max_pool2d, "avg_pool2d": _avg_pool2d, "adaptive_avg_pool2d": _adaptive_avg_pool2d,
    "batch_norm": _batch_norm, "layer_norm": _layer_norm, "softmax": _softmax("Softmax"),
    "log_softmax": _softmax("LogSoftmax"), "reshape": _reshape, "permute": _permute, "cat": _cat,
    "mean": _reduce("ReduceMean"), "sum": _reduce("ReduceSum"),
    "rnn": _rnn, "attention": _attention, "embedding": _embedding, "rms_norm": _rms_norm, "slice": _slice, "full": _full, "expand": _expand,
    "where": _where, "pack": _packed, "unpack": _packed,
}
