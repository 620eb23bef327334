"""PixelShuffle / PixelUnshuffle (and F. forms) against PyTorch, and the channel dropouts Dropout1d /
Dropout3d: masks, scaling, unbatched input, reprs, finite differences and errors."""
import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from neurocore.nn import functional as F
from helpers import check_op, gradcheck, rand, require_torch


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,r", [((2, 8, 3, 2), 2), ((9, 2, 3), 3), ((2, 1, 4, 2, 1), 2), ((1, 5, 2, 3), 1)])
def test_pixel_shuffle_vs_torch(shape, r, dtype):
    check_op(lambda t, x: t.nn.functional.pixel_shuffle(x, r), lambda nc, x: F.pixel_shuffle(x, r),
             [rand(shape, seed=1)], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,r", [((2, 2, 4, 6), 2), ((1, 6, 3), 3), ((2, 1, 3, 4, 2), 2)])
def test_pixel_unshuffle_vs_torch(shape, r, dtype):
    check_op(lambda t, x: t.nn.functional.pixel_unshuffle(x, r), lambda nc, x: F.pixel_unshuffle(x, r),
             [rand(shape, seed=2)], dtype)


def test_pixel_shuffle_modules_roundtrip_and_gradcheck():
    torch = require_torch()
    assert repr(nn.PixelShuffle(3)) == repr(torch.nn.PixelShuffle(3))
    assert repr(nn.PixelUnshuffle(2)) == repr(torch.nn.PixelUnshuffle(2))
    x = nc.tensor(rand((2, 12, 2, 3), np.float32, seed=3))
    assert np.array_equal(nn.PixelUnshuffle(2)(nn.PixelShuffle(2)(x)).numpy(), x.numpy())
    gradcheck(lambda x: F.pixel_shuffle(x, 2) * F.pixel_shuffle(x, 2).exp(), [rand((1, 4, 2, 2), seed=4)])


def test_pixel_shuffle_errors():
    with pytest.raises(RuntimeError, match=r"pixel_shuffle.*input.size\(-3\)=5 is not divisible by 4.*\(1, 5, 2, 2\)"):
        nn.PixelShuffle(2)(nc.zeros(1, 5, 2, 2))
    with pytest.raises(RuntimeError, match=r"pixel_unshuffle.*height \(3\).*divisible by downscale_factor \(2\)"):
        F.pixel_unshuffle(nc.zeros(1, 1, 3, 4), 2)
    with pytest.raises(RuntimeError, match=r"at least 3 dimensions.*\(4, 4\)"):
        F.pixel_shuffle(nc.zeros(4, 4), 2)
    with pytest.raises(ValueError, match="upscale_factor must be a positive int"):
        F.pixel_shuffle(nc.zeros(1, 4, 2, 2), 0)


@pytest.mark.parametrize("name,shape", [("Dropout1d", (6, 40, 7)), ("Dropout1d", (40, 7)),
                                        ("Dropout3d", (5, 40, 2, 3, 2)), ("Dropout3d", (40, 2, 3, 2))])
def test_channel_dropout_masks(name, shape):
    """Each channel is either all zero or all x / (1 - p); about p of the channels are dropped;
    eval mode is the identity; the gradient is the same mask."""
    torch = require_torch()
    m = getattr(nn, name)(0.25)
    assert repr(m) == repr(getattr(torch.nn, name)(0.25))
    x = nc.tensor(rand(shape, np.float32, seed=5, low=1, high=2), requires_grad=True)
    nc.manual_seed(0)
    y = m(x)
    y.sum().backward()
    batched = len(shape) in (3, 5)
    ratio = (y.detach().numpy() / x.detach().numpy()).reshape(tuple(shape[:2 if batched else 1]) + (-1,))
    assert np.allclose(ratio, ratio[..., :1]), "one mask value per channel"
    kept = ratio != 0
    assert np.allclose(ratio[kept], 1 / 0.75)
    assert 0.1 < np.mean(~kept[..., 0]) < 0.4
    assert np.allclose(x.grad.numpy().reshape(ratio.shape), ratio)
    m.eval()
    assert m(x) is x


def test_channel_dropout_errors_and_inplace():
    with pytest.raises(RuntimeError, match=r"dropout1d.*2D or 3D input.*4D input of shape \(1, 2, 3, 4\)"):
        F.dropout1d(nc.zeros(1, 2, 3, 4))
    with pytest.warns(UserWarning, match="dropout3d: Received a 3-D input"):
        F.dropout3d(nc.ones(2, 3, 4), 0.5)
    with pytest.raises(ValueError, match="dropout probability"):
        nn.Dropout3d(1.5)
    x = nc.ones(4, 6, 10)
    y = F.dropout1d(x, 0.5, True, inplace=True)
    assert y is x and set(np.unique(x.numpy())) <= {0.0, 2.0}


@pytest.mark.parametrize("name,shape", [("AlphaDropout", (400, 500)), ("FeatureAlphaDropout", (200, 1000, 2))])
def test_alpha_dropout_keeps_selu_statistics(name, shape):
    """Kept units are x * a + alpha * a * p, dropped ones the constant alpha * a * (p - 1) (PyTorch's
    formula, alpha = 1.7580993408473766); standard-normal input keeps mean 0 and variance 1."""
    torch = require_torch()
    p, alpha = 0.2, 1.7580993408473766
    a = ((alpha ** 2 * p + 1) * (1 - p)) ** -0.5
    m = getattr(nn, name)(p)
    assert repr(m) == repr(getattr(torch.nn, name)(p))
    x = np.random.default_rng(6).standard_normal(shape)
    nc.manual_seed(1)
    y = m(nc.tensor(x)).numpy()
    dropped = np.isclose(y, alpha * a * (p - 1), rtol=0, atol=1e-12)
    assert np.allclose(y[~dropped], x[~dropped] * a + alpha * a * p, rtol=1e-12)
    assert abs(dropped.mean() - p) < 0.02
    if name == "FeatureAlphaDropout":
        assert np.all(dropped == dropped[..., :1])  # one draw per (N, C)
    assert abs(y.mean()) < 0.02 and abs(y.var() - 1) < 0.03
    m.eval()
    assert np.array_equal(m(nc.tensor(x)).numpy(), x)
    assert np.array_equal(F.alpha_dropout(nc.tensor(x), 0.5).numpy(), x)  # training=False by default
    assert np.all(F.alpha_dropout(nc.tensor(x), 1.0, True).numpy() == 0)
