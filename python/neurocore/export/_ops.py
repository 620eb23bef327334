"""What each traced core function or Tensor method records: the graph's op set.

A handler receives the call's arguments and its result (already computed by the real op) and
appends one node with the op's explicit attributes. Ops the runtime runs:

  linear, matmul, conv2d, conv_transpose2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d,
  batch_norm, layer_norm, softmax, log_softmax, add, sub, mul, div (tensor or scalar operand),
  relu, sigmoid, tanh, gelu, silu, mish, elu, leaky_relu, softplus, hardtanh, reshape, permute,
  cat, mean, sum.

contiguous, clone and eval-mode dropout record nothing: their result is the same value.
"""
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
    "linear": _linear, "matmul": _matmul, "__matmul__": _matmul,
    "_conv2d": _conv2d, "_conv_transpose2d": _conv_transpose2d,
    "_max_pool2d": _max_pool2d, "_avg_pool2d": _avg_pool2d, "_adaptive_avg_pool2d": _adaptive_avg_pool2d,
    "_batch_norm": _batch_norm, "_layer_norm": _layer_norm,
    "_softmax": _softmax("softmax"), "_log_softmax": _softmax("log_softmax"),
    "relu_": _unary_in_place("relu"), "sigmoid_": _unary_in_place("sigmoid"), "tanh_": _unary_in_place("tanh"),
    "contiguous": _alias, "clone": _alias, "dropout": _dropout, "copy_": _copy_,
    "reshape": _reshape, "view": _reshape, "flatten": _reshape, "squeeze": _reshape, "unsqueeze": _reshape,
    "transpose": _permute, "permute": _permute, "cat": _cat,
    "mean": _reduce("mean"), "sum": _reduce("sum"),
}
