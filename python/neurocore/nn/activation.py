"""Activation layers (each a constructor and a one-line forward)."""
from .. import _core, _math, _reduce
from .._creation import empty
from . import _activation_functional as _act
from . import init
from .module import Module
from .parameter import Parameter


def _inplace_str(inplace, first=False):
    if not inplace:
        return ""
    return "inplace=True" if first else ", inplace=True"


class ReLU(Module):
    """max(0, x). Args: inplace (default False)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return input.relu_() if self.inplace else _core.relu(input)

    def extra_repr(self):
        return _inplace_str(self.inplace, first=True)


class LeakyReLU(Module):
    """x if x > 0 else negative_slope * x. Defaults: negative_slope=0.01, inplace=False."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return _math.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}{_inplace_str(self.inplace)}"


class ELU(Module):
    """x if x > 0 else alpha * (exp(x) - 1). Defaults: alpha=1.0, inplace=False."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return _math.elu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}{_inplace_str(self.inplace)}"


class SELU(Module):
    """scale * elu(x, alpha) with the self-normalising constants. Default: inplace=False."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return _math.selu(input, self.inplace)

    def extra_repr(self):
        return _inplace_str(self.inplace, first=True)


class GELU(Module):
    """x * Phi(x); approximate='tanh' uses the tanh formula. Default: approximate='none'."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return _core.gelu(input, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x * sigmoid(x). Default: inplace=False."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return _math.silu(input, self.inplace)

    def extra_repr(self):
        return _inplace_str(self.inplace, first=True)


class Mish(Module):
    """x * tanh(softplus(x)). Default: inplace=False."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return _math.mish(input, self.inplace)

    def extra_repr(self):
        return _inplace_str(self.inplace, first=True)


class Softplus(Module):
    """log(1 + exp(beta x)) / beta, linear above threshold. Defaults: beta=1.0, threshold=20.0."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return _core.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    """clamp(x, min_val, max_val). Defaults: min_val=-1.0, max_val=1.0, inplace=False."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        if max_val <= min_val:
            raise ValueError(f"[Hardtanh] max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input):
        return _math.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace_str(self.inplace)}"


class ReLU6(Hardtanh):
    """min(max(0, x), 6). Default: inplace=False."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return _inplace_str(self.inplace, first=True)


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    def forward(self, input):
        return _core.sigmoid(input)


class Tanh(Module):
    """Hyperbolic tangent."""

    def forward(self, input):
        return _core.tanh(input)


class Softmax(Module):
    """exp(x) / sum(exp(x)) along dim. Default: dim=None (PyTorch's legacy choice)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return _reduce.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along dim, computed stably. Default: dim=None."""

    def forward(self, input):
        return _reduce.log_softmax(input, self.dim)


class PReLU(Module):
    """x if x > 0 else a * x with a learned slope ``weight`` of shape (num_parameters,): 1 shared slope
    or one per channel (dim 1). Defaults: num_parameters=1, init=0.25."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(empty(num_parameters, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self):
        init.constant_(self.weight, self.init)

    def forward(self, input):
        return _act.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class Hardswish(Module):
    """x * relu6(x + 3) / 6. Default: inplace=False (not shown in the repr, as in PyTorch)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return _act.hardswish(input, self.inplace)


class Hardsigmoid(Hardswish):
    """relu6(x + 3) / 6. Default: inplace=False (not shown in the repr, as in PyTorch)."""

    def forward(self, input):
        return _act.hardsigmoid(input, self.inplace)


class LogSigmoid(Module):
    """log(sigmoid(x)), stable for large |x|."""

    def forward(self, input):
        return _act.logsigmoid(input)


class Softmin(Softmax):
    """softmax(-x) along dim. Default: dim=None."""

    def forward(self, input):
        return _act.softmin(input, self.dim)


class Softmax2d(Module):
    """Softmax over the channels (dim -3) of (N, C, H, W) or (C, H, W) input."""

    def forward(self, input):
        if input.dim() not in (3, 4):
            raise ValueError(f"[Softmax2d] expected 3D or 4D input (got {input.dim()}D input of shape "
                             f"{tuple(input.shape)})")
        return _reduce.softmax(input, -3)


class Softsign(Module):
    """x / (1 + |x|)."""

    def forward(self, input):
        return _act.softsign(input)


class Tanhshrink(Module):
    """x - tanh(x)."""

    def forward(self, input):
        return _act.tanhshrink(input)


class Threshold(Module):
    """x if x > threshold else value. Args: threshold, value, inplace (default False)."""

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):
        return _act.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}{_inplace_str(self.inplace)}"


class CELU(Module):
    """x if x > 0 else alpha * (exp(x / alpha) - 1). Defaults: alpha=1.0, inplace=False."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return _act.celu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}{_inplace_str(self.inplace)}"


class GLU(Module):
    """a * sigmoid(b) for the two halves a, b of the input along dim. Default: dim=-1."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return _act.glu(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Hardshrink(Module):
    """x if |x| > lambd else 0. Default: lambd=0.5."""

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, input):
        return _act.hardshrink(input, self.lambd)

    def extra_repr(self):
        return f"{self.lambd}"


class Softshrink(Hardshrink):
    """x - lambd above lambd, x + lambd below -lambd, else 0. Default: lambd=0.5."""

    def forward(self, input):
        return _act.softshrink(input, self.lambd)
