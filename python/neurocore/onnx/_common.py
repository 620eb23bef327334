"""Shared pieces of ONNX import and export: the error types, the supported opset range and the
mapping between ONNX element types and neurocore/NumPy dtypes."""
import numpy as np

from .._tensor import bool_, float32, float64, int64

IMPORT_OPSETS = (13, 21)  # default-domain opsets nc.onnx.load runs (others go through the version converter)
EXPORT_OPSETS = (17, 23)  # opsets nc.onnx.export writes (23: Attention, RMSNormalization)


class OnnxError(ValueError):
    """A model that neurocore cannot read, run or write as ONNX; the message names the node, op and shapes."""


class UnsupportedOperatorError(OnnxError):
    """The model uses operators that neurocore does not implement (all of them are listed)."""


def require_onnx(what):
    """The onnx package, imported on first use (``import neurocore`` does not need it)."""
    try:
        import onnx
    except ImportError:
        raise ImportError(f"[{what}] needs the 'onnx' package: pip install onnx") from None
    return onnx


# neurocore computes in float32/float64/int64/bool: other ONNX element types are widened (float16 ->
# float32, int32 -> int64) when they become tensors.
def numpy_dtype(elem_type):
    """The NumPy dtype of an ONNX TensorProto element type."""
    return require_onnx("onnx").helper.tensor_dtype_to_np_dtype(elem_type)


def nc_dtype_of_numpy(dtype):
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        return float64
    if dtype.kind == "f":
        return float32
    if dtype == np.bool_:
        return bool_
    if dtype.kind in "iu":
        return int64
    raise OnnxError(f"[onnx] tensors of type {dtype} have no neurocore dtype")


def numpy_of_nc_dtype(dtype):
    return {float32: np.float32, float64: np.float64, int64: np.int64, bool_: np.bool_}[dtype]

