"""``nc.amp``: PyTorch's mixed-precision entry points on a float32 CPU library.

``autocast`` is accepted (context manager and decorator) and keeps float32: neurocore has no
reduced-precision kernels, so code written for AMP runs at full precision. As in PyTorch on a
machine without CUDA, ``autocast("cuda")`` and a CUDA ``GradScaler`` warn and disable themselves.
``GradScaler("cpu")`` scales the loss, unscales the gradients, skips steps with non-finite
gradients and adapts its scale exactly as PyTorch's does.
"""
import functools
import math
import warnings

import numpy as np

from .._device import device as _device_cls, _device_type

__all__ = ["autocast", "GradScaler", "is_autocast_available"]


def is_autocast_available(device_type):
    return device_type == "cpu"


class autocast:
    """``autocast(device_type, dtype=None, enabled=True, cache_enabled=None)``: a no-op that keeps
    float32 (see the module docstring)."""

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        _device_cls(device_type)  # an unknown device type gets PyTorch's error
        if enabled and device_type != "cpu":
            warnings.warn(f"[autocast] device_type {device_type!r} is not available (neurocore runs on the CPU "
                          "only). Disabling autocast.")
            enabled = False
        self.device, self.fast_dtype, self._enabled = device_type, dtype, bool(enabled)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self._enabled):
                return fn(*args, **kwargs)
        return wrapper


class GradScaler:
    """Dynamic loss scaling with PyTorch's arguments and state_dict.

    Args:
        device: ``"cuda"`` (PyTorch's default; warns and disables itself, there is no CUDA) or ``"cpu"``.
        init_scale: Default: ``2.0**16``. growth_factor: Default: ``2.0``. backoff_factor: Default: ``0.5``.
        growth_interval: steps without inf/NaN gradients before the scale grows. Default: ``2000``.
        enabled: Default: ``True``.
    """

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        device = _device_type(device) or str(device)
        if enabled and device != "cpu":
            warnings.warn(f"torch.{device}.amp.GradScaler is enabled, but {device.upper()} is not available.  "
                          "Disabling.")
            enabled = False
        if enabled:
            if growth_factor <= 1.0:
                raise AssertionError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise AssertionError("The backoff factor must be < 1.0.")
        self._device, self._enabled = device, bool(enabled)
        self._scale, self._growth_factor, self._backoff_factor = float(init_scale), growth_factor, backoff_factor
        self._growth_interval, self._growth_tracker = int(growth_interval), 0
        self._per_optimizer = {}

    def is_enabled(self):
        return self._enabled

    def get_scale(self):
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self):
        return self._growth_factor

    def get_backoff_factor(self):
        return self._backoff_factor

    def get_growth_interval(self):
        return self._growth_interval

    def scale(self, outputs):
        """`outputs` (a tensor or nested lists/tuples of them) multiplied by the scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        return outputs * self._scale

    def _state(self, optimizer):
        return self._per_optimizer.setdefault(id(optimizer), {"unscaled": False, "found_inf": False})

    def unscale_(self, optimizer):
        """Divides the optimizer's gradients by the scale in place; records whether any is inf/NaN."""
        if not self._enabled:
            return
        state = self._state(optimizer)
        if state["unscaled"]:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        inv = 1.0 / self._scale
        found = False
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.grad.mul_(inv)
                found = found or not bool(np.isfinite(p.grad.detach().numpy()).all())
        state["unscaled"], state["found_inf"] = True, found

    def step(self, optimizer, *args, **kwargs):
        """Unscales (unless done) and runs ``optimizer.step`` only if every gradient is finite."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        state = self._state(optimizer)
        if not state["unscaled"]:
            self.unscale_(optimizer)
        return None if state["found_inf"] else optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        """Backs the scale off after a step with inf/NaN gradients, grows it after
        `growth_interval` clean steps, or sets it to `new_scale`."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if hasattr(new_scale, "item") else new_scale)
        elif any(s["found_inf"] for s in self._per_optimizer.values()):
            self._scale *= self._backoff_factor
            self._growth_tracker = 0
        else:
            self._growth_tracker += 1
            if self._growth_tracker == self._growth_interval:
                grown = self._scale * self._growth_factor
                if math.isfinite(grown):
                    self._scale = grown
                self._growth_tracker = 0
        self._per_optimizer = {}

    def state_dict(self):
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor, "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict):
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled "
                               "instance of GradScaler.")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
