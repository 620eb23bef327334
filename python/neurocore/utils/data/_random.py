"""Where the samplers, random_split and the DataLoader draw their randomness.

PyTorch passes a ``torch.Generator`` (or uses the global one). Here a generator is any object with
``initial_seed()`` (``manual_seed`` returning it, as ``torch.Generator`` has): each such object owns
one NumPy stream, seeded from ``initial_seed()`` and restarted when that value changes, so a
generator seeded the same way gives the same orders, and successive epochs draw new ones. Without a
generator, each draw takes one value of neurocore's global generator, so ``nc.manual_seed`` makes
the orders repeatable.
"""
import weakref

import numpy as np

from ... import _core

_streams = weakref.WeakKeyDictionary()
_unweakable = {}  # id -> (generator, (seed, stream)) for objects that take no weak reference


def _global_seed():
    key, counter = _core.get_rng_state()
    _core.set_rng_state((key, counter + 1))
    return (key * 1000003 + counter) & 0x7FFFFFFFFFFFFFFF


def numpy_rng(generator):
    """A NumPy Generator to draw from on behalf of `generator` (None: the global generator)."""
    if generator is None:
        return np.random.default_rng(_global_seed())
    initial_seed = getattr(generator, "initial_seed", None)
    if initial_seed is None:
        raise TypeError(f"generator must be a neurocore.Generator-like object with initial_seed(), "
                        f"got {type(generator).__name__}")
    seed = int(initial_seed())
    entry = _entry(generator)
    if entry is None or entry[0] != seed:
        entry = (seed, np.random.default_rng(seed & 0xFFFFFFFFFFFFFFFF))
        try:
            _streams[generator] = entry
        except TypeError:  # no weak references: keep the object alive with its stream
            _unweakable[id(generator)] = (generator, entry)
    return entry[1]


def _entry(generator):
    try:
        return _streams.get(generator)
    except TypeError:
        return _unweakable.get(id(generator), (None, None))[1]


def draw_seed(generator):
    """A non-negative 63-bit seed drawn from `generator` (None: the global generator), like
    ``torch.empty((), dtype=torch.int64).random_(generator=generator).item()``."""
    if generator is None:
        return _global_seed()
    return int(numpy_rng(generator).integers(0, 2 ** 63 - 1))
