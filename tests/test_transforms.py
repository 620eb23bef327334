"""neurocore.transforms: the affine resampler against PyTorch's grid_sample / interpolate (the
formulas torchvision's rotate, flips and resize use), per-image draws, repeatability from
nc.manual_seed, and the Keras augmentation layers."""
import math

import numpy as np
import pytest

import neurocore as nc
from neurocore import keras, transforms as T
from helpers import require_torch


def _images(n=3, c=3, h=9, w=11, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w), dtype=np.float32)


def _torch_rotate(torch, x, angles, bilinear, fill):
    """torchvision's tensor rotate: affine_grid-style grid of pixel centres, grid_sample with zero
    padding, and the fill blended by a sampled ones-mask."""
    import torch.nn.functional as F
    n, c, h, w = x.shape
    xs = torch.linspace(-w * 0.5 + 0.5, w * 0.5 - 0.5, w, dtype=torch.float64)
    ys = torch.linspace(-h * 0.5 + 0.5, h * 0.5 - 0.5, h, dtype=torch.float64)
    out = []
    for img, a in zip(torch.from_numpy(x), angles):
        r = math.radians(a)
        theta = torch.tensor([[math.cos(r), math.sin(r), 0.0], [-math.sin(r), math.cos(r), 0.0]], dtype=torch.float64)
        base = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1] + (torch.ones(h, w, dtype=torch.float64),), -1)
        grid = (base.reshape(-1, 3) @ theta.T).reshape(1, h, w, 2) / torch.tensor([0.5 * w, 0.5 * h],
                                                                                  dtype=torch.float64)
        src = torch.cat([img[None].double(), torch.ones(1, 1, h, w, dtype=torch.float64)], 1)
        s = F.grid_sample(src, grid, mode="bilinear" if bilinear else "nearest", padding_mode="zeros",
                          align_corners=False)
        v, mask = s[:, :c], s[:, c:].expand(1, c, h, w)
        if bilinear:
            v = v * mask + (1 - mask) * fill
        else:
            v = torch.where(mask < 0.5, torch.full_like(v, fill), v)
        out.append(v[0])
    return torch.stack(out).float().numpy()


@pytest.mark.parametrize("bilinear,fill", [(True, 0.0), (True, 0.7), (False, 0.3)])
def test_rotation_matches_torchvision_formula(bilinear, fill):
    torch = require_torch()
    x = _images()
    angles = [13.0, -37.0, 90.0]
    ours = nc.transforms._sample(nc.tensor(x), T.rotation_theta(angles, 9, 11), 9, 11, bilinear, T._FILL,
                                 fill).numpy()
    theirs = _torch_rotate(torch, x, angles, bilinear, fill)
    if bilinear:
        np.testing.assert_allclose(ours, theirs, atol=2e-5)
    else:  # nearest: a pixel centre exactly between two source pixels may round either way
        assert np.mean(np.abs(ours - theirs) > 1e-6) < 0.01


def test_rotation_draws_one_angle_per_image_and_repeats_with_the_seed():
    x = np.repeat(_images(1), 6, axis=0)
    nc.manual_seed(5)
    a = T.RandomRotation(30)(x).numpy()
    nc.manual_seed(5)
    b = T.RandomRotation(30)(x).numpy()
    np.testing.assert_array_equal(a, b)
    assert len({a[i].tobytes() for i in range(6)}) == 6
    single = T.RandomRotation((45, 45), interpolation="bilinear")(x[0])
    assert tuple(single.shape) == x[0].shape


def test_flips_are_exact():
    x = _images(8)
    nc.manual_seed(0)
    y = T.RandomHorizontalFlip(p=0.5)(x).numpy()
    flipped = [np.array_equal(y[i], x[i, :, :, ::-1]) for i in range(8)]
    kept = [np.array_equal(y[i], x[i]) for i in range(8)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)
    np.testing.assert_array_equal(T.RandomVerticalFlip(p=1.0)(x).numpy(), x[:, :, ::-1])


def test_resize_matches_interpolate():
    torch = require_torch()
    import torch.nn.functional as F
    x = _images(2, 3, 10, 7)
    for size, (oh, ow) in [((15, 9), (15, 9)), ((4, 5), (4, 5)), (6, (8, 6))]:  # an int sets the shorter edge
        ours = T.Resize(size)(x).numpy()
        theirs = F.interpolate(torch.from_numpy(x), size=(oh, ow), mode="bilinear", align_corners=False,
                               antialias=False).numpy()
        np.testing.assert_allclose(ours, theirs, atol=2e-6)


def test_random_crop_with_padding_is_a_shifted_window():
    x = _images(4, 1, 8, 8)
    nc.manual_seed(1)
    y = T.RandomCrop(8, padding=2)(x).numpy()
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for i in range(4):
        assert any(np.array_equal(y[i], padded[i, :, r:r + 8, c:c + 8]) for r in range(5) for c in range(5))


def test_random_resized_crop_shape_and_range():
    nc.manual_seed(2)
    y = T.RandomResizedCrop(6)(_images(5, 3, 20, 16)).numpy()
    assert y.shape == (5, 3, 6, 6) and y.min() >= 0 and y.max() <= 1


def test_color_jitter_brightness_contrast_saturation():
    x = _images(4)
    nc.manual_seed(3)
    y = T.ColorJitter(brightness=0.5)(x).numpy()
    ratios = (y / np.maximum(x, 1e-6))[x > 0.05]
    assert y.min() >= 0 and y.max() <= 1
    for i in range(4):  # one factor per image: unclipped pixels share one ratio
        r = (y[i] / np.maximum(x[i], 1e-6))[(x[i] > 0.05) & (y[i] < 1)]
        assert np.ptp(r) < 1e-4 and 0.5 - 1e-5 <= r[0] <= 1.5 + 1e-5
    assert np.ptp(ratios) > 1e-3
    gray = (0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    np.testing.assert_allclose(T.ColorJitter(saturation=(0, 0))(x).numpy(), np.broadcast_to(gray, x.shape),
                               atol=1e-6)
    mean = gray.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(T.ColorJitter(contrast=(0, 0))(x).numpy(), np.broadcast_to(mean, x.shape), atol=1e-6)


def test_random_erasing_and_normalize_and_to_tensor():
    x = _images(6)
    nc.manual_seed(4)
    y = T.RandomErasing(p=1.0, value=-1)(x).numpy()
    erased = y == -1
    for i in range(6):
        rows, cols = np.where(erased[i, 0])
        assert len(rows) and erased[i, :, rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
    np.testing.assert_array_equal(erased[:, 0], erased[:, 1])
    n = T.Normalize((0.5, 0.4, 0.3), (0.2, 0.2, 0.1))(x).numpy()
    np.testing.assert_allclose(n, (x - np.array([.5, .4, .3])[:, None, None]) / np.array([.2, .2, .1])[:, None, None],
                               rtol=1e-5, atol=1e-5)
    img = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    t = T.ToTensor()(img).numpy()
    np.testing.assert_allclose(t, img.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    pipeline = T.Compose([T.RandomHorizontalFlip(), T.RandomRotation(10), T.ColorJitter(brightness=0.2)])
    assert tuple(pipeline(T.ToTensor()(img)).shape) == (3, 5, 4)


def test_bad_input_raises():
    with pytest.raises(ValueError, match=r"\[RandomRotation\] expected an image"):
        T.RandomRotation(10)(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"\[RandomCrop\] required crop size"):
        T.RandomCrop(10)(np.zeros((1, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"interpolation must be"):
        T.RandomRotation(10, interpolation="cubic")
    with pytest.raises(ValueError, match=r"\[affine_sample\] theta must be"):
        nc._core._affine_sample(nc.zeros(1, 1, 2, 2), nc.zeros(2, 2, 3), 2, 2, False, 0, [0.0])


def test_keras_augmentation_layers_act_only_in_training():
    keras.clear_session()
    x = np.random.default_rng(0).random((4, 6, 6, 2), dtype=np.float32)
    flip = keras.layers.RandomFlip("horizontal")
    np.testing.assert_array_equal(flip(nc.tensor(x)).numpy(), x)
    nc.manual_seed(0)
    y = flip(nc.tensor(x), training=True).numpy()
    for i in range(4):
        assert np.array_equal(y[i], x[i]) or np.array_equal(y[i], x[i, :, ::-1])
    rot = keras.layers.RandomRotation(0.25, fill_mode="constant")
    np.testing.assert_array_equal(rot(nc.tensor(x)).numpy(), x)
    assert not np.array_equal(rot(nc.tensor(x), training=True).numpy(), x)
    half_turn = keras.layers.RandomRotation((0.5, 0.5), interpolation="nearest")
    np.testing.assert_allclose(half_turn(nc.tensor(x), training=True).numpy(), x[:, ::-1, ::-1], atol=1e-6)
    shift = keras.layers.RandomTranslation((1 / 3, 1 / 3), (-0.5, -0.5), fill_mode="constant", interpolation="nearest")
    y = shift(nc.tensor(x), training=True).numpy()  # 6 x 6 images: 2 rows down, 3 columns left
    np.testing.assert_array_equal(y[:, 2:, :3], x[:, :4, 3:])
    assert np.all(y[:, :, 3:] == 0) and np.all(y[:, :2] == 0)
