"""Inference fusion inside Sequential.

With autograd off, a convolution or a Linear layer directly followed by a ReLU runs as one kernel
call: the ReLU is applied in the convolution's or the GEMM's store instead of in a second pass over
the output, as inference engines fuse them, and Dropout in eval mode (the identity) is not called
at all. Only plain modules
take part (exact classes, no hooks), so what a user can observe does not change; with autograd on,
every module runs as usual.
"""
from .. import _core
from .activation import ReLU
from .conv import Conv1d, Conv2d
from .dropout import Dropout
from .linear import Identity, Linear, _weight_and_bias


def _plain(module):
    return not module._forward_hooks and not module._forward_pre_hooks


def _fuses(first, second):
    return type(first) in (Conv1d, Conv2d, Linear) and type(second) is ReLU and _plain(first) and _plain(second)


def _linear_relu(linear, input):
    """relu(linear(input)) as one call: the same GEMM with the ReLU in its store (same values)."""
    weight, bias = _weight_and_bias(linear)
    return _core._linear_act(input, weight, bias, "relu")


def _is_identity(module):
    return (type(module) is Identity or (type(module) is Dropout and not module.training)) and _plain(module)


def run_sequence(modules, input):
    """Applies `modules` in order to `input`, fusing Conv+ReLU and Linear+ReLU pairs when autograd is off."""
    if _core.is_grad_enabled():
        for module in modules:
            input = module(input)
        return input
    i, n = 0, len(modules)
    while i < n:
        if _is_identity(modules[i]):
            i += 1
        elif i + 1 < n and _fuses(modules[i], modules[i + 1]):
            first = modules[i]
            input = _linear_relu(first, input) if type(first) is Linear else first._conv_forward(input, relu=True)
            i += 2
        else:
            input = modules[i](input)
            i += 1
    return input
