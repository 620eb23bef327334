"""``F.interpolate`` and the ``Upsample`` layers.

Each spatial dimension is resampled in turn, innermost first, as a weighted sum of gathered
slices (one for nearest, two for linear, four for cubic), with PyTorch's source indices and weights
(aten/src/ATen/native/UpSample.h) computed in the input's precision: nearest in float32 as there,
the others in float32 for float32 inputs and float64 for float64. Gradients come from the gathers'
and products' backward. An upsampling by a whole factor whose nearest indices are j // k repeats
the slices by a broadcast instead of gathering them.
"""
import math
import numbers

import numpy as np

from .. import _core
from .._tensor import tensor
from .._indexing import index_select
from .module import Module

_SPATIAL = {"linear": (1,), "bilinear": (2,), "bicubic": (2,), "trilinear": (3,),
            "nearest": (1, 2, 3), "nearest-exact": (1, 2, 3), "area": (1, 2)}
_CUBIC_A = -0.75


def _per_dim(value, spatial, what):
    if isinstance(value, (list, tuple)):
        if len(value) != spatial:
            raise ValueError(f"[interpolate] {what} {tuple(value)} must have {spatial} elements for "
                             f"{spatial} spatial dimensions")
        return list(value)
    return [value] * spatial


def _sizes_and_scales(input, size, scale_factor, recompute_scale_factor, spatial):
    """The output sizes, and the scale factors the index formulas use (None: in/out)."""
    if (size is None) == (scale_factor is None):
        raise ValueError("[interpolate] exactly one of size and scale_factor must be given")
    if size is not None:
        sizes = [int(s) for s in _per_dim(size, spatial, "size")]
        if any(s <= 0 for s in sizes):
            raise ValueError(f"[interpolate] output size {tuple(sizes)} must be positive "
                             f"(input shape {tuple(input.shape)})")
        return sizes, [None] * spatial
    scales = [float(s) for s in _per_dim(scale_factor, spatial, "scale_factor")]
    if any(not s > 0 for s in scales):
        raise ValueError(f"[interpolate] scale_factor {tuple(scales)} must be positive")
    sizes = [int(math.floor(float(n) * s)) for n, s in zip(input.shape[2:], scales)]
    if any(s <= 0 for s in sizes):
        raise ValueError(f"[interpolate] scale_factor {tuple(scales)} gives an empty output for input shape "
                         f"{tuple(input.shape)}")
    return sizes, [None] * spatial if recompute_scale_factor else scales


def _scale(ft, n_in, n_out, scale):
    """compute_scales_value: 1/scale_factor when one was given, else in/out, in precision ft."""
    return ft(1.0 / scale) if scale is not None and scale > 0 else ft(n_in) / ft(n_out)


def _nearest(n_in, n_out, scale, exact):
    dst = np.arange(n_out, dtype=np.float32)
    if exact:
        src = np.floor((dst + np.float32(0.5)) * _scale(np.float32, n_in, n_out, scale))
    elif n_out == n_in:
        return np.arange(n_out), None
    elif n_out == 2 * n_in:
        src = np.arange(n_out) >> 1
    else:
        src = np.floor(dst * _scale(np.float32, n_in, n_out, scale))
    return np.minimum(src.astype(np.int64), n_in - 1), None


def _source(ft, n_in, n_out, scale, align_corners, cubic):
    """area_pixel_compute_source_index for every output index, in precision ft."""
    dst = np.arange(n_out, dtype=ft)
    if align_corners:
        s = ft(n_in - 1) / ft(n_out - 1) if n_out > 1 else ft(0)
        return s * dst
    src = _scale(ft, n_in, n_out, scale) * (dst + ft(0.5)) - ft(0.5)
    return src if cubic else np.maximum(src, ft(0))


def _linear(ft, n_in, n_out, scale, align_corners):
    src = _source(ft, n_in, n_out, scale, align_corners, False)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = i0 + (i0 < n_in - 1)
    l1 = np.clip(src - i0.astype(ft), ft(0), ft(1))
    return [i0, i1], [ft(1) - l1, l1]


def _cubic(ft, n_in, n_out, scale, align_corners):
    src = _source(ft, n_in, n_out, scale, align_corners, True)
    i = np.floor(src)
    t = src - i
    a = ft(_CUBIC_A)

    def near(x):  # |x| <= 1
        return ((a + ft(2)) * x - (a + ft(3))) * x * x + ft(1)

    def far(x):  # 1 < |x| < 2
        return ((a * x - ft(5) * a) * x + ft(8) * a) * x - ft(4) * a
    weights = [far(t + ft(1)), near(t), near(ft(1) - t), far((ft(1) - t) + ft(1))]
    base = i.astype(np.int64) - 1
    return [np.clip(base + j, 0, n_in - 1) for j in range(4)], weights


def _along(x, dim, indices, weights, dtype):
    """sum_t gather(x, dim, indices[t]) * weights[t], the weights varying along dim."""
    n_in = x.shape[dim]
    if weights is None:
        idx = indices
        if len(idx) == n_in and np.array_equal(idx, np.arange(n_in)):
            return x
        k = len(idx) // n_in
        if len(idx) == k * n_in and np.array_equal(idx, np.arange(len(idx)) // k):
            shape = list(x.shape)
            rep = shape[:dim + 1] + [k] + shape[dim + 1:]
            out = shape[:dim] + [shape[dim] * k] + shape[dim + 1:]
            return x.unsqueeze(dim + 1).expand(*rep).reshape(*out)
        return index_select(x, dim, tensor(idx))
    bshape = [1] * x.ndim
    bshape[dim] = len(indices[0])
    out = None
    for idx, w in zip(indices, weights):
        term = index_select(x, dim, tensor(idx)) * tensor(np.ascontiguousarray(w.reshape(bshape)), dtype=dtype)
        out = term if out is None else out + term
    return out


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    if mode not in _SPATIAL:
        raise ValueError(f"[interpolate] mode {mode!r} is not supported; choose from {', '.join(_SPATIAL)}")
    spatial = input.ndim - 2
    if spatial not in _SPATIAL[mode]:
        dims = " or ".join(f"{d + 2}-D" for d in _SPATIAL[mode])
        raise ValueError(f"[interpolate] mode {mode!r} expects a {dims} input (batch, channels, spatial...), "
                         f"got shape {tuple(input.shape)}")
    if align_corners is not None and mode in ("nearest", "nearest-exact", "area"):
        raise ValueError(f"[interpolate] align_corners option can only be set with the interpolating modes: "
                         f"linear | bilinear | bicubic | trilinear (got mode {mode!r})")
    if antialias:
        raise ValueError("[interpolate] antialias=True is not supported")
    if input.dtype not in (_core.dtype.float32, _core.dtype.float64):
        raise TypeError(f"[interpolate] expects a float32 or float64 input, got {input.dtype}")
    sizes, scales = _sizes_and_scales(input, size, scale_factor, recompute_scale_factor, spatial)
    if mode == "area":
        from ._conv_functional import adaptive_avg_pool1d, adaptive_avg_pool2d
        return (adaptive_avg_pool1d if spatial == 1 else adaptive_avg_pool2d)(input, sizes[0] if spatial == 1 else sizes)
    ft = np.float64 if input.dtype == _core.dtype.float64 else np.float32
    out = input
    for d in reversed(range(spatial)):  # innermost first, as PyTorch's kernels sum
        dim, n_in, n_out, scale = d + 2, input.shape[d + 2], sizes[d], scales[d]
        if mode in ("nearest", "nearest-exact"):
            indices, weights = _nearest(n_in, n_out, scale, mode == "nearest-exact")
        elif mode == "bicubic":
            indices, weights = _cubic(ft, n_in, n_out, scale, bool(align_corners))
        else:
            indices, weights = _linear(ft, n_in, n_out, scale, bool(align_corners))
        out = _along(out, dim, indices, weights, input.dtype)
    return out


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, "nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, "bilinear", align_corners=True)


class Upsample(Module):
    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size = size
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, numbers.Real) else (
            tuple(float(s) for s in scale_factor) if scale_factor is not None else None)
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self):
        what = f"scale_factor={self.scale_factor}" if self.scale_factor is not None else f"size={self.size}"
        return f"{what}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
