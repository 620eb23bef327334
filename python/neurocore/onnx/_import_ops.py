"""ONNX operators as neurocore ops: one function per operator, ``op(ctx, inputs, attrs)``.

``inputs`` holds, per node input, a neurocore Tensor (anything that may carry a gradient), a NumPy
array (a constant or shape arithmetic: the output of ``Shape`` and what is computed from it) or
None (an omitted optional input). Tensors are computed only with neurocore ops, so imported models
train; NumPy is used only to read integer arguments (shapes, axes, pads) and when every input of a
node is a NumPy array, in which case the loader runs the node with ONNX's reference evaluator instead
of calling the function here. A function returns one value or a tuple (one per node output).
"""
import numpy as np

from .. import _core, _creation
from .. import _functions as F_
from .._tensor import from_numpy, int64
from ..nn import functional as F
from ._common import OnnxError, nc_dtype_of_numpy, numpy_dtype, numpy_of_nc_dtype


class Context:
    """What an operator needs besides its inputs: the node (for error messages), the opset, and
    whether the module is training (BatchNormalization uses batch statistics, Dropout drops)."""

    def __init__(self, name, op_type, opset):
        self.name, self.op_type, self.opset = name, op_type, opset
        self.training = False

    def error(self, message):
        return OnnxError(f"[onnx {self.op_type}] node '{self.name}': {message}")


def to_tensor(value, like=None):
    """A Tensor for a node input: NumPy constants become tensors; a floating constant takes the dtype
    of ``like`` when that is a floating Tensor (a float32 constant meets a model made ``double()``)."""
    if value is None or isinstance(value, _core.Tensor):
        return value
    arr = np.asarray(value)
    dtype = nc_dtype_of_numpy(arr.dtype)
    if isinstance(like, _core.Tensor) and like.dtype.is_floating_point and arr.dtype.kind == "f":
        dtype = like.dtype
    return from_numpy(np.array(arr, dtype=numpy_of_nc_dtype(dtype), order="C", copy=True))


def scalar(value):
    """A Python float from a one-element constant or tensor."""
    return float(value.item() if isinstance(value, _core.Tensor) else np.asarray(value).reshape(()))


def ints(ctx, value, what):
    """A list of Python ints from a shape/axes/pads input (NumPy, or a Tensor computed from shapes)."""
    if value is None:
        return None
    if isinstance(value, _core.Tensor):
        if value.dtype.is_floating_point:
            raise ctx.error(f"{what} must be integers, got a {value.dtype} tensor")
        value = value.numpy()
    return [int(v) for v in np.asarray(value).reshape(-1)]


def shape_of(value):
    return tuple(value.shape)


def _axis(ctx, axis, rank, what="axis"):
    if not -rank <= axis < max(rank, 1):
        raise ctx.error(f"{what} {axis} is out of range for a rank-{rank} input")
    return axis % rank if rank else 0


# ----------------------------------------------------------------------------------------------------
# dense, convolution, pooling, normalisation


def gemm(ctx, inputs, attrs):
    a, b, c = (inputs + [None])[:3]
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    trans_a, trans_b = attrs.get("transA", 0), attrs.get("transB", 0)
    a, b, c = to_tensor(a), to_tensor(b, a), to_tensor(c, a)
    if a.dim() != 2 or b.dim() != 2:
        raise ctx.error(f"expects 2-D A and B, got shapes {shape_of(a)} and {shape_of(b)}")
    k_a = a.shape[0] if trans_a else a.shape[1]
    k_b = b.shape[1] if trans_b else b.shape[0]
    if k_a != k_b:
        raise ctx.error(f"A {shape_of(a)} (transA={trans_a}) and B {shape_of(b)} (transB={trans_b}) "
                        f"disagree on the inner dimension ({k_a} vs {k_b})")
    if not trans_a and trans_b and alpha == 1.0 and (c is None or (beta == 1.0 and c.dim() <= 1)):
        if c is not None and c.dim() == 1 and c.shape[0] == b.shape[0]:
            return F.linear(a, b, c)  # nn.Linear's pattern: one fused call
        y = F.linear(a, b)
        return y if c is None else y + c
    y = (a.t() if trans_a else a).matmul(b.t() if trans_b else b)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c if beta == 1.0 else c * beta)
    return y


def matmul(ctx, inputs, attrs):
    a = to_tensor(inputs[0], inputs[1])
    b = to_tensor(inputs[1], a)
    if a.dim() == 0 or b.dim() == 0:
        raise ctx.error(f"inputs must not be scalars, got shapes {shape_of(a)} and {shape_of(b)}")
    return F_.matmul(a, b)


def _spatial_attrs(ctx, attrs, kernel, nd):
    strides = list(attrs.get("strides", [1] * nd))
    dilations = list(attrs.get("dilations", [1] * nd))
    if len(strides) != nd or len(dilations) != nd:
        raise ctx.error(f"strides {strides} / dilations {dilations} do not match {nd} spatial dims")
    return strides, dilations


def _same_pads(in_sizes, kernel, strides, dilations, mode):
    """(begins, ends) that auto_pad SAME_UPPER / SAME_LOWER gives: output size ceil(in / stride)."""
    begins, ends = [], []
    for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small = total // 2
        begins.append(small if mode == "SAME_UPPER" else total - small)
        ends.append(total - small if mode == "SAME_UPPER" else small)
    return begins, ends


def _pads(ctx, attrs, in_sizes, kernel, strides, dilations):
    nd = len(kernel)
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return _same_pads(in_sizes, kernel, strides, dilations, auto_pad)
    if auto_pad == "VALID":
        return [0] * nd, [0] * nd
    if auto_pad != "NOTSET":
        raise ctx.error(f"unknown auto_pad {auto_pad!r}")
    pads = list(attrs.get("pads", [0] * (2 * nd)))
    if len(pads) != 2 * nd:
        raise ctx.error(f"pads {pads} must have {2 * nd} values for {nd} spatial dims")
    return pads[:nd], pads[nd:]


def _to_2d(ctx, x, nd, what="input"):
    """Runs 1-D ops as 2-D with a unit height (neurocore's conv/pool kernels are 2-D)."""
    if nd not in (1, 2):
        raise ctx.error(f"only 1-D and 2-D spatial {what}s are supported, got {nd}-D (shape {shape_of(x)})")
    return x.unsqueeze(2) if nd == 1 else x


def _conv_operands(ctx, inputs):
    """Conv/ConvTranspose inputs as tensors (bias optional) and the number of spatial dims."""
    x, w, b = (inputs + [None])[:3]
    x, w = to_tensor(x), to_tensor(w, x)
    b = to_tensor(b, x)
    nd = x.dim() - 2
    if nd < 1 or w.dim() != x.dim():
        raise ctx.error(f"expects (N, C, *spatial) input and a weight of the same rank, got shapes "
                        f"{shape_of(x)} and {shape_of(w)}")
    return x, w, b, nd


def conv(ctx, inputs, attrs):
    x, w, b, nd = _conv_operands(ctx, inputs)
    kernel = list(attrs.get("kernel_shape", w.shape[2:]))
    strides, dilations = _spatial_attrs(ctx, attrs, kernel, nd)
    group = attrs.get("group", 1)
    if x.shape[1] != w.shape[1] * group:
        raise ctx.error(f"input has {x.shape[1]} channels, weight {shape_of(w)} with group={group} expects "
                        f"{w.shape[1] * group} (input shape {shape_of(x)})")
    begins, ends = _pads(ctx, attrs, x.shape[2:], kernel, strides, dilations)
    x2, w2 = _to_2d(ctx, x, nd), _to_2d(ctx, w, nd, "weight")
    if nd == 1:
        strides, dilations, begins, ends = [1] + strides, [1] + dilations, [0] + begins, [0] + ends
    y = _core._conv2d(x2, w2, b, strides, [begins[0], ends[0], begins[1], ends[1]], dilations, int(group),
                      "onnx Conv", False)
    return y.squeeze(2) if nd == 1 else y


def conv_transpose(ctx, inputs, attrs):
    x, w, b, nd = _conv_operands(ctx, inputs)
    group = attrs.get("group", 1)
    if x.shape[1] != w.shape[0]:
        raise ctx.error(f"input has {x.shape[1]} channels, weight {shape_of(w)} expects {w.shape[0]}")
    kernel = list(attrs.get("kernel_shape", w.shape[2:]))
    strides, dilations = _spatial_attrs(ctx, attrs, kernel, nd)
    out_pad = list(attrs.get("output_padding", [0] * nd))
    in_sizes = list(x.shape[2:])
    full = [s * (i - 1) + op + (k - 1) * d + 1 for i, s, op, k, d in zip(in_sizes, strides, out_pad, kernel, dilations)]
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if "output_shape" in attrs or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = list(attrs["output_shape"])[-nd:] if "output_shape" in attrs else [i * s for i, s in
                                                                                   zip(in_sizes, strides)]
        totals = [f - t for f, t in zip(full, target)]
        if any(t < 0 for t in totals):
            raise ctx.error(f"output_shape {target} is larger than the full output {full}")
        upper = auto_pad != "SAME_LOWER"
        begins = [t // 2 if upper else t - t // 2 for t in totals]
        ends = [t - bg for t, bg in zip(totals, begins)]
    elif auto_pad == "VALID":
        begins, ends = [0] * nd, [0] * nd
    else:
        begins, ends = _pads(ctx, attrs, in_sizes, kernel, strides, dilations)
    symmetric = begins == ends
    x2, w2 = _to_2d(ctx, x, nd), _to_2d(ctx, w, nd, "weight")
    pad = begins if symmetric else [0] * nd
    if nd == 1:
        strides, dilations, pad, out_pad = [1] + strides, [1] + dilations, [0] + pad, [0] + out_pad
    y = _core._conv_transpose2d(x2, w2, b, strides, pad, out_pad, dilations, int(group), "onnx ConvTranspose")
    if nd == 1:
        y = y.squeeze(2)
    if not symmetric:  # crop the asymmetric padding from the full output
        y = y[(slice(None), slice(None)) + tuple(slice(bg, f - e) for bg, e, f in zip(begins, ends, full))]
    return y


def _pad_constant(x, begins, ends, value, first_axis):
    """x padded with ``value`` on the given axes (from ``first_axis`` on) by concatenation."""
    for i, (bg, e) in enumerate(zip(begins, ends)):
        axis = first_axis + i
        parts = []
        for n in (bg, e):
            shape = list(x.shape)
            shape[axis] = n
            parts.append(_creation.full(tuple(shape), value, dtype=x.dtype) if n > 0 else None)
        if bg < 0 or e < 0:
            x = x.narrow(axis, max(-bg, 0), x.shape[axis] - max(-bg, 0) - max(-e, 0))
            parts = [p if n > 0 else None for p, n in zip(parts, (bg, e))]
        pieces = [p for p in (parts[0], x, parts[1]) if p is not None]
        if len(pieces) > 1:
            x = F_.cat(pieces, dim=axis)
    return x


def _pool(ctx, inputs, attrs, kind):
    x = to_tensor(inputs[0])
    nd = x.dim() - 2
    kernel = list(attrs["kernel_shape"])
    if nd < 1 or len(kernel) != nd:
        raise ctx.error(f"kernel_shape {kernel} does not fit input shape {shape_of(x)}")
    strides, dilations = _spatial_attrs(ctx, attrs, kernel, nd)
    begins, ends = _pads(ctx, attrs, x.shape[2:], kernel, strides, dilations)
    ceil_mode = bool(attrs.get("ceil_mode", 0))
    count_include_pad = bool(attrs.get("count_include_pad", 0))
    if kind == "avg" and any(d != 1 for d in dilations):
        raise ctx.error(f"dilated average pooling is not supported (dilations {dilations})")
    symmetric = begins == ends and all(2 * p <= k for p, k in zip(begins, kernel))
    x2 = _to_2d(ctx, x, nd)
    lift = (lambda v: [1] + list(v)) if nd == 1 else list
    lift0 = (lambda v: [0] + list(v)) if nd == 1 else list
    if symmetric:
        pad = begins
    else:  # pad explicitly: -inf for max; for average a zero pad, divided by the count of real cells
        pad = [0] * nd
        fill = float("-inf") if kind == "max" else 0.0
        b2, e2 = lift0(begins), lift0(ends)
        if kind == "avg" and not count_include_pad:
            ones = _creation.ones(*([1, 1] + list(x2.shape[2:])), dtype=x.dtype)
            counts = _core._avg_pool2d(_pad_constant(ones, b2, e2, 0.0, 2), lift(kernel), lift(strides), [0, 0],
                                       ceil_mode, True, 0, "onnx AveragePool")
            sums = _core._avg_pool2d(_pad_constant(x2, b2, e2, 0.0, 2), lift(kernel), lift(strides), [0, 0],
                                     ceil_mode, True, 0, "onnx AveragePool")
            y = sums / counts
            return y.squeeze(2) if nd == 1 else y
        x2 = _pad_constant(x2, b2, e2, fill, 2)
    if kind == "max":
        y = _core._max_pool2d(x2, lift(kernel), lift(strides), lift0(pad), lift(dilations), ceil_mode, False,
                              "onnx MaxPool")
    else:
        y = _core._avg_pool2d(x2, lift(kernel), lift(strides), lift0(pad), ceil_mode, count_include_pad, 0,
                              "onnx AveragePool")
    return y.squeeze(2) if nd == 1 else y


def max_pool(ctx, inputs, attrs):
    if attrs.get("storage_order", 0):
        raise ctx.error("storage_order=1 (column-major indices) is not supported")
    return _pool(ctx, inputs, attrs, "max")


def average_pool(ctx, inputs, attrs):
    return _pool(ctx, inputs, attrs, "avg")


def global_average_pool(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)


def global_max_pool(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    return x.amax(dim=tuple(range(2, x.dim())), keepdim=True)


def batch_normalization(ctx, inputs, attrs):
    x, scale, bias, mean, var = [to_tensor(v, inputs[0]) for v in inputs[:5]]
    if x.dim() < 2 or any(t.dim() != 1 or t.shape[0] != x.shape[1] for t in (scale, bias, mean, var)):
        raise ctx.error(f"expects (N, C, ...) input and (C,) scale, B, mean, var, got shapes {shape_of(x)}, "
                        f"{shape_of(scale)}, {shape_of(bias)}, {shape_of(mean)}, {shape_of(var)}")
    eps, momentum = attrs.get("epsilon", 1e-5), attrs.get("momentum", 0.9)
    training = ctx.training or bool(attrs.get("training_mode", 0))
    if training and (mean.requires_grad or var.requires_grad):  # statistics aliased to weights: don't update
        mean, var = mean.detach().clone(), var.detach().clone()
    # ONNX's momentum weighs the running value (PyTorch's weighs the batch value): 1 - momentum
    return F.batch_norm(x, mean, var, scale, bias, training=training, momentum=1.0 - momentum, eps=eps)


def layer_normalization(ctx, inputs, attrs):
    x, scale, bias = (inputs + [None])[:3]
    x = to_tensor(x)
    scale, bias = to_tensor(scale, x), to_tensor(bias, x)
    axis = _axis(ctx, attrs.get("axis", -1), x.dim())
    normalized = tuple(x.shape[axis:])
    eps = attrs.get("epsilon", 1e-5)
    if tuple(scale.shape) == normalized and (bias is None or tuple(bias.shape) == normalized):
        return F.layer_norm(x, normalized, scale, bias, eps)
    y = F.layer_norm(x, normalized, None, None, eps) * scale  # broadcastable scale/bias
    return y if bias is None else y + bias


def instance_normalization(ctx, inputs, attrs):
    x, scale, bias = [to_tensor(v, inputs[0]) for v in inputs[:3]]
    dims = tuple(range(2, x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    shape = (1, -1) + (1,) * len(dims)
    return (x - mean) * (var + attrs.get("epsilon", 1e-5)).rsqrt() * scale.reshape(shape) + bias.reshape(shape)


# ----------------------------------------------------------------------------------------------------
# activations and elementwise math


def _unary(fn):
    return lambda ctx, inputs, attrs: fn(to_tensor(inputs[0]))


def leaky_relu(ctx, inputs, attrs):
    return F.leaky_relu(to_tensor(inputs[0]), attrs.get("alpha", 0.01))


def elu(ctx, inputs, attrs):
    return F.elu(to_tensor(inputs[0]), attrs.get("alpha", 1.0))


_SELU_ALPHA, _SELU_GAMMA = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def selu(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    alpha, gamma = attrs.get("alpha", _SELU_ALPHA), attrs.get("gamma", _SELU_GAMMA)
    if abs(alpha - _SELU_ALPHA) < 1e-6 and abs(gamma - _SELU_GAMMA) < 1e-6:
        return F.selu(x)
    return F.elu(x, alpha) * gamma


def gelu(ctx, inputs, attrs):
    approximate = attrs.get("approximate", b"none")
    return F.gelu(to_tensor(inputs[0]), approximate.decode() if isinstance(approximate, bytes) else approximate)


def hard_sigmoid(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    return (x * attrs.get("alpha", 0.2) + attrs.get("beta", 0.5)).clamp(0.0, 1.0)


def hard_swish(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    return x * (x * (1.0 / 6.0) + 0.5).clamp(0.0, 1.0)


def prelu(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    slope = to_tensor(inputs[1], x)
    return F.relu(x) - slope * F.relu(-x)


def clip(ctx, inputs, attrs):
    x, lo, hi = (inputs + [None, None])[:3]
    x = to_tensor(x)
    if lo is None and hi is None:
        return x
    return x.clamp(None if lo is None else scalar(lo), None if hi is None else scalar(hi))


def _binary(fn):
    def op(ctx, inputs, attrs):
        a, b = inputs[0], inputs[1]
        a = to_tensor(a, b)
        return fn(a, to_tensor(b, a))
    return op


def div(ctx, inputs, attrs):
    a = to_tensor(inputs[0], inputs[1])
    b = to_tensor(inputs[1], a)
    y = a / b
    if not a.dtype.is_floating_point and not b.dtype.is_floating_point:
        y = y.to(int64)  # integer division truncates toward zero in ONNX
    return y


def mod(ctx, inputs, attrs):
    a = to_tensor(inputs[0], inputs[1])
    b = to_tensor(inputs[1], a)
    q = a / b
    q = (q.abs().floor() * q.sign()) if attrs.get("fmod", 0) else q.floor()  # C fmod truncates, Python's floors
    y = a - q * b
    return y if a.dtype.is_floating_point or b.dtype.is_floating_point else y.to(int64)


def pow_(ctx, inputs, attrs):
    x, p = inputs
    x = to_tensor(x)
    if not isinstance(p, _core.Tensor) and np.asarray(p).size == 1:
        return x ** scalar(p)
    return x ** to_tensor(p, x)


def _variadic(fn):
    def op(ctx, inputs, attrs):
        tensors = [to_tensor(v, inputs[0]) for v in inputs]
        y = tensors[0]
        for t in tensors[1:]:
            y = fn(y, t)
        return y
    return op


def mean_(ctx, inputs, attrs):
    return _variadic(lambda a, b: a + b)(ctx, inputs, attrs) / float(len(inputs))


def softmax(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    return F.softmax(x, dim=_axis(ctx, attrs.get("axis", -1), x.dim()))


def log_softmax(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    return F.log_softmax(x, dim=_axis(ctx, attrs.get("axis", -1), x.dim()))


def _reduce_axes(ctx, inputs, attrs, rank):
    axes = ints(ctx, inputs[1], "axes") if len(inputs) > 1 and inputs[1] is not None else attrs.get("axes")
    if not axes:
        return None if attrs.get("noop_with_empty_axes", 0) else tuple(range(rank))
    return tuple(sorted(_axis(ctx, a, rank) for a in axes))


def _reduce(fn):
    def op(ctx, inputs, attrs):
        x = to_tensor(inputs[0])
        axes = _reduce_axes(ctx, inputs, attrs, x.dim())
        if axes is None:
            return x
        if not axes:  # a scalar input
            return fn(x.reshape(1), (0,), False)
        return fn(x, axes, bool(attrs.get("keepdims", 1)))
    return op


_reduce_mean = _reduce(lambda x, d, k: x.mean(dim=d, keepdim=k))
_reduce_sum = _reduce(lambda x, d, k: x.sum(dim=d, keepdim=k))
_reduce_max = _reduce(lambda x, d, k: x.amax(dim=d, keepdim=k))
_reduce_min = _reduce(lambda x, d, k: x.amin(dim=d, keepdim=k))
_reduce_sum_square = _reduce(lambda x, d, k: (x * x).sum(dim=d, keepdim=k))
_reduce_l2 = _reduce(lambda x, d, k: (x * x).sum(dim=d, keepdim=k).sqrt())
_reduce_l1 = _reduce(lambda x, d, k: x.abs().sum(dim=d, keepdim=k))
_reduce_log_sum_exp = _reduce(lambda x, d, k: x.logsumexp(dim=d, keepdim=k))


def dropout(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    ratio = scalar(inputs[1]) if len(inputs) > 1 and inputs[1] is not None else attrs.get("ratio", 0.5)
    training = len(inputs) > 2 and inputs[2] is not None and bool(np.asarray(inputs[2]))
    return F.dropout(x, ratio, training=training or ctx.training)


def identity(ctx, inputs, attrs):
    return inputs[0]


# ----------------------------------------------------------------------------------------------------
# shapes and indexing


def shape(ctx, inputs, attrs):
    dims = np.array(shape_of(inputs[0]), dtype=np.int64)
    start, end = attrs.get("start", 0), attrs.get("end", None)
    return dims[start:end]


def size(ctx, inputs, attrs):
    return np.array(int(np.prod(shape_of(inputs[0]))), dtype=np.int64)


def flatten(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    axis = attrs.get("axis", 1)
    axis = axis + x.dim() if axis < 0 else axis
    if not 0 <= axis <= x.dim():
        raise ctx.error(f"axis {attrs.get('axis', 1)} is out of range for input shape {shape_of(x)}")
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    return x.reshape(outer, int(np.prod(x.shape[axis:], dtype=np.int64)))


def reshape(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    target = ints(ctx, inputs[1], "shape")
    if not attrs.get("allowzero", 0):
        target = [x.shape[i] if d == 0 and i < x.dim() else d for i, d in enumerate(target)]
    known = int(np.prod([d for d in target if d != -1], dtype=np.int64))
    total = int(np.prod(x.shape, dtype=np.int64))
    if target.count(-1) > 1 or (target.count(-1) == 0 and known != total) or \
            (target.count(-1) == 1 and (known == 0 or total % known)):
        raise ctx.error(f"cannot reshape input of shape {shape_of(x)} to {tuple(ints(ctx, inputs[1], 'shape'))}")
    return x.reshape(target)


def transpose(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    perm = list(attrs.get("perm", range(x.dim() - 1, -1, -1)))
    if sorted(perm) != list(range(x.dim())):
        raise ctx.error(f"perm {perm} is not a permutation of the {x.dim()} dims of input shape {shape_of(x)}")
    return x.permute(perm)


def squeeze(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    axes = ints(ctx, inputs[1], "axes") if len(inputs) > 1 and inputs[1] is not None else attrs.get("axes")
    if axes is None:
        axes = [i for i, s in enumerate(x.shape) if s == 1]
    axes = sorted({_axis(ctx, a, x.dim()) for a in axes}, reverse=True)
    for a in axes:
        if x.shape[a] != 1:
            raise ctx.error(f"cannot squeeze axis {a} of size {x.shape[a]} (input shape {shape_of(x)})")
        x = x.squeeze(a)
    return x


def unsqueeze(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    axes = ints(ctx, inputs[1], "axes") if len(inputs) > 1 and inputs[1] is not None else attrs.get("axes")
    rank = x.dim() + len(axes)
    for a in sorted(_axis(ctx, a, rank) for a in axes):
        x = x.unsqueeze(a)
    return x


def concat(ctx, inputs, attrs):
    like = next((v for v in inputs if isinstance(v, _core.Tensor)), None)
    tensors = [to_tensor(v, like) for v in inputs if v is not None]
    return F_.cat(tensors, dim=_axis(ctx, attrs["axis"], tensors[0].dim()))


def split(ctx, inputs, attrs, n_outputs):
    x = to_tensor(inputs[0])
    axis = _axis(ctx, attrs.get("axis", 0), x.dim())
    sizes = ints(ctx, inputs[1], "split") if len(inputs) > 1 and inputs[1] is not None else attrs.get("split")
    if sizes is None:
        n = attrs.get("num_outputs", n_outputs)
        chunk = -(-x.shape[axis] // n)
        sizes = [chunk] * (n - 1) + [x.shape[axis] - chunk * (n - 1)]
    if sum(sizes) != x.shape[axis] or any(s < 0 for s in sizes):
        raise ctx.error(f"split sizes {list(sizes)} do not add up to {x.shape[axis]} (axis {axis} of shape "
                        f"{shape_of(x)})")
    return tuple(F_.split(x, list(sizes), axis))


def slice_(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    starts, ends = ints(ctx, inputs[1], "starts"), ints(ctx, inputs[2], "ends")
    axes = ints(ctx, inputs[3], "axes") if len(inputs) > 3 and inputs[3] is not None else list(range(len(starts)))
    steps = ints(ctx, inputs[4], "steps") if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
    key = [slice(None)] * x.dim()
    flips = []
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = _axis(ctx, axis, x.dim())
        if step == 0:
            raise ctx.error("steps must not be 0")
        first, stop, step = slice(start, end, step).indices(x.shape[axis])
        if step > 0:
            key[axis] = slice(first, max(stop, first), step)
        else:  # negative steps: select the reversed range on the flipped axis
            count = len(range(first, stop, step))
            flipped_first = x.shape[axis] - 1 - first
            key[axis] = slice(flipped_first, flipped_first + (count - 1) * -step + 1 if count else flipped_first,
                              -step)
            flips.append(axis)
    if flips:
        x = x.flip(flips)
    return x[tuple(key)]


def gather(ctx, inputs, attrs):
    data, indices = inputs
    data = to_tensor(data)
    axis = _axis(ctx, attrs.get("axis", 0), data.dim())
    dim = data.shape[axis]
    if not isinstance(indices, _core.Tensor):
        idx = np.asarray(indices).astype(np.int64)
        if idx.size and (idx.min() < -dim or idx.max() >= dim):
            raise ctx.error(f"indices {idx.tolist()} are out of range for axis {axis} of size {dim} "
                            f"(data shape {shape_of(data)})")
        idx_shape = idx.shape
        flat = to_tensor(np.where(idx < 0, idx + dim, idx).reshape(-1))
    else:
        idx_shape = shape_of(indices)
        flat = indices.reshape(-1).to(int64)
        flat = F_.where(flat < 0, flat + dim, flat)
    out = data.index_select(axis, flat)
    return out.reshape(tuple(data.shape[:axis]) + tuple(idx_shape) + tuple(data.shape[axis + 1:]))


def cast(ctx, inputs, attrs):
    x = inputs[0]
    np_dtype = numpy_dtype(attrs["to"])
    return x.to(nc_dtype_of_numpy(np_dtype))


def cast_like(ctx, inputs, attrs):
    target = inputs[1].dtype if isinstance(inputs[1], _core.Tensor) else nc_dtype_of_numpy(np.asarray(inputs[1]).dtype)
    return to_tensor(inputs[0]).to(target)


def where(ctx, inputs, attrs):
    cond, a, b = inputs
    like = a if isinstance(a, _core.Tensor) else b
    a, b = to_tensor(a, like), to_tensor(b, like)
    return F_.where(to_tensor(cond), a, b)


def expand(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    target = ints(ctx, inputs[1], "shape")
    try:
        out = np.broadcast_shapes(tuple(x.shape), tuple(target))
    except ValueError:
        raise ctx.error(f"cannot broadcast input shape {shape_of(x)} to {tuple(target)}") from None
    return x.expand(*out)


def tile(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    reps = ints(ctx, inputs[1], "repeats")
    if len(reps) != x.dim():
        raise ctx.error(f"repeats {reps} must have one value per dim of input shape {shape_of(x)}")
    return x.repeat(*reps)


def pad(ctx, inputs, attrs):
    x = to_tensor(inputs[0])
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise ctx.error(f"mode {mode!r} is not supported (only 'constant')")
    pads = ints(ctx, inputs[1], "pads")
    value = scalar(inputs[2]) if len(inputs) > 2 and inputs[2] is not None else 0.0
    axes = ints(ctx, inputs[3], "axes") if len(inputs) > 3 and inputs[3] is not None else list(range(x.dim()))
    axes = [_axis(ctx, a, x.dim()) for a in axes]
    if len(pads) != 2 * len(axes):
        raise ctx.error(f"pads {pads} must have 2 values per padded axis ({len(axes)} axes)")
    for i, axis in enumerate(axes):
        x = _pad_constant(x, [pads[i]], [pads[i + len(axes)]], value, axis)
    return x


def _compare(fn):
    def op(ctx, inputs, attrs):
        a = to_tensor(inputs[0], inputs[1])
        return fn(a, to_tensor(inputs[1], a))
    return op


def not_(ctx, inputs, attrs):
    return to_tensor(inputs[0]).logical_not()


def range_(ctx, inputs, attrs):
    start, limit, delta = [np.asarray(v.numpy() if isinstance(v, _core.Tensor) else v) for v in inputs]
    return np.arange(start, limit, delta).astype(np.result_type(start, limit, delta))


def constant_of_shape(ctx, inputs, attrs):
    value = attrs.get("value")
    value = np.zeros(1, dtype=np.float32) if value is None else value
    return np.full(ints(ctx, inputs[0], "shape"), value.reshape(-1)[0], dtype=value.dtype)


# ONNX op type -> function(ctx, inputs, attrs). Ops whose inputs are all constants run in ONNX's
# reference evaluator; the rest come here.
OPS = {
    "Conv": conv, "ConvTranspose": conv_transpose, "Gemm": gemm, "MatMul": matmul,
    "MaxPool": max_pool, "AveragePool": average_pool, "GlobalAveragePool": global_average_pool,
    "GlobalMaxPool": global_max_pool, "BatchNormalization": batch_normalization,
    "LayerNormalization": layer_normalization, "InstanceNormalization": instance_normalization,
    "Relu": _unary(F.relu), "LeakyRelu": leaky_relu, "Sigmoid": _unary(F.sigmoid), "Tanh": _unary(F.tanh),
    "Elu": elu, "Selu": selu, "Softplus": _unary(F.softplus), "Gelu": gelu, "Erf": _unary(lambda x: x.erf()),
    "HardSigmoid": hard_sigmoid, "HardSwish": hard_swish, "PRelu": prelu, "Clip": clip,
    "Add": _binary(lambda a, b: a + b), "Sub": _binary(lambda a, b: a - b), "Mul": _binary(lambda a, b: a * b),
    "Div": div, "Mod": mod, "Pow": pow_, "Sqrt": _unary(lambda x: x.sqrt()), "Neg": _unary(lambda x: -x),
    "Exp": _unary(lambda x: x.exp()), "Log": _unary(lambda x: x.log()), "Abs": _unary(lambda x: x.abs()),
    "Reciprocal": _unary(lambda x: x.reciprocal()), "Floor": _unary(lambda x: x.floor()),
    "Ceil": _unary(lambda x: x.ceil()), "Sin": _unary(lambda x: x.sin()), "Cos": _unary(lambda x: x.cos()),
    "Sign": _unary(lambda x: x.sign()),
    "Max": _variadic(F_.maximum), "Min": _variadic(F_.minimum), "Sum": _variadic(lambda a, b: a + b),
    "Mean": mean_,
    "ReduceMean": _reduce_mean, "ReduceSum": _reduce_sum, "ReduceMax": _reduce_max, "ReduceMin": _reduce_min,
    "ReduceSumSquare": _reduce_sum_square, "ReduceL2": _reduce_l2, "ReduceL1": _reduce_l1,
    "ReduceLogSumExp": _reduce_log_sum_exp,
    "Softmax": softmax, "LogSoftmax": log_softmax, "Dropout": dropout, "Identity": identity,
    "Shape": shape, "Size": size, "Flatten": flatten, "Reshape": reshape, "Transpose": transpose,
    "Squeeze": squeeze, "Unsqueeze": unsqueeze, "Concat": concat, "Split": split, "Slice": slice_,
    "Gather": gather, "Cast": cast, "CastLike": cast_like, "Where": where, "Expand": expand, "Tile": tile,
    "Pad": pad, "Equal": _compare(lambda a, b: a.eq(b)), "Less": _compare(lambda a, b: a.lt(b)),
    "Greater": _compare(lambda a, b: a.gt(b)), "LessOrEqual": _compare(lambda a, b: a.le(b)),
    "GreaterOrEqual": _compare(lambda a, b: a.ge(b)), "Not": not_,
    "And": _compare(lambda a, b: a.logical_and(b)), "Or": _compare(lambda a, b: a.logical_or(b)),
    "Range": range_, "ConstantOfShape": constant_of_shape,
}
# Ops that only ever see constants (folded when the model loads).
CONSTANT_OPS = {"Constant"}
# Ops whose function also takes the number of node outputs.
MULTI_OUTPUT = {"Split"}

from ._import_recurrent import RECURRENT_OPS  # noqa: E402 - it uses the helpers above

OPS.update(RECURRENT_OPS)
MULTI_OUTPUT |= set(RECURRENT_OPS)
