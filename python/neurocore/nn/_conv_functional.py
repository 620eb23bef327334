"""Convolution and pooling functional forms. Arguments are resolved here (int or tuple, 'same'/
'valid', stride defaulting to the kernel) into the explicit per-dim values the C++ ops take;
1-D forms run the 2-D ops with a unit height."""
from .. import _core


# The smallest value of each geometry argument of the conv and pooling family (PyTorch's rules;
# like PyTorch, a value below it is a RuntimeError).
_MINIMUM = {"kernel_size": 1, "stride": 1, "dilation": 1, "padding": 0, "output_padding": 0}


# _tuple's accepted answers by (type, value, n, name): modules pass the same few geometry values on
# every call, and resolving them anew was a tenth of a batch-1 CNN forward. Only plain ints and
# tuples of them are kept, with their type so that 1.0 (refused) is not taken for 1.
_TUPLES = {}


def _tuple(v, n, name, op):
    """`v` (an int or a sequence of ints) as an n-tuple, checked against the argument's minimum."""
    try:
        return _TUPLES[(type(v), v, n, name)]
    except (KeyError, TypeError):
        pass
    t = _resolve_tuple(v, n, name, op)
    if len(_TUPLES) < 4096 and (type(v) is int or type(v) is tuple and all(type(x) is int for x in v)):
        _TUPLES[(type(v), v, n, name)] = t
    return t


def _resolve_tuple(v, n, name, op):
    if isinstance(v, int):
        v = (v,) * n
    else:
        try:
            v = tuple(int(x) for x in v)
        except (TypeError, ValueError):
            raise TypeError(f"[{op}] {name} must be an int or a tuple of {n} ints, got {v!r}") from None
    if len(v) == 1 and n > 1:
        v = v * n
    if len(v) != n:
        raise ValueError(f"[{op}] {name} must be an int or a tuple of {n} ints, got {v}")
    low = _MINIMUM.get(name)
    if low is not None and any(x < low for x in v):
        kind = "positive" if low else "non-negative"
        raise RuntimeError(f"[{op}] {name} must be {kind}, got {v}")
    return v


def _unbatched(input, nd, op):
    """(input viewed as batched, whether it was unbatched)."""
    if input.dim() == nd + 2:
        return input, False
    if input.dim() == nd + 1:
        return input.unsqueeze(0), True
    kind = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
    raise RuntimeError(f"[{op}] expected {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input {kind}, "
                       f"got shape {tuple(input.shape)}")


def _conv_padding(padding, kernel, dilation, stride, op):
    """Per-side padding (top, bottom, left, right) for 2-D kernel/dilation/stride tuples."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"[{op}] invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
        if any(s != 1 for s in stride):
            raise ValueError(f"[{op}] padding='same' is not supported for strided convolutions")
        out = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            out += [total // 2, total - total // 2]  # the odd one goes after, as in PyTorch
        return tuple(out)
    ph, pw = padding
    return (ph, ph, pw, pw)


def _cacheable(v):
    return v is None or type(v) in (int, str) or (type(v) is tuple and all(type(x) is int for x in v))


def _by_value(table, values, extra, resolve):
    """resolve() answered by value: a layer passes the same geometry on every call, and resolving it
    anew (the _tuple calls and the per-side padding) was most of a batch-1 layer's Python. The key
    holds the values' types (True and 1, 1.0 and 1 compare equal but do not resolve alike); a value
    that may change in place (a list) is resolved on every call."""
    key = values + extra + tuple(map(type, values))
    try:
        return table[key]
    except KeyError:
        pass
    except TypeError:  # unhashable: a list
        return resolve()
    args = resolve()
    if len(table) < 4096 and all(map(_cacheable, values)):
        table[key] = args
    return args


_CONV_ARGS = {}


def _conv_args(stride, padding, dilation, kernel, nd, op):
    """(stride, per-side padding, dilation) as the tuples the 2-D op takes; `kernel` (the weight's
    spatial shape) is only read for padding='same'."""
    def resolve():
        s, d = _tuple(stride, nd, "stride", op), _tuple(dilation, nd, "dilation", op)
        p = padding if isinstance(padding, str) else _tuple(padding, nd, "padding", op)
        k = kernel
        if nd == 1:
            s, d = (1,) + s, (1,) + d
            k = None if k is None else (1,) + k
            if not isinstance(p, str):
                p = (0,) + p
        return s, _conv_padding(p, k, d, s, op), d
    return _by_value(_CONV_ARGS, (stride, padding, dilation, kernel), (nd, op), resolve)


def _conv(input, weight, bias, stride, padding, dilation, groups, nd, op, relu=False):
    x, unbatched = (input, False) if input.dim() == nd + 2 else _unbatched(input, nd, op)
    if weight.dim() != nd + 2:
        raise RuntimeError(f"[{op}] expected a {nd + 2}-D weight, got shape {tuple(weight.shape)}")
    kernel = tuple(weight.shape[2:]) if isinstance(padding, str) else None
    stride, pads, dilation = _conv_args(stride, padding, dilation, kernel, nd, op)
    if nd == 1:
        x, weight = x.unsqueeze(2), weight.unsqueeze(2)
    y = _core._conv2d(x, weight, bias, stride, pads, dilation, int(groups), op, relu)
    if nd == 1:
        y = y.squeeze(2)
    return y.squeeze(0) if unbatched else y


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution over (N, C, H, W) or (C, H, W) input; weight (out, in/groups, kh, kw)."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution over (N, C, L) or (C, L) input; weight (out, in/groups, k)."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, nd, op):
    x, unbatched = _unbatched(input, nd, op)
    if weight.dim() != nd + 2:
        raise RuntimeError(f"[{op}] expected a {nd + 2}-D weight (in, out/groups, *kernel), got shape "
                           f"{tuple(weight.shape)}")
    if isinstance(padding, str):
        raise TypeError(f"[{op}] padding must be an int or a tuple of {nd} ints, got {padding!r} "
                        "(transposed convolutions take no 'same'/'valid')")
    stride, padding, output_padding, dilation = (_tuple(v, nd, name, op) for v, name in (
        (stride, "stride"), (padding, "padding"), (output_padding, "output_padding"), (dilation, "dilation")))
    if nd == 1:
        x, weight = x.unsqueeze(2), weight.unsqueeze(2)
        stride, padding, dilation = (1,) + stride, (0,) + padding, (1,) + dilation
        output_padding = (0,) + output_padding
    y = _core._conv_transpose2d(x, weight, bias, list(stride), list(padding), list(output_padding), list(dilation),
                                int(groups), op)
    if nd == 1:
        y = y.squeeze(2)
    return y.squeeze(0) if unbatched else y


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 2-D convolution (the gradient of conv2d with respect to its input) over (N, C, H, W)
    or (C, H, W) input; weight (in, out/groups, kh, kw). Output height
    (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1, width likewise."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 2,
                           "conv_transpose2d")


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 1-D convolution over (N, C, L) or (C, L) input; weight (in, out/groups, k)."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 1,
                           "conv_transpose1d")


_POOL_ARGS = {}


def _pool_args(kernel_size, stride, padding, dilation, nd, op):
    """(kernel, stride, padding, dilation) as the tuples the 2-D pooling ops take, answered by value
    like _conv_args."""
    def resolve():
        k = _tuple(kernel_size, nd, "kernel_size", op)
        empty = stride is None or (not isinstance(stride, int) and len(stride) == 0)
        s = k if empty else _tuple(stride, nd, "stride", op)
        p = _tuple(padding, nd, "padding", op)
        d = _tuple(dilation, nd, "dilation", op)
        if nd == 1:
            k, s, p, d = (1,) + k, (1,) + s, (0,) + p, (1,) + d
        return k, s, p, d
    return _by_value(_POOL_ARGS, (kernel_size, stride, padding, dilation), (nd, op), resolve)


def _check_pool_input(input, nd, op):
    if input.dim() not in (nd + 1, nd + 2):
        kind = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
        raise RuntimeError(f"[{op}] expected {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input {kind}, "
                           f"got shape {tuple(input.shape)}")


def _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, nd, op):
    args = _pool_args(kernel_size, stride, padding, dilation, nd, op)
    if input.dim() != nd + 2:
        _check_pool_input(input, nd, op)
    if nd == 2:
        return _core._max_pool2d(input, *args, bool(ceil_mode), bool(return_indices), op)
    r = _core._max_pool2d(input.unsqueeze(-2), *args, bool(ceil_mode), bool(return_indices), op)  # unit height
    return (r[0].squeeze(-2), r[1].squeeze(-2)) if return_indices else r.squeeze(-2)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2, "max_pool2d")


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1, "max_pool1d")


def _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, nd, op):
    _check_pool_input(input, nd, op)
    k, s, p, _ = _pool_args(kernel_size, stride, padding, 1, nd, op)
    if divisor_override is not None and divisor_override <= 0:
        raise RuntimeError(f"[{op}] divisor must be not zero, got {divisor_override}")
    x = input if nd == 2 else input.unsqueeze(-2)
    y = _core._avg_pool2d(x, k, s, p, bool(ceil_mode), bool(count_include_pad), int(divisor_override or 0), op)
    return y if nd == 2 else y.squeeze(-2)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 2,
                     "avg_pool2d")


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1, "avg_pool1d")


def _adaptive(input, output_size, nd, op):
    _check_pool_input(input, nd, op)
    x = input if nd == 2 else input.unsqueeze(-2)
    size = (output_size,) * nd if isinstance(output_size, int) or output_size is None else tuple(output_size)
    if len(size) != nd:
        raise ValueError(f"[{op}] output_size must have {nd} elements, got {output_size}")
    size = tuple(input.shape[-nd + i] if s is None else int(s) for i, s in enumerate(size))
    if nd == 1:
        size = (1,) + size
    y = _core._adaptive_avg_pool2d(x, size[0], size[1], op)
    return y if nd == 2 else y.squeeze(-2)


def adaptive_avg_pool2d(input, output_size):
    return _adaptive(input, output_size, 2, "adaptive_avg_pool2d")


def adaptive_avg_pool1d(input, output_size):
    return _adaptive(input, output_size, 1, "adaptive_avg_pool1d")
