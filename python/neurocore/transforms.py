"""``neurocore.transforms``: torchvision's image transforms (names, arguments and defaults) for
float images (C, H, W) or batches (N, C, H, W), as neurocore or NumPy arrays.

Each image of a batch gets its own random draw; draws come from neurocore's RNG, so
`nc.manual_seed` makes them repeatable. Geometric transforms (flips, rotation, crops, resizing)
are one call of the C++ affine resampler for the whole batch; colour transforms are whole-batch
tensor ops with per-image factors.

    from neurocore import transforms
    augment = transforms.Compose([transforms.RandomHorizontalFlip(), transforms.RandomRotation(10),
                                  transforms.ColorJitter(brightness=0.2)])
"""
import math
import numbers

import numpy as np

from . import _core
from ._creation import rand
from ._tensor import float32, from_numpy, tensor

_FILL, _CLAMP, _REFLECT = 0, 1, 2


class InterpolationMode:
    NEAREST = "nearest"
    BILINEAR = "bilinear"


def _mode(interpolation, op):
    value = getattr(interpolation, "value", interpolation)
    if value not in ("nearest", "bilinear"):
        raise ValueError(f"[{op}] interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
    return value == "bilinear"


def _as_batch(img, op):
    """(float32 (N, C, H, W) tensor, whether the input was a single image)."""
    t = img if isinstance(img, _core.Tensor) else from_numpy(np.ascontiguousarray(img, dtype=np.float32))
    if t.dtype != float32:
        t = t.to(float32)
    if t.dim() == 3:
        return t.unsqueeze(0), True
    if t.dim() != 4:
        raise ValueError(f"[{op}] expected an image (C, H, W) or a batch (N, C, H, W), got shape {tuple(t.shape)}")
    return t, False


def _back(t, single):
    return t.squeeze(0) if single else t


def _uniform(n, low, high):
    return rand(n).numpy().astype(np.float64) * (high - low) + low


def _sample(x, theta, oh, ow, bilinear, edge, fill):
    fill = [float(fill)] if isinstance(fill, numbers.Number) else [float(f) for f in fill]
    return _core._affine_sample(x, tensor(np.ascontiguousarray(theta, np.float32)), int(oh), int(ow), bilinear, edge,
                                fill)


def _identity(n):
    theta = np.zeros((n, 2, 3))
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    return theta


def _pair(size, op):
    if isinstance(size, numbers.Number):
        return int(size), int(size)
    size = tuple(int(s) for s in size)
    if len(size) == 1:
        return size[0], size[0]
    if len(size) != 2:
        raise ValueError(f"[{op}] size must be an int or (height, width), got {size}")
    return size


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        body = "".join(f"\n    {t}" for t in self.transforms)
        return f"{type(self).__name__}({body}\n)"


class ToTensor:
    """A uint8 image (H, W, C) / (H, W) or batch (N, H, W, C) -> float32 (C, H, W) / (N, C, H, W)
    in [0, 1]; float arrays are only transposed, as torchvision does."""

    def __call__(self, pic):
        arr = np.asarray(pic)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim == 3:
            out = arr.transpose(2, 0, 1)
        elif arr.ndim == 4:
            out = arr.transpose(0, 3, 1, 2)
        else:
            raise ValueError(f"[ToTensor] expected (H, W), (H, W, C) or (N, H, W, C), got shape {arr.shape}")
        scaled = out.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else out.astype(np.float32)
        return from_numpy(np.ascontiguousarray(scaled))

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """(x - mean[c]) / std[c] per channel."""

    def __init__(self, mean, std, inplace=False):
        self.mean, self.std = list(np.atleast_1d(mean).astype(float)), list(np.atleast_1d(std).astype(float))
        if any(s == 0 for s in self.std):
            raise ValueError(f"[Normalize] std evaluated to zero after conversion to float32, got {self.std}")

    def __call__(self, img):
        x, single = _as_batch(img, "Normalize")
        c = x.shape[1]
        if len(self.mean) not in (1, c) or len(self.std) not in (1, c):
            raise ValueError(f"[Normalize] {len(self.mean)} means / {len(self.std)} stds for {c} channels")
        mean = tensor(np.array(self.mean * (c if len(self.mean) == 1 else 1), np.float32).reshape(1, c, 1, 1))
        std = tensor(np.array(self.std * (c if len(self.std) == 1 else 1), np.float32).reshape(1, c, 1, 1))
        return _back((x - mean) / std, single)

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


class _RandomFlip:
    _axis = 1  # 0: vertical (rows), 1: horizontal (columns)

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        x, single = _as_batch(img, type(self).__name__)
        n, _, h, w = x.shape
        flip = rand(n).numpy() < self.p
        theta = _identity(n)
        if self._axis == 1:
            theta[flip, 0, 0], theta[flip, 0, 2] = -1.0, w - 1
        else:
            theta[flip, 1, 1], theta[flip, 1, 2] = -1.0, h - 1
        return _back(_sample(x, theta, h, w, False, _FILL, 0.0), single)

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p})"


class RandomHorizontalFlip(_RandomFlip):
    _axis = 1


class RandomVerticalFlip(_RandomFlip):
    _axis = 0


def rotation_theta(angles_deg, h, w):
    """Affine maps of rotations by `angles_deg` (counter-clockwise) about the image centre, as
    torchvision's rotate computes them (pixel centres at +0.5)."""
    a = np.radians(np.asarray(angles_deg, dtype=np.float64))
    cos, sin = np.cos(a), np.sin(a)
    ox, oy = 0.5 - w / 2.0, 0.5 - h / 2.0
    theta = np.empty((len(a), 2, 3))
    theta[:, 0, 0], theta[:, 0, 1] = cos, sin
    theta[:, 0, 2] = cos * ox + sin * oy + w / 2.0 - 0.5
    theta[:, 1, 0], theta[:, 1, 1] = -sin, cos
    theta[:, 1, 2] = -sin * ox + cos * oy + h / 2.0 - 0.5
    return theta


class RandomRotation:
    """Rotates by an angle drawn uniformly from `degrees` ((-d, d) for a number), about the centre;
    uncovered pixels get `fill`. interpolation: 'nearest' (default) or 'bilinear'."""

    def __init__(self, degrees, interpolation=InterpolationMode.NEAREST, expand=False, center=None, fill=0):
        if isinstance(degrees, numbers.Number):
            if degrees < 0:
                raise ValueError(f"[RandomRotation] if degrees is a single number, it must be positive, got {degrees}")
            degrees = (-degrees, degrees)
        self.degrees = tuple(float(d) for d in degrees)
        if expand or center is not None:
            raise NotImplementedError("[RandomRotation] expand and center are not supported")
        self.bilinear = _mode(interpolation, "RandomRotation")
        self.fill = fill

    def __call__(self, img):
        x, single = _as_batch(img, "RandomRotation")
        n, _, h, w = x.shape
        theta = rotation_theta(_uniform(n, *self.degrees), h, w)
        return _back(_sample(x, theta, h, w, self.bilinear, _FILL, self.fill), single)

    def __repr__(self):
        return f"RandomRotation(degrees={list(self.degrees)}, fill={self.fill})"


class RandomCrop:
    """Crops a random (height, width) window, after zero (or `fill`) padding of `padding` pixels
    (int, (left/right, top/bottom) or (left, top, right, bottom))."""

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = _pair(size, "RandomCrop")
        if padding_mode != "constant":
            raise NotImplementedError("[RandomCrop] only padding_mode='constant' is supported")
        p = padding or 0
        p = (p,) * 4 if isinstance(p, numbers.Number) else tuple(p)
        if len(p) == 2:
            p = (p[0], p[1], p[0], p[1])
        self.padding, self.pad_if_needed, self.fill = p, pad_if_needed, fill

    def __call__(self, img):
        x, single = _as_batch(img, "RandomCrop")
        n, _, h, w = x.shape
        left, top, right, bottom = self.padding
        th, tw = self.size
        if self.pad_if_needed:
            extra_w, extra_h = max(tw - (w + left + right), 0), max(th - (h + top + bottom), 0)
            left, right, top, bottom = left + extra_w, right + extra_w, top + extra_h, bottom + extra_h
        ph, pw = h + top + bottom, w + left + right
        if ph < th or pw < tw:
            raise ValueError(f"[RandomCrop] required crop size {(th, tw)} is larger than the input image size "
                             f"{(ph, pw)}")
        i = np.floor(rand(n).numpy() * (ph - th + 1)).astype(np.int64)
        j = np.floor(rand(n).numpy() * (pw - tw + 1)).astype(np.int64)
        theta = _identity(n)
        theta[:, 0, 2], theta[:, 1, 2] = j - left, i - top
        return _back(_sample(x, theta, th, tw, False, _FILL, self.fill), single)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


def _resize_theta(n, top, left, crop_h, crop_w, oh, ow):
    """Maps output pixels onto a (crop_h, crop_w) window as bilinear resizing does (pixel
    centres aligned, align_corners=False)."""
    theta = np.zeros((n, 2, 3))
    sx, sy = np.asarray(crop_w, float) / ow, np.asarray(crop_h, float) / oh
    theta[:, 0, 0], theta[:, 0, 2] = sx, left + 0.5 * sx - 0.5
    theta[:, 1, 1], theta[:, 1, 2] = sy, top + 0.5 * sy - 0.5
    return theta


class Resize:
    """Resizes to `size` ((h, w), or an int for the shorter edge, keeping the aspect ratio),
    bilinear without antialiasing (torchvision's antialias=False)."""

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=None):
        self.size = size
        self.bilinear = _mode(interpolation, "Resize")

    def _out_size(self, h, w):
        if isinstance(self.size, numbers.Number) or len(self.size) == 1:
            s = int(self.size if isinstance(self.size, numbers.Number) else self.size[0])
            return (s, int(s * w / h)) if h <= w else (int(s * h / w), s)
        return _pair(self.size, "Resize")

    def __call__(self, img):
        x, single = _as_batch(img, "Resize")
        n, _, h, w = x.shape
        oh, ow = self._out_size(h, w)
        theta = _resize_theta(n, 0.0, 0.0, h, w, oh, ow)
        return _back(_sample(x, theta, oh, ow, self.bilinear, _CLAMP, 0.0), single)

    def __repr__(self):
        return f"Resize(size={self.size})"


class RandomResizedCrop:
    """Crops a window of random area fraction `scale` and aspect `ratio` and resizes it to `size`
    (torchvision's draw: 10 tries, then the central crop)."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation=InterpolationMode.BILINEAR,
                 antialias=True):
        self.size = _pair(size, "RandomResizedCrop")
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.bilinear = _mode(interpolation, "RandomResizedCrop")

    def get_params(self, n, h, w):
        area = h * w
        tries = 10
        target = area * _uniform(n * tries, *self.scale).reshape(n, tries)
        aspect = np.exp(_uniform(n * tries, math.log(self.ratio[0]), math.log(self.ratio[1]))).reshape(n, tries)
        cw = np.round(np.sqrt(target * aspect)).astype(np.int64)
        ch = np.round(np.sqrt(target / aspect)).astype(np.int64)
        ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
        first = np.where(ok.any(axis=1), ok.argmax(axis=1), -1)
        rows = np.arange(n)
        ch, cw = ch[rows, np.maximum(first, 0)], cw[rows, np.maximum(first, 0)]
        # fallback: the central crop with the aspect ratio clamped into `ratio`
        in_ratio = w / h
        if in_ratio < min(self.ratio):
            fw, fh = w, int(round(w / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            fh, fw = h, int(round(h * max(self.ratio)))
        else:
            fw, fh = w, h
        ch, cw = np.where(first < 0, fh, ch), np.where(first < 0, fw, cw)
        u, v = rand(n).numpy(), rand(n).numpy()
        top = np.where(first < 0, (h - ch) // 2, np.floor(u * (h - ch + 1)).astype(np.int64))
        left = np.where(first < 0, (w - cw) // 2, np.floor(v * (w - cw + 1)).astype(np.int64))
        return top, left, ch, cw

    def __call__(self, img):
        x, single = _as_batch(img, "RandomResizedCrop")
        n, _, h, w = x.shape
        top, left, ch, cw = self.get_params(n, h, w)
        oh, ow = self.size
        theta = _resize_theta(n, top, left, ch, cw, oh, ow)
        return _back(_sample(x, theta, oh, ow, self.bilinear, _CLAMP, 0.0), single)

    def __repr__(self):
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


def _gray(x):
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ValueError(f"[ColorJitter] expected 1 or 3 channels, got {x.shape[1]}")
    return x[:, 0:1] * 0.2989 + x[:, 1:2] * 0.587 + x[:, 2:3] * 0.114


class ColorJitter:
    """Random brightness, contrast and saturation factors (each drawn from [max(0, 1 - v), 1 + v]
    per image), applied in a random order per call, results clamped to [0, 1]."""

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        if hue:
            raise NotImplementedError("[ColorJitter] hue is not supported")
        self.brightness = self._range(brightness, "brightness")
        self.contrast = self._range(contrast, "contrast")
        self.saturation = self._range(saturation, "saturation")

    @staticmethod
    def _range(v, name):
        if isinstance(v, numbers.Number):
            if v < 0:
                raise ValueError(f"[ColorJitter] If {name} is a single number, it must be non negative, got {v}")
            return None if v == 0 else (max(0.0, 1.0 - v), 1.0 + v)
        lo, hi = float(v[0]), float(v[1])
        return None if lo == hi == 1.0 else (lo, hi)

    def __call__(self, img):
        x, single = _as_batch(img, "ColorJitter")
        n = x.shape[0]
        order = np.argsort(rand(3).numpy())
        for k in order:
            rng = (self.brightness, self.contrast, self.saturation)[k]
            if rng is None:
                continue
            f = tensor(_uniform(n, *rng).astype(np.float32).reshape(n, 1, 1, 1))
            if k == 0:
                x = (x * f).clamp(0.0, 1.0)
            elif k == 1:
                mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
                x = (x * f + mean * (1.0 - f)).clamp(0.0, 1.0)
            elif x.shape[1] != 1:
                x = (x * f + _gray(x) * (1.0 - f)).clamp(0.0, 1.0)
        return _back(x, single)

    def __repr__(self):
        return f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, saturation={self.saturation})"


class RandomErasing:
    """With probability p, sets a random rectangle (area fraction `scale`, aspect `ratio`) of
    each image to `value`."""

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False):
        if not 0 <= p <= 1:
            raise ValueError(f"[RandomErasing] probability must be between 0 and 1, got {p}")
        self.p, self.scale, self.ratio, self.value = p, tuple(scale), tuple(ratio), value

    def __call__(self, img):
        x, single = _as_batch(img, "RandomErasing")
        n, _, h, w = x.shape
        tries = 10
        apply = rand(n).numpy() < self.p
        target = h * w * _uniform(n * tries, *self.scale).reshape(n, tries)
        aspect = np.exp(_uniform(n * tries, math.log(self.ratio[0]), math.log(self.ratio[1]))).reshape(n, tries)
        eh = np.round(np.sqrt(target * aspect)).astype(np.int64)
        ew = np.round(np.sqrt(target / aspect)).astype(np.int64)
        ok = (eh < h) & (ew < w)
        first = ok.argmax(axis=1)
        rows = np.arange(n)
        eh, ew = eh[rows, first], ew[rows, first]
        apply &= ok.any(axis=1)
        top = np.floor(rand(n).numpy() * (h - eh + 1)).astype(np.int64)
        left = np.floor(rand(n).numpy() * (w - ew + 1)).astype(np.int64)
        r, c = np.arange(h), np.arange(w)
        inside = ((r[None, :, None] >= top[:, None, None]) & (r[None, :, None] < (top + eh)[:, None, None]) &
                  (c[None, None, :] >= left[:, None, None]) & (c[None, None, :] < (left + ew)[:, None, None]))
        mask = tensor((inside & apply[:, None, None]).astype(np.float32)[:, None])
        return _back(x * (1.0 - mask) + mask * float(self.value), single)

    def __repr__(self):
        return f"RandomErasing(p={self.p}, scale={self.scale}, ratio={self.ratio}, value={self.value})"
