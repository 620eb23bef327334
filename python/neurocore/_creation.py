"""Tensor factories with PyTorch signatures (``nc.zeros(2, 3)``, ``nc.randn((4,), dtype=...)``)."""
import math

from . import _core
from ._core import Tensor
from ._tensor import (_check_device, _check_dtype, get_default_dtype, int64, float32, float64, bool_, int32, float16,
                      uint8)

__all__ = ["zeros", "ones", "full", "empty", "zeros_like", "ones_like", "full_like", "empty_like", "rand",
           "randn", "randint", "rand_like", "randn_like", "randint_like", "arange", "linspace", "eye", "normal",
           "scalar_tensor", "Generator", "randperm", "multinomial", "default_generator", "seed",
           "LongTensor", "FloatTensor", "DoubleTensor", "IntTensor", "BoolTensor", "HalfTensor", "ByteTensor"]


class Generator:
    """A random number generator of its own (PyTorch's ``torch.Generator``), passed as
    ``generator=`` to rand, randn, randint, randperm, multinomial, normal, Tensor.uniform_/normal_
    and nn.init. Same counter-based Philox stream as the global generator: ``Generator().manual_seed(s)``
    draws exactly what ``nc.manual_seed(s)`` followed by the same calls draws.

    Args:
        device: only ``"cpu"``. Default: ``"cpu"``.
    """

    def __init__(self, device="cpu"):
        _check_device(device, "Generator")
        self._key, self._counter = _DEFAULT_SEED, 0

    @property
    def device(self):
        return "cpu"

    def manual_seed(self, seed):
        """Seeds the generator (and restarts its stream); returns the generator."""
        seed = int(seed)
        if seed < 0:  # as PyTorch: a negative seed is taken modulo 2**64
            seed += 1 << 64
        if not 0 <= seed < 1 << 64:
            raise RuntimeError(f"[Generator.manual_seed] seed must be in [-2**63, 2**64), got {seed}")
        self._key, self._counter = seed, 0
        return self

    def seed(self):
        """Seeds the generator from the operating system's entropy; returns the seed."""
        import os
        s = int.from_bytes(os.urandom(8), "little") >> 1
        self.manual_seed(s)
        return s

    def initial_seed(self):
        return self._key

    def get_state(self):
        """The generator's state as a tensor (seed, position in the stream): pass it to set_state."""
        from ._tensor import tensor
        return tensor([self._key - (1 << 64) if self._key >= 1 << 63 else self._key,
                       self._counter - (1 << 64) if self._counter >= 1 << 63 else self._counter], dtype=int64)

    def set_state(self, new_state):
        if not isinstance(new_state, Tensor) or new_state.dtype != int64 or tuple(new_state.shape) != (2,):
            raise TypeError("[Generator.set_state] expected a state from Generator.get_state() "
                            "(an int64 tensor of shape (2,))")
        key, counter = (int(v) % (1 << 64) for v in new_state.tolist())
        self._key, self._counter = key, counter
        return self

    def _run(self, fn):
        result, self._counter = _core._with_generator(self._key, self._counter, fn)
        return result


_DEFAULT_SEED = 67280421310721  # the seed of a new generator (the global one's too), as in PyTorch


class _DefaultGenerator(Generator):
    """nc.default_generator: the global generator that nc.manual_seed seeds."""

    def __init__(self):
        pass

    def manual_seed(self, seed):
        _core.manual_seed(int(seed) % (1 << 64))
        return self

    def initial_seed(self):
        return _core.initial_seed()

    def get_state(self):
        from ._tensor import tensor
        key, counter = _core.get_rng_state()
        return tensor([key - (1 << 64) if key >= 1 << 63 else key,
                       counter - (1 << 64) if counter >= 1 << 63 else counter], dtype=int64)

    def set_state(self, new_state):
        probe = Generator().set_state(new_state)
        _core.set_rng_state((probe._key, probe._counter))
        return self

    def _run(self, fn):
        return fn()


default_generator = _DefaultGenerator()


def seed():
    """Seeds the global generator from the operating system's entropy; returns the seed."""
    return default_generator.seed()


def _draw(generator, fn):
    """fn() with its random draws taken from `generator` (the global generator when None)."""
    if generator is None:
        return fn()
    if not isinstance(generator, Generator):
        raise TypeError(f"[random] generator must be a neurocore.Generator, got {type(generator).__name__}")
    return generator._run(fn)


def _size(size, op):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, int) and not hasattr(s, "__index__"):
            raise TypeError(f"[{op}] size must be a sequence of ints, got {size!r}")
    return tuple(int(s) for s in size)


def _finish(t, requires_grad):
    if requires_grad:
        t.requires_grad_(True)
    return t


def _float_dtype(dtype, op):
    dtype = _check_dtype(dtype, op) or get_default_dtype()
    return dtype


def full(size, fill_value, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "full")
    if dtype is None:
        dtype = bool_ if isinstance(fill_value, bool) else int64 if isinstance(fill_value, int) else get_default_dtype()
    return _finish(_core._full(_size((size,), "full"), fill_value, _check_dtype(dtype, "full")), requires_grad)


def zeros(*size, dtype=None, requires_grad=False, device=None):
    _check_device(device, "zeros")
    return _finish(_core._full(_size(size, "zeros"), 0, _float_dtype(dtype, "zeros")), requires_grad)


def ones(*size, dtype=None, requires_grad=False, device=None):
    _check_device(device, "ones")
    return _finish(_core._full(_size(size, "ones"), 1, _float_dtype(dtype, "ones")), requires_grad)


def empty(*size, dtype=None, requires_grad=False, device=None):
    _check_device(device, "empty")
    return _finish(_core._empty(_size(size, "empty"), _float_dtype(dtype, "empty")), requires_grad)


def scalar_tensor(s, dtype=None, device=None, requires_grad=False):
    _check_device(device, "scalar_tensor")
    return _finish(full((), s, dtype=dtype or get_default_dtype()), requires_grad)


def _like(t, dtype):
    return tuple(t.shape), _check_dtype(dtype, "like") or t.dtype


def zeros_like(input, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "zeros_like")
    shape, dt = _like(input, dtype)
    return _finish(_core._full(shape, 0, dt), requires_grad)


def ones_like(input, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "ones_like")
    shape, dt = _like(input, dtype)
    return _finish(_core._full(shape, 1, dt), requires_grad)


def full_like(input, fill_value, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "full_like")
    shape, dt = _like(input, dtype)
    return _finish(_core._full(shape, fill_value, dt), requires_grad)


def empty_like(input, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "empty_like")
    shape, dt = _like(input, dtype)
    return _finish(_core._empty(shape, dt), requires_grad)


def rand(*size, dtype=None, requires_grad=False, generator=None, device=None):
    _check_device(device, "rand")
    t = _core._empty(_size(size, "rand"), _float_dtype(dtype, "rand"))
    return _finish(_draw(generator, lambda: _core._uniform_(t, 0.0, 1.0)), requires_grad)


def randn(*size, dtype=None, requires_grad=False, generator=None, device=None):
    _check_device(device, "randn")
    t = _core._empty(_size(size, "randn"), _float_dtype(dtype, "randn"))
    return _finish(_draw(generator, lambda: _core._normal_(t, 0.0, 1.0)), requires_grad)


def randint(low=0, high=None, size=None, *, dtype=None, generator=None, requires_grad=False, device=None):
    _check_device(device, "randint")
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    if high is None or size is None:
        raise TypeError("[randint] expected randint(high, size) or randint(low, high, size)")
    t = _core._empty(_size((size,), "randint"), _check_dtype(dtype, "randint") or int64)
    return _finish(_draw(generator, lambda: _core._random_int_(t, int(low), int(high))), requires_grad)


def rand_like(input, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "rand_like")
    return rand(tuple(input.shape), dtype=dtype or input.dtype, requires_grad=requires_grad)


def randn_like(input, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "randn_like")
    return randn(tuple(input.shape), dtype=dtype or input.dtype, requires_grad=requires_grad)


def randint_like(input, low=0, high=None, *, dtype=None, device=None):
    _check_device(device, "randint_like")
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype)


def normal(mean, std, size, *, generator=None, dtype=None, requires_grad=False, device=None):
    _check_device(device, "normal")
    t = _core._empty(_size((size,), "normal"), _float_dtype(dtype, "normal"))
    return _finish(_draw(generator, lambda: _core._normal_(t, float(mean), float(std))), requires_grad)


def randperm(n, *, generator=None, dtype=None, requires_grad=False, device=None):
    """A random permutation of 0 .. n-1 (int64 by default): the stable order of n random 62-bit keys."""
    _check_device(device, "randperm")
    n = int(n)
    if n < 0:
        raise RuntimeError(f"[randperm] n must be non-negative, got {n}")
    keys = randint(0, 1 << 62, (n,), generator=generator)
    perm = _core._argsort(keys, 0, False)
    dtype = _check_dtype(dtype, "randperm")
    return _finish(perm if dtype in (None, int64) else perm.to(dtype), requires_grad)


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """Indices drawn from the categories of each row of `input` (non-negative weights, 1-D or 2-D).
    With replacement: inverse-CDF sampling; without: the num_samples smallest of E_i / w_i for
    exponential E_i (each draw proportional to the weights of the categories left)."""
    if not isinstance(input, Tensor) or not input.dtype.is_floating_point:
        raise TypeError("[multinomial] input must be a floating-point tensor of weights")
    if input.ndim not in (1, 2):
        raise RuntimeError(f"[multinomial] prob_dist must be 1 or 2 dim, got shape {tuple(input.shape)}")
    n = input.shape[-1]
    if not isinstance(num_samples, int) or num_samples <= 0:
        raise RuntimeError(f"[multinomial] cannot sample n_sample <= 0 samples (got {num_samples})")
    if not replacement and num_samples > n:
        raise RuntimeError(f"[multinomial] cannot sample n_sample > prob_dist.size(-1) samples without replacement "
                           f"({num_samples} > {n})")
    w = input.detach().reshape(-1, n)
    import numpy as np
    wa = w.numpy()
    if not np.all(np.isfinite(wa)) or np.any(wa < 0):
        raise RuntimeError("[multinomial] probability tensor contains either inf, nan or element < 0")
    if np.any(wa.sum(axis=1) <= 0):
        raise RuntimeError("[multinomial] invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement and np.any((wa > 0).sum(axis=1) < num_samples):
        raise RuntimeError("[multinomial] invalid multinomial distribution (with replacement=False, "
                           "not enough non-negative category to sample)")
    u = rand(w.shape[0], num_samples if replacement else n, dtype=float64 if w.dtype == float64 else float32,
             generator=generator)
    if replacement:
        out = _core._sample_from_cdf(_core._cumsum(w, 1), u)
    else:
        keys = -_core.log(1.0 - u) / w  # weight 0: an infinite key, never among the chosen
        out = _core._topk(keys, num_samples, 1, False)[1]
    return out.reshape(num_samples) if input.ndim == 1 else out


class _LegacyTensorType(type):
    """isinstance(x, nc.FloatTensor) is true for float32 tensors, as in PyTorch."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype == cls._dtype


def _legacy_new(dtype, name, args):
    from ._tensor import tensor
    if len(args) == 1 and not isinstance(args[0], int):
        data = args[0]
        if isinstance(data, Tensor):
            if data.dtype != dtype:
                raise TypeError(f"[{name}] expected a {dtype} tensor, got {data.dtype}")
            return data
        return tensor(data, dtype=dtype)
    return _core._empty(_size(args, name), dtype) if args else _core._empty((0,), dtype)


class LongTensor(metaclass=_LegacyTensorType):
    """nc.LongTensor(data) or nc.LongTensor(*sizes): int64 tensors (PyTorch's legacy constructors)."""
    _dtype = int64

    def __new__(cls, *args):
        return _legacy_new(cls._dtype, cls.__name__, args)


class FloatTensor(LongTensor):
    _dtype = float32


class DoubleTensor(LongTensor):
    _dtype = float64


class BoolTensor(LongTensor):
    _dtype = bool_


class IntTensor(LongTensor):
    _dtype = int32


class HalfTensor(LongTensor):
    _dtype = float16


class ByteTensor(LongTensor):
    _dtype = uint8


def arange(start=0, end=None, step=1, *, dtype=None, requires_grad=False, device=None):
    """Values start, start+step, ... < end. Integer arguments give int64, floats the default dtype."""
    _check_device(device, "arange")
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("[arange] step must be nonzero")
    length = max(0, math.ceil((end - start) / step))
    if dtype is None:
        is_int = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end, step))
        dtype = int64 if is_int else get_default_dtype()
    dtype = _check_dtype(dtype, "arange")
    import numpy as np
    values = start + step * np.arange(length, dtype=np.float64 if dtype != int64 else np.int64)
    from ._tensor import tensor
    return tensor(values, dtype=dtype, requires_grad=requires_grad)


def linspace(start, end, steps, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "linspace")
    import numpy as np
    from ._tensor import tensor
    if steps < 0:
        raise ValueError(f"[linspace] number of steps must be non-negative, got {steps}")
    # One step is just `start` (NumPy would compute it as start + 0 * (end - start), NaN for an infinite end).
    values = np.array([start], dtype=np.float64) if steps == 1 else np.linspace(start, end, steps)
    return tensor(values, dtype=_float_dtype(dtype, "linspace"), requires_grad=requires_grad)


def eye(n, m=None, *, dtype=None, requires_grad=False, device=None):
    _check_device(device, "eye")
    import numpy as np
    from ._tensor import tensor
    return tensor(np.eye(n, n if m is None else m), dtype=_float_dtype(dtype, "eye"), requires_grad=requires_grad)


def _uniform_(self, a=0.0, b=1.0, *, generator=None):
    _draw(generator, lambda: _core._uniform_(self, float(a), float(b)))
    return self


def _normal_(self, mean=0.0, std=1.0, *, generator=None):
    _draw(generator, lambda: _core._normal_(self, float(mean), float(std)))
    return self


def _random_(self, from_=0, to=None, *, generator=None):
    """Integers drawn uniformly from [from_, to) (to defaults to 2**63 - 1 for int64 tensors and
    to 2**24 / 2**53 + 1 for float32 / float64, as in PyTorch's random_())."""
    if to is None:
        from_, to = (0, from_) if from_ else (0, None)
    if to is None:
        to = {float32: (1 << 24) + 1, float64: (1 << 53) + 1}.get(self.dtype, (1 << 63) - 1)
    _draw(generator, lambda: _core._random_int_(self, int(from_), int(to)))
    return self


Tensor.random_ = _random_
Tensor.uniform_ = _uniform_
Tensor.normal_ = _normal_
Tensor.new_zeros = lambda self, *size, dtype=None, device=None, requires_grad=False: zeros(
    *size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)
Tensor.new_ones = lambda self, *size, dtype=None, device=None, requires_grad=False: ones(
    *size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)
Tensor.new_full = lambda self, size, fill_value, dtype=None, device=None, requires_grad=False: full(
    size, fill_value, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)
Tensor.new_empty = lambda self, *size, dtype=None, device=None, requires_grad=False: empty(
    *size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)
