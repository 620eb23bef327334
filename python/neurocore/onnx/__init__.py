"""``neurocore.onnx``: models in and out of ONNX, on the ``onnx`` package (format, checker, shape
inference, version converter).

    model = nc.onnx.load("model.onnx")          # an nn.Module with Parameters; trains with neurocore.optim
"""
from ._common import OnnxError, UnsupportedOperatorError
from ._load import OnnxModule, load

__all__ = ["load", "OnnxModule", "OnnxError", "UnsupportedOperatorError"]
