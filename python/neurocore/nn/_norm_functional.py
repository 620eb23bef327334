"""Functional group, instance and local response normalisation, composed of the fused batch-norm
op (which has its own backward) and elementwise ops, so autograd needs nothing new."""
from .. import _core
from .._indexing import pad
from .._tensor import no_grad


def _shape(input):
    return tuple(input.shape)


def _channel_view(param, ndim):
    """A per-channel (C,) tensor shaped (1, C, 1, ...) to broadcast over (N, C, *) input."""
    return param.reshape((1, -1) + (1,) * (ndim - 2))


def _affine(out, weight, bias):
    if weight is not None:
        out = out * _channel_view(weight, out.ndim)
    if bias is not None:
        out = out + _channel_view(bias, out.ndim)
    return out


def _check_params(op, input, channels, weight, bias):
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and (p.ndim != 1 or p.shape[0] != channels):
            raise RuntimeError(f"[{op}] expected {name} of shape ({channels},) for input of shape {_shape(input)}, "
                               f"got {tuple(p.shape)}")


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalises each sample's channels in `num_groups` groups (mean and biased variance over the
    group's channels and all spatial positions), then applies the per-channel weight and bias."""
    if input.ndim < 2:
        raise RuntimeError(f"[group_norm] expected at least 2 dimensions for input tensor but received "
                           f"{input.ndim} (shape {_shape(input)})")
    n, c = input.shape[0], input.shape[1]
    if num_groups <= 0 or c % num_groups:
        raise RuntimeError(f"[group_norm] expected number of channels in input to be divisible by num_groups, "
                           f"but got input of shape {_shape(input)} and num_groups={num_groups}")
    _check_params("group_norm", input, c, weight, bias)
    # PyTorch's check: a (N*C/G, G, *spatial) "batch" of a single value is refused.
    if input.numel() and input.numel() // num_groups == 1:
        raise ValueError(f"[group_norm] expected more than 1 value per channel when training, got input size "
                         f"{_shape(input)} with num_groups={num_groups}")
    # Each (sample, group) is one channel of a (1, N*G, group_size) batch norm in training mode.
    grouped = input.reshape(1, n * num_groups, -1)
    out = _core._batch_norm(grouped, None, None, None, None, True, 0.0, eps).reshape(_shape(input))
    return _affine(out, weight, bias)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Normalises each (sample, channel) of (N, C, *) input over its spatial positions. With
    use_input_stats=False the running statistics are used instead; with use_input_stats and running
    statistics given, these are updated with the mean over the batch of the per-instance statistics
    (the unbiased variance), as in PyTorch."""
    if input.ndim < 3:
        raise ValueError(f"[instance_norm] expected input of shape (N, C, *) with at least one spatial dim, "
                         f"got shape {_shape(input)}")
    n, c = input.shape[0], input.shape[1]
    if use_input_stats and input.numel() and input.numel() // (n * c) == 1:
        raise ValueError(f"[instance_norm] expected more than 1 spatial element when training, got input size "
                         f"{_shape(input)}")
    if not use_input_stats and (running_mean is None or running_var is None):
        raise RuntimeError("[instance_norm] running_mean and running_var must be given when use_input_stats=False")
    _check_params("instance_norm", input, c, weight, bias)
    for name, s in (("running_mean", running_mean), ("running_var", running_var)):
        if s is not None and tuple(s.shape) != (c,):
            raise RuntimeError(f"[instance_norm] expected {name} of shape ({c},) for input of shape {_shape(input)}, "
                               f"got {tuple(s.shape)}")
    # Each (sample, channel) is one channel of a (1, N*C, *) batch norm; the running statistics are
    # repeated per sample, updated there, and averaged back over the batch.
    mean_rep = running_mean.repeat(n) if running_mean is not None else None
    var_rep = running_var.repeat(n) if running_var is not None else None
    flat = input.reshape((1, n * c) + _shape(input)[2:])
    out = _core._batch_norm(flat, mean_rep, var_rep, None, None, use_input_stats, momentum, eps)
    if use_input_stats and running_mean is not None:
        with no_grad():
            running_mean.copy_(mean_rep.reshape(n, c).mean(0))
            running_var.copy_(var_rep.reshape(n, c).mean(0))
    return _affine(out.reshape(_shape(input)), weight, bias)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """input / (k + alpha/size * sum of input^2 over `size` neighbouring channels)^beta, the window
    centred on each channel (size//2 before, (size-1)//2 after, zero outside), as in PyTorch."""
    if input.ndim < 3:
        raise ValueError(f"[local_response_norm] expected 3D or higher dimensionality input (got {input.ndim} "
                         f"dimensions, shape {_shape(input)})")
    if size <= 0:
        raise ValueError(f"[local_response_norm] size must be positive, got {size}")
    if input.numel() == 0:
        return input
    c = input.shape[1]
    squares = input * input
    # Zero-pad the channel dim, then sum the `size` shifted channel windows.
    padded = pad(squares, (0, 0) * (input.ndim - 2) + (size // 2, (size - 1) // 2))
    window = _core.narrow(padded, 1, 0, c)
    for shift in range(1, size):
        window = window + _core.narrow(padded, 1, shift, c)
    return input / ((window / size) * alpha + k) ** beta
