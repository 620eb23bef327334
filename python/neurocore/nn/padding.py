"""Padding layers (``torch.nn.modules.padding``): constant/zero, reflection, replication and circular
padding of the last 1, 2 or 3 dims, each a thin module over ``F.pad`` with PyTorch's padding tuple."""
import numbers

from .._indexing import pad
from .module import Module


def _padding_tuple(padding, dims, layer):
    """An int pads every side; otherwise (left, right[, top, bottom[, front, back]]) for `dims` dims."""
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        return (int(padding),) * (2 * dims)
    padding = tuple(int(p) for p in padding)
    if len(padding) != 2 * dims:
        raise ValueError(f"[{layer}] padding must be an int or a tuple of {2 * dims} ints, got {padding}")
    return padding


class _PadNd(Module):
    """Shared by every padding layer: `mode` and `dims` come from the subclass."""
    mode, dims = "constant", 1

    def __init__(self, padding):
        super().__init__()
        self.padding = _padding_tuple(padding, self.dims, type(self).__name__)

    def forward(self, input):
        return pad(input, self.padding, self.mode)

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return pad(input, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pads the last dim with `value`: padding is an int or (left, right)."""
    dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pads the last 2 dims with `value`: padding is an int or (left, right, top, bottom)."""
    dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pads the last 3 dims with `value`: padding is an int or (left, right, top, bottom, front, back)."""
    dims = 3


class ZeroPad1d(ConstantPad1d):
    """Pads the last dim with zeros: padding is an int or (left, right)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pads the last 2 dims with zeros: padding is an int or (left, right, top, bottom)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    """Pads the last 3 dims with zeros: padding is an int or (left, right, top, bottom, front, back)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """Mirrors (C, W) / (N, C, W) input at its edges, without repeating the edge element."""
    mode, dims = "reflect", 1


class ReflectionPad2d(_PadNd):
    """Mirrors (C, H, W) / (N, C, H, W) input at its edges, without repeating the edge element."""
    mode, dims = "reflect", 2


class ReflectionPad3d(_PadNd):
    """Mirrors (C, D, H, W) / (N, C, D, H, W) input at its edges, without repeating the edge element."""
    mode, dims = "reflect", 3


class ReplicationPad1d(_PadNd):
    """Repeats the edge element of (C, W) / (N, C, W) input."""
    mode, dims = "replicate", 1


class ReplicationPad2d(_PadNd):
    """Repeats the edge elements of (C, H, W) / (N, C, H, W) input."""
    mode, dims = "replicate", 2


class ReplicationPad3d(_PadNd):
    """Repeats the edge elements of (C, D, H, W) / (N, C, D, H, W) input."""
    mode, dims = "replicate", 3


class _CircularPadNd(_PadNd):
    mode = "circular"

    def forward(self, input):
        # PyTorch's circular layers check the rank themselves (with this message) before F.pad.
        if input.dim() not in (self.dims + 1, self.dims + 2):
            raise ValueError(f"[{type(self).__name__}] expected {self.dims + 1}D or {self.dims + 2}D input "
                             f"(got {input.dim()}D input of shape {tuple(input.shape)})")
        return super().forward(input)


class CircularPad1d(_CircularPadNd):
    """Wraps (C, W) / (N, C, W) input around: the left pad is the right end of the input."""
    dims = 1


class CircularPad2d(_CircularPadNd):
    """Wraps (C, H, W) / (N, C, H, W) input around in both spatial dims."""
    dims = 2


class CircularPad3d(_CircularPadNd):
    """Wraps (C, D, H, W) / (N, C, D, H, W) input around in all three spatial dims."""
    dims = 3


__all__ = ["CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
           "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
           "ReplicationPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d"]
