"""F.interpolate and the Upsample layers against PyTorch (values and gradients, every mode, size and
scale factors, align_corners), finite differences, known values, layers and errors."""
import numpy as np
import pytest

import neurocore as nc
import neurocore.nn as nn
import neurocore.nn.functional as F
from helpers import check_op, gradcheck, rand

SPATIAL = {"nearest": (3, 4, 5), "nearest-exact": (4,), "linear": (3,), "bilinear": (4,), "trilinear": (5,),
           "bicubic": (4,), "area": (3, 4)}
SIZES = [dict(scale_factor=2), dict(scale_factor=3), dict(scale_factor=0.5), dict(scale_factor=1.7), dict(size=7),
         dict(size=1), dict(scale_factor=2.5, recompute_scale_factor=True), dict(scale_factor=(2, 0.6))]
CASES = [(mode, nd, kw, ac) for mode, dims in SPATIAL.items() for nd in dims for kw in SIZES
         for ac in ([None] if mode in ("nearest", "nearest-exact", "area") else [False, True])
         if not (isinstance(kw.get("scale_factor"), tuple) and nd != 4)
         and not (mode == "area" and kw.get("scale_factor") in (1.7, 2.5))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode,nd,kw,ac", CASES)
def test_interpolate_matches_torch(mode, nd, kw, ac, dtype):
    x = rand((2, 3, 5, 6, 4)[:nd], dtype, seed=nd)
    check_op(lambda t, a: t.nn.functional.interpolate(a, mode=mode, align_corners=ac, **kw),
             lambda n, a: F.interpolate(a, mode=mode, align_corners=ac, **kw), [x], dtype=dtype)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "nearest"])
def test_interpolate_finite_differences(mode):
    ac = None if mode == "nearest" else False
    gradcheck(lambda a: F.interpolate(a, size=(4, 5), mode=mode, align_corners=ac), [rand((1, 2, 3, 3))])


def test_known_values():
    x = nc.tensor(np.array([[[0.0, 1.0, 3.0]]]))
    np.testing.assert_array_equal(F.interpolate(x, scale_factor=2).numpy(), [[[0, 0, 1, 1, 3, 3]]])
    # align_corners: the ends map to the ends, 5 points over [0, 2] of the input
    np.testing.assert_allclose(F.interpolate(x, size=5, mode="linear", align_corners=True).numpy(),
                               [[[0, 0.5, 1, 2, 3]]])
    # half-pixel centres: output i reads input (i + 0.5) / 2 - 0.5, clamped at 0
    np.testing.assert_allclose(F.interpolate(x, scale_factor=2, mode="linear").numpy(),
                               [[[0, 0.25, 0.75, 1.5, 2.5, 3]]])


def test_upsample_layers():
    x = nc.tensor(rand((1, 2, 3, 4), np.float32))
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    assert tuple(up(x).shape) == (1, 2, 6, 8)
    assert "scale_factor=2.0" in repr(up) and "bilinear" in repr(up)
    np.testing.assert_array_equal(nn.UpsamplingNearest2d(scale_factor=2)(x).numpy(),
                                  F.interpolate(x, scale_factor=2).numpy())
    np.testing.assert_array_equal(nn.UpsamplingBilinear2d(size=(5, 7))(x).numpy(),
                                  F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=True).numpy())
    assert nn.modules.upsampling.Upsample is nn.Upsample
    net = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(2, 1, 3, padding=1))
    net(x).sum().backward()
    assert net[1].weight.grad is not None


def test_errors_name_the_op_and_shapes():
    x = nc.tensor(rand((1, 2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"\[interpolate\].*exactly one"):
        F.interpolate(x)
    with pytest.raises(ValueError, match=r"\[interpolate\].*'linear'.*3-D.*\(1, 2, 3, 4\)"):
        F.interpolate(x, scale_factor=2, mode="linear")
    with pytest.raises(ValueError, match=r"\[interpolate\].*size \(2, 3, 4\).*2 elements"):
        F.interpolate(x, size=(2, 3, 4))
    with pytest.raises(ValueError, match=r"\[interpolate\].*align_corners"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match=r"\[interpolate\].*empty output"):
        F.interpolate(x, scale_factor=0.1)
    with pytest.raises(ValueError, match=r"\[interpolate\].*mode 'cubic'"):
        F.interpolate(x, scale_factor=2, mode="cubic")
