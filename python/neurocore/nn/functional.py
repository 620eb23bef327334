"""``neurocore.nn.functional``: the functional forms of layers, activations and losses."""
from .. import _core
from .._math import (relu, leaky_relu, elu, selu, gelu, silu, softplus, hardtanh, relu6, dropout,  # noqa: F401
                     sigmoid, tanh)
from .._reduce import softmax, log_softmax  # noqa: F401
from .._losses import (cross_entropy, nll_loss, mse_loss, l1_loss, huber_loss, smooth_l1_loss,  # noqa: F401
                       binary_cross_entropy, binary_cross_entropy_with_logits)
from ._conv_functional import (conv1d, conv2d, max_pool1d, max_pool2d, avg_pool1d, avg_pool2d,  # noqa: F401
                               adaptive_avg_pool1d, adaptive_avg_pool2d)


def linear(input, weight, bias=None):
    """input @ weight.T + bias (one fused call)."""
    return _core.linear(input, weight, bias)


def relu_(input):
    return input.relu_()


def one_hot(tensor, num_classes=-1):
    """(..., num_classes) int64 tensor with a 1 at each class index."""
    if tensor.dtype != _core.dtype.int64:
        raise TypeError(f"[one_hot] expected an int64 tensor of class indices, got {tensor.dtype}")
    if num_classes < 0:
        num_classes = int(tensor.max().item()) + 1 if tensor.numel() else 0
    shape = tuple(tensor.shape) + (num_classes,)
    index = tensor.unsqueeze(-1)
    ones = _core._full(tuple(index.shape), 1, _core.dtype.int64)
    return _core._scatter_add_new(shape, -1, index, ones)


def normalize(input, p=2.0, dim=1, eps=1e-12):
    norm = (input.abs() ** p).sum(dim=dim, keepdim=True) ** (1.0 / p)
    return input / norm.clamp_min(eps)
