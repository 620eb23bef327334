"""What each traced core function or Tensor method records: the graph's op set.

A handler receives the call's arguments and its result (already computed by the real op) and
appends one node with the op's explicit attributes. Ops the runtime runs:

  linear, matmul, conv2d, conv_transpose2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d,
  batch_norm, layer_norm, softmax, log_softmax, add, sub, mul, div (tensor or scalar operand),
  relu, sigmoid, tanh, gelu, silu, mish, elu, leaky_relu, softplus, hardtanh, reshape, permute,
  cat, mean, sum, and for sequence models rnn (one layer and direction of RNN/LSTM/GRU or a cell:
  outputs y, h_n and for LSTM c_n; with ``packed``, over pack_padded_sequence's data, see _packed), attention (scaled_dot_product_attention), embedding (indices
  as a float input), rms_norm, slice (basic indexing), full (zeros/ones/full made in forward, recorded
  when an op uses them; the shape may follow the batch size), expand (broadcast copy), where (a bool
  condition: a bool model input, passed to the runtime as 0/1 floats; masked_fill records it).

contiguous, clone and eval-mode dropout record nothing: their result is the same value.
"""
from .. import _core
from .._core import Tensor


def _arg(args, kwargs, i, name, default=None):
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _norm_dim(d, ndim):
    return d + ndim if d < 0 else d


def _binary(op, reverse=False, in_place=False):
    def handler(tr, name, args, kwargs, result):
        a, b = args[0], _arg(args, kwargs, 1, "other")
        if isinstance(b, Tensor):
            inputs = [b, a] if reverse else [a, b]
            attrs = {}
        else:
            if isinstance(b, complex) or not isinstance(b, (int, float)):
                tr.fail(f"op '{name}' has an operand of type {type(b).__name__}; export supports tensors and numbers")
            inputs, attrs = [a], {"scalar": float(b), "reverse": bool(reverse)}
        if in_place:
            tr.record_in_place(op, inputs, a, result, attrs)
        else:
            tr.record(op, inputs, result, attrs)
    return handler


def _unary(op, params=()):
    """params: (argument name, default) pairs after the input, stored as attributes."""
    def handler(tr, name, args, kwargs, result):
        attrs = {p: _arg(args, kwargs, i + 1, p, d) for i, (p, d) in enumerate(params)}
        tr.record(op, [args[0]], result, attrs)
    return handler


def _unary_in_place(op):
    def handler(tr, name, args, kwargs, result):
        tr.record_in_place(op, [args[0]], args[0], result, {})
    return handler


def _alias(tr, name, args, kwargs, result):
    tr.alias(args[0], result, name)


def _cast(tr, name, args, kwargs, result):
    if not isinstance(result, Tensor) or result.dtype != args[0].dtype:
        tr.fail(f"'{name}' converts a traced tensor to another dtype; export supports float32 only")
    tr.alias(args[0], result, name)


def _dropout(tr, name, args, kwargs, result):
    p, training = _arg(args, kwargs, 1, "p", 0.5), _arg(args, kwargs, 2, "training", True)
    if training and p > 0:
        tr.fail("dropout in training mode can't be exported (the model is traced in eval mode; a functional "
                "dropout call must pass training=self.training)")
    tr.alias(args[0], result, name)


def _copy_(tr, name, args, kwargs, result):
    target, src = args[0], args[1]
    if not isinstance(src, Tensor) or tuple(src.shape) != tuple(target.shape):
        tr.fail("copy_ is exported only from a tensor of the same shape")
    tr.rebind_in_place(target, src, name)


def _reshape(tr, name, args, kwargs, result):
    tr.record("reshape", [args[0]], result, {"shape": list(result.shape)})


def _permute_dims(name, args, kwargs, ndim):
    if name == "transpose":
        d0, d1 = _norm_dim(args[1], ndim), _norm_dim(args[2], ndim)
        dims = list(range(ndim))
        dims[d0], dims[d1] = dims[d1], dims[d0]
        return dims
    return [_norm_dim(int(d), ndim) for d in args[1]]


def _permute(tr, name, args, kwargs, result):
    tr.record("permute", [args[0]], result, {"dims": _permute_dims(name, args, kwargs, args[0].ndim)})


def _cat(tr, name, args, kwargs, result):
    tensors = list(_arg(args, kwargs, 0, "tensors"))
    dim = _norm_dim(int(_arg(args, kwargs, 1, "dim", 0)), tensors[0].ndim)
    tr.record("cat", tensors, result, {"dim": dim})


def _reduce(op):
    def handler(tr, name, args, kwargs, result):
        x = args[0]
        dim, keepdim = _arg(args, kwargs, 1, "dim"), bool(_arg(args, kwargs, 2, "keepdim", False))
        if dim is None:
            dims = list(range(x.ndim))
        elif isinstance(dim, int):
            dims = [_norm_dim(dim, x.ndim)]
        else:
            dims = sorted(_norm_dim(int(d), x.ndim) for d in dim)
        tr.record(op, [x], result, {"dims": dims, "keepdim": keepdim})
    return handler


def _linear(tr, name, args, kwargs, result):
    x, w, b = args[0], _arg(args, kwargs, 1, "weight"), _arg(args, kwargs, 2, "bias")
    tr.record("linear", [x, w] + ([b] if b is not None else []), result, {"act": "none"})


def _linear_act(tr, name, args, kwargs, result):
    """The fused feed-forward op of the Transformer layers: linear, then the activation."""
    from ._trace import _Suspend  # noqa: PLC0415 - _trace imports this module
    x, w, b, act = args[:4]
    with _Suspend(tr):
        hidden = _core.linear(x, w, b)  # the value between the two recorded nodes
    tr.record("linear", [x, w] + ([b] if b is not None else []), hidden, {"act": "none"})
    tr.record(act, [hidden], result, {"approximate": "none"} if act == "gelu" else {})


def _matmul(tr, name, args, kwargs, result):
    a, b = args[0], args[1]
    if a.ndim < 2 or b.ndim < 2:
        tr.fail(f"matmul of a {a.ndim}-D and a {b.ndim}-D tensor; export supports operands of at least 2 dims")
    tr.record("matmul", [a, b], result)


def _conv2d(tr, name, args, kwargs, result):
    x, w, b = args[0], args[1], args[2]
    stride, padding, dilation, groups = (list(args[3]), list(args[4]), list(args[5]), int(args[6]))
    relu = bool(_arg(args, kwargs, 8, "relu", False))
    tr.record("conv2d", [x, w] + ([b] if b is not None else []), result,
              {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
               "act": "relu" if relu else "none"})


def _conv_transpose2d(tr, name, args, kwargs, result):
    x, w, b = args[0], args[1], args[2]
    tr.record("conv_transpose2d", [x, w] + ([b] if b is not None else []), result,
              {"stride": list(args[3]), "padding": list(args[4]), "output_padding": list(args[5]),
               "dilation": list(args[6]), "groups": int(args[7])})


def _max_pool2d(tr, name, args, kwargs, result):
    if args[6]:
        tr.fail("max_pool with return_indices=True can't be exported")
    tr.record("max_pool2d", [args[0]], result, {"kernel": list(args[1]), "stride": list(args[2]),
                                                "padding": list(args[3]), "dilation": list(args[4]),
                                                "ceil_mode": bool(args[5])})


def _avg_pool2d(tr, name, args, kwargs, result):
    tr.record("avg_pool2d", [args[0]], result, {"kernel": list(args[1]), "stride": list(args[2]),
                                                "padding": list(args[3]), "ceil_mode": bool(args[4]),
                                                "count_include_pad": bool(args[5]),
                                                "divisor_override": int(args[6])})


def _adaptive_avg_pool2d(tr, name, args, kwargs, result):
    tr.record("adaptive_avg_pool2d", [args[0]], result, {"output_size": [int(args[1]), int(args[2])]})


def _batch_norm(tr, name, args, kwargs, result):
    x, mean, var, w, b, training, _, eps = args[:8]
    if training or mean is None or var is None:
        tr.fail("batch_norm with batch statistics can't be exported (eval mode with running statistics only)")
    inputs = [x, mean, var] + ([w] if w is not None else []) + ([b] if b is not None else [])
    tr.record("batch_norm", inputs, result, {"eps": float(eps), "has_weight": w is not None,
                                             "has_bias": b is not None})


def _layer_norm(tr, name, args, kwargs, result):
    x, shape, w, b, eps = args[:5]
    inputs = [x] + ([w] if w is not None else []) + ([b] if b is not None else [])
    tr.record("layer_norm", inputs, result, {"normalized_shape": [int(s) for s in shape], "eps": float(eps),
                                             "has_weight": w is not None, "has_bias": b is not None})


def _softmax(op):
    def handler(tr, name, args, kwargs, result):
        tr.record(op, [args[0]], result, {"dim": _norm_dim(int(args[1]), args[0].ndim)})
    return handler


def _rnn_layer(tr, name, args, kwargs, result):
    mode, x, batch_sizes, reverse, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr = args[:11]
    lengths = tr.packed.get(tr.values.get(id(x)))  # data of pack_padded_sequence (see _packed)
    if lengths is None and len(set(batch_sizes)) > 1:
        tr.fail(f"a packed sequence (batch sizes {list(batch_sizes)}) can be exported only when it is made by "
                "pack_padded_sequence from model inputs (the padded batch and its lengths)")
    if (b_ih is None) != (b_hh is None):
        tr.fail("a recurrent layer with only one of bias_ih and bias_hh can't be exported")
    inputs = [x] + ([lengths] if lengths is not None else []) + [t for t in (h0, c0) if t is not None]
    inputs += [w_ih, w_hh] + [t for t in (b_ih, b_hh, w_hr) if t is not None]
    # Packed: the steps follow the grid at run time (the trace's batch sizes follow its lengths).
    tr.record_multi("rnn", inputs, list(result),
                    {"mode": int(mode), "steps": 1 if lengths is not None else len(batch_sizes),
                     "reverse": bool(reverse), "has_h0": h0 is not None, "has_c0": c0 is not None,
                     "has_bias": b_ih is not None, "has_proj": w_hr is not None, "packed": lengths is not None})


def _attention(tr, name, args, kwargs, result):
    names = ["query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"]
    defaults = [None, None, None, None, 0.0, False, None, False]
    q, k, v, mask, p, causal, scale, gqa = (_arg(args, kwargs, i, n, d) for i, (n, d) in enumerate(zip(names, defaults)))
    if p:
        tr.fail(f"scaled_dot_product_attention with dropout_p={p} can't be exported (pass dropout_p=0.0 in eval mode)")
    is_bool = mask is not None and mask.dtype == _core.dtype.bool
    if mask is not None and mask.dtype != q.dtype and not is_bool:
        tr.fail(f"scaled_dot_product_attention with a {mask.dtype} attn_mask can't be exported; use a bool mask "
                "(True: takes part) or an additive float32 mask (0 where attending, -inf where masked)")
    attrs = {"is_causal": bool(causal), "has_mask": mask is not None, "enable_gqa": bool(gqa),
             "scale": 0.0 if scale is None else float(scale)}
    if is_bool:
        attrs["mask_bool"] = True
    tr.record("attention", [q, k, v] + ([mask] if mask is not None else []), result, attrs)


def _where(tr, name, args, kwargs, result):
    """where(condition, a, b) with a bool condition that is a model input (a padding mask), as
    masked_fill (and so MultiheadAttention's bool masks) computes it."""
    cond, a, b = args[0], _arg(args, kwargs, 1, "input"), _arg(args, kwargs, 2, "other")
    if not all(isinstance(t, Tensor) for t in (cond, a, b)):
        tr.fail("where with a number operand can't be exported; pass tensors")
    if cond.dtype != _core.dtype.bool:
        tr.fail(f"where with a {cond.dtype} condition can't be exported; the condition must be bool")
    tr.record("where", [cond, a, b], result)


def _embedding(tr, name, args, kwargs, result):
    weight, indices = args[0], args[1]
    if not tr.is_traced(indices):
        tr.fail(f"a row lookup with indices of shape {tuple(indices.shape)} made inside forward can't be exported "
                "(the indices must be a model input; packed sequences and permutations by index are not supported)")
    tr.record("embedding", [weight, indices], result)


def _rms_norm(tr, name, args, kwargs, result):
    x, shape, w, eps = args[:4]
    tr.record("rms_norm", [x] + ([w] if w is not None else []), result,
              {"normalized_shape": [int(s) for s in shape], "eps": float(eps), "has_weight": w is not None})


def _expand(tr, name, args, kwargs, result):
    tr.record("expand", [args[0]], result, {"shape": list(result.shape)}, derived=False)


def _full(tr, name, args, kwargs, result):
    tr.created_full(result, args[1])


def _basic_index(tr, name, args, kwargs, result):
    """x[ints, slices, None]: per input dim [start, step, length (-1: the whole dim), keep]."""
    x, dims, new_axes = args[0], list(args[1]), [int(a) for a in args[2]]
    if len(dims) != x.ndim:
        tr.fail(f"indexing a tensor of shape {tuple(x.shape)} with {len(dims)} dims")
    spec = []
    for size, (start, step, length, keep) in zip(x.shape, dims):
        whole = keep and start == 0 and step == 1 and length == size
        spec.append([0, 1, -1, 1] if whole else [int(start), int(step), int(length), int(bool(keep))])
    tr.record("slice", [x], result, {"dims": spec, "new_axes": new_axes})


HANDLERS = {
    "add": _binary("add"), "__add__": _binary("add"), "__radd__": _binary("add"),
    "sub": _binary("sub"), "__sub__": _binary("sub"), "__rsub__": _binary("sub", reverse=True),
    "mul": _binary("mul"), "__mul__": _binary("mul"), "__rmul__": _binary("mul"),
    "div": _binary("div"), "__truediv__": _binary("div"), "__rtruediv__": _binary("div", reverse=True),
    "add_": _binary("add", in_place=True), "__iadd__": _binary("add", in_place=True),
    "sub_": _binary("sub", in_place=True), "__isub__": _binary("sub", in_place=True),
    "mul_": _binary("mul", in_place=True), "__imul__": _binary("mul", in_place=True),
    "div_": _binary("div", in_place=True), "__itruediv__": _binary("div", in_place=True),
    "neg": lambda tr, name, args, kwargs, result: tr.record("mul", [args[0]], result, {"scalar": -1.0,
                                                                                      "reverse": False}),
    "relu": _unary("relu"), "sigmoid": _unary("sigmoid"), "tanh": _unary("tanh"), "silu": _unary("silu"),
    "mish": _unary("mish"), "selu": lambda tr, name, args, kwargs, result: tr.record(
        "elu", [args[0]], result, {"alpha": 1.6732632423543772, "scale": 1.0507009873554805}),
    "elu": lambda tr, name, args, kwargs, result: tr.record(
        "elu", [args[0]], result, {"alpha": float(_arg(args, kwargs, 1, "alpha", 1.0)), "scale": 1.0}),
    "gelu": _unary("gelu", [("approximate", "none")]),
    "leaky_relu": _unary("leaky_relu", [("negative_slope", 0.01)]),
    "softplus": _unary("softplus", [("beta", 1.0), ("threshold", 20.0)]),
    "hardtanh": _unary("hardtanh", [("min_val", -1.0), ("max_val", 1.0)]),
    "linear": _linear, "_linear_act": _linear_act, "matmul": _matmul, "__matmul__": _matmul,
    "_conv2d": _conv2d, "_conv_transpose2d": _conv_transpose2d,
    "_max_pool2d": _max_pool2d, "_avg_pool2d": _avg_pool2d, "_adaptive_avg_pool2d": _adaptive_avg_pool2d,
    "_batch_norm": _batch_norm, "_layer_norm": _layer_norm,
    "_softmax": _softmax("softmax"), "_log_softmax": _softmax("log_softmax"),
    "relu_": _unary_in_place("relu"), "sigmoid_": _unary_in_place("sigmoid"), "tanh_": _unary_in_place("tanh"),
    "to": _cast, "float": _cast, "type_as": _cast,
    "contiguous": _alias, "clone": _alias, "dropout": _dropout, "copy_": _copy_,
    "reshape": _reshape, "view": _reshape, "flatten": _reshape, "squeeze": _reshape, "unsqueeze": _reshape,
    "transpose": _permute, "permute": _permute, "cat": _cat,
    "mean": _reduce("mean"), "sum": _reduce("sum"),
    "_rnn_layer": _rnn_layer, "_scaled_dot_product_attention": _attention, "_embedding": _embedding,
    "_rms_norm": _rms_norm, "_basic_index": _basic_index, "_full": _full,
    "expand": _expand, "where": _where,
}
