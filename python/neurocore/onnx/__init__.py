"""``neurocore.onnx``: models in and out of ONNX, on the ``onnx`` package (format, checker, shape
inference, version converter).

    model = nc.onnx.load("model.onnx")          # an nn.Module with Parameters; trains with neurocore.optim
    nc.onnx.export(model, None, "tuned.onnx")   # a loaded model goes back with its current weights
    nc.onnx.export(model, x, "model.onnx", input_names=["x"], dynamic_axes={"x": {0: "batch"}})
"""
from ._common import OnnxError, UnsupportedOperatorError
from ._export import export
from ._load import OnnxModule, load

__all__ = ["load", "export", "OnnxModule", "OnnxError", "UnsupportedOperatorError"]
