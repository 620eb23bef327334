"""Conv1d, Conv2d, ConvTranspose1d and ConvTranspose2d with PyTorch's arguments, init, reprs and
state_dict keys."""
import math

from .._creation import empty
from . import init
from ._conv_functional import _conv, _conv_transpose, _tuple
from .linear import _weight_and_bias
from .module import Module
from .parameter import Parameter

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    _nd = 2
    _transposed = False  # weight (in, out/groups, *kernel) instead of (out, in/groups, *kernel)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        if groups <= 0:
            raise ValueError(f"[{name}] groups must be a positive integer, got {groups}")
        if in_channels % groups != 0:
            raise ValueError(f"[{name}] in_channels must be divisible by groups (in_channels={in_channels}, "
                             f"groups={groups})")
        if out_channels % groups != 0:
            raise ValueError(f"[{name}] out_channels must be divisible by groups (out_channels={out_channels}, "
                             f"groups={groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"[{name}] padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        if padding_mode != "zeros":
            raise NotImplementedError(f"[{name}] padding_mode={padding_mode!r} is not implemented; only 'zeros'")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _tuple(kernel_size, nd, "kernel_size", name)
        self.stride = _tuple(stride, nd, "stride", name)
        self.dilation = _tuple(dilation, nd, "dilation", name)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"[{name}] invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"[{name}] padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _tuple(padding, nd, "padding", name)
        self.output_padding = (0,) * nd
        self.transposed = self._transposed
        self.groups, self.padding_mode = groups, padding_mode
        if self._transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(empty(*shape, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return self._conv_forward(input)

    def _conv_forward(self, input, relu=False):
        params = self._parameters  # not self.weight: see _weight_and_bias
        try:
            weight, bias = params["weight"], params["bias"]
        except KeyError:
            weight, bias = _weight_and_bias(self)
        return _conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups,
                     self._nd, type(self).__name__, relu)

    def extra_repr(self):
        nd = self._nd
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W). Weight (out, in/groups, kh, kw), Kaiming-uniform init."""
    _nd = 2


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L). Weight (out, in/groups, k), Kaiming-uniform init."""
    _nd = 1


class _ConvTransposeNd(_ConvNd):
    """Transposed convolution: the gradient of a convolution with respect to its input, so each input
    position scatters weight-scaled copies of the kernel into the output. Output size per spatial dim:
    (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1; `output_size=` in
    forward picks output_padding to reach a given size (one of `stride` possible sizes).

    Args:
        in_channels, out_channels, kernel_size: as in the convolution it transposes.
        stride: spacing of the input positions in the output. Default: 1.
        padding: removed from both sides of the output (dilation * (kernel - 1) - padding is added to
            the input). Default: 0.
        output_padding: added at the end of each output dim; smaller than stride or dilation. Default: 0.
        groups: input and output channels split into this many independent groups. Default: 1.
        bias: add a learnable per-channel bias. Default: True.
        dilation: spacing of the kernel taps. Default: 1.
        padding_mode: only 'zeros', as in PyTorch. Default: 'zeros'.
    """
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        name = type(self).__name__
        if padding_mode != "zeros":
            raise ValueError(f'[{name}] Only "zeros" padding mode is supported for {name}, got {padding_mode!r}')
        if isinstance(padding, str):
            raise ValueError(f"[{name}] padding must be an int or a tuple of {self._nd} ints, got {padding!r} "
                             "(transposed convolutions take no 'same'/'valid')")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        self.output_padding = _tuple(output_padding, self._nd, "output_padding", name)

    def _output_padding(self, input, output_size):
        """self.output_padding, or the one giving `output_size` (spatial sizes, optionally preceded by
        the batch and channel sizes), with PyTorch's checks."""
        if output_size is None:
            return self.output_padding
        nd, name = self._nd, type(self).__name__
        non_spatial = 2 if input.dim() == nd + 2 else 1
        output_size = list(output_size)
        if len(output_size) == non_spatial + nd:
            output_size = output_size[non_spatial:]
        if len(output_size) != nd:
            raise ValueError(f"[{name}] ConvTranspose{nd}D: for {input.dim()}D input, output_size must have {nd} "
                             f"or {non_spatial + nd} elements (got {len(output_size)})")
        min_sizes = [(input.shape[d + non_spatial] - 1) * self.stride[d] - 2 * self.padding[d]
                     + self.dilation[d] * (self.kernel_size[d] - 1) + 1 for d in range(nd)]
        max_sizes = [m + s - 1 for m, s in zip(min_sizes, self.stride)]
        for size, lo, hi in zip(output_size, min_sizes, max_sizes):
            if size < lo or size > hi:
                raise ValueError(f"[{name}] requested an output size of {output_size}, but valid sizes range "
                                 f"from {min_sizes} to {max_sizes} (for an input of {tuple(input.shape[2:])})")
        return tuple(int(size) - lo for size, lo in zip(output_size, min_sizes))

    def forward(self, input, output_size=None):
        return _conv_transpose(input, self.weight, self.bias, self.stride, self.padding,
                               self._output_padding(input, output_size), self.groups, self.dilation, self._nd,
                               type(self).__name__)


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution over (N, C, H, W). Weight (in, out/groups, kh, kw), Kaiming-uniform
    init with fan_in = out/groups * kh * kw, as in PyTorch."""
    _nd = 2


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution over (N, C, L). Weight (in, out/groups, k)."""
    _nd = 1
