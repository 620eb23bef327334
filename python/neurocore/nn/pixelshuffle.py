"""PixelShuffle / PixelUnshuffle and their functional forms: moves blocks of r x r channels into (or
out of) r x r spatial tiles with a reshape and a permute, so the gradient is the inverse shuffle."""
from .. import _core
from .module import Module


def _check(op, input, factor, name):
    if not isinstance(factor, int) or isinstance(factor, bool) or factor <= 0:
        raise ValueError(f"[{op}] {name} must be a positive int, got {factor!r}")
    if input.ndim < 3:
        raise RuntimeError(f"[{op}] expects input to have at least 3 dimensions (*, C, H, W), but got input of "
                           f"shape {tuple(input.shape)}")


def pixel_shuffle(input, upscale_factor):
    """(*, C*r*r, H, W) -> (*, C, H*r, W*r): channel c*r*r + i*r + j goes to pixel (h*r + i, w*r + j)."""
    _check("pixel_shuffle", input, upscale_factor, "upscale_factor")
    r = upscale_factor
    *batch, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"[pixel_shuffle] expects its input's 'channel' dimension to be divisible by the square "
                           f"of upscale_factor, but input.size(-3)={c} is not divisible by {r * r} (input shape "
                           f"{tuple(input.shape)})")
    nb = len(batch)
    x = input.reshape(tuple(batch) + (c // (r * r), r, r, h, w))
    b = list(range(nb))
    x = _core.permute(x, b + [nb, nb + 3, nb + 1, nb + 4, nb + 2])  # (*, C, H, r, W, r)
    return x.reshape(tuple(batch) + (c // (r * r), h * r, w * r))


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H*r, W*r) -> (*, C*r*r, H, W), the inverse of pixel_shuffle."""
    _check("pixel_unshuffle", input, downscale_factor, "downscale_factor")
    r = downscale_factor
    *batch, c, h, w = input.shape
    if h % r or w % r:
        raise RuntimeError(f"[pixel_unshuffle] expects height ({h}) and width ({w}) to be divisible by "
                           f"downscale_factor ({r}) (input shape {tuple(input.shape)})")
    nb = len(batch)
    x = input.reshape(tuple(batch) + (c, h // r, r, w // r, r))
    b = list(range(nb))
    x = _core.permute(x, b + [nb, nb + 2, nb + 4, nb + 1, nb + 3])  # (*, C, r, r, H/r, W/r)
    return x.reshape(tuple(batch) + (c * r * r, h // r, w // r))


class PixelShuffle(Module):
    """(*, C*r^2, H, W) -> (*, C, H*r, W*r) for r = upscale_factor (sub-pixel convolution)."""

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H*r, W*r) -> (*, C*r^2, H, W) for r = downscale_factor."""

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"
