"""``neurocore.nn.modules.activation``: the classes PyTorch defines in ``torch.nn.modules.activation``."""
from ..activation import (ReLU, LeakyReLU, ELU, SELU, GELU, SiLU, Mish, Softplus, Hardtanh, ReLU6,  # noqa: F401
                          Sigmoid, Tanh, Softmax, LogSoftmax, PReLU, Hardswish, Hardsigmoid, LogSigmoid, Softmin,
                          Softmax2d, Softsign, Tanhshrink, Threshold, CELU, GLU, Hardshrink, Softshrink)
from ..attention import MultiheadAttention  # noqa: F401 - PyTorch defines it in nn/modules/activation.py

__all__ = ["ReLU", "LeakyReLU", "ELU", "SELU", "GELU", "SiLU", "Mish", "Softplus", "Hardtanh", "ReLU6", "Sigmoid",
           "Tanh", "Softmax", "LogSoftmax", "MultiheadAttention", "PReLU", "Hardswish", "Hardsigmoid", "LogSigmoid",
           "Softmin", "Softmax2d", "Softsign", "Tanhshrink", "Threshold", "CELU", "GLU", "Hardshrink", "Softshrink"]
