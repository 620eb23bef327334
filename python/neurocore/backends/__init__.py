"""``nc.backends``: PyTorch's backend flags that CPU code sets (``cudnn.benchmark = True``,
``cuda.matmul.allow_tf32``, ``mps.is_available()``). They are plain attributes that change
nothing: neurocore's kernels are deterministic and run in float32 or float64 only."""
from . import cudnn, cuda, mps, mkldnn, openmp  # noqa: F401
