"""Tracing a model into a graph of op records.

The model runs once (twice with ``dynamic_batch``) in eval mode on real tensors while every entry
point into the C++ core is wrapped: the functions of ``neurocore._core`` (and every alias of them
in neurocore's own modules) and the C++ methods of ``Tensor``. Every tensor op a layer or a user's
``forward`` performs goes through one of them, so Python control flow disappears and each op
appends one record. The trace is sound by construction:

* a recorded op's tensor inputs must be traced values, the model's inputs, or its parameters and
  buffers; anything else (a tensor made by an op export does not support, a constant created in
  ``forward``) is an error naming the module;
* an op export does not support, applied to a traced value, is an error at the op;
* reading tensor data into Python (``bool(t)``, ``.item()``, ``.numpy()``, ``.tolist()``, ...) is an
  error while tracing: it is how data-dependent control flow starts;
* in-place ops are recorded (the tensor is rebound to its new value) and every other traced view of
  the same memory becomes stale: using it later is an error;
* with ``dynamic_batch`` the model is traced at two batch sizes; the two graphs must have the same
  ops, and a shape that changes with the batch must be an affine function of it (``view(n, -1)``).
"""
import sys
import threading

import numpy as np

from .. import _core
from .._core import Tensor
from . import _packed
from ..nn import _fusion


class ExportError(RuntimeError):
    """The model can't be exported: the message names the module and the op."""


# _core functions that take no tensor data (configuration, RNG state): never wrapped.
_CONFIG_FUNCTIONS = {
    "cpu_capability", "cpu_supports_avx2", "get_num_threads", "set_num_threads", "manual_seed", "initial_seed",
    "is_grad_enabled", "_set_grad_enabled", "get_rng_state", "set_rng_state", "empty_cache", "set_cache_limit",
    "memory_stats", "_fma_peak_gflops", "_empty", "_from_numpy", "dtype", "Tensor",
}
# Tensor methods that read only metadata.
_METADATA_METHODS = {"dim", "numel", "size", "stride", "is_contiguous", "data_ptr", "storage_offset",
                     "element_size", "is_floating_point", "requires_grad_", "retain_grad", "_is_same", "_version",
                     "__len__", "__repr__", "__str__", "__format__", "__deepcopy__", "__hash__", "__reduce_ex__",
                     "type", "cpu"}
# Tensor methods that turn tensor data into Python values: the start of data-dependent control flow.
_CONVERSIONS = {"__bool__", "__float__", "__int__", "__index__", "item", "tolist", "numpy", "_numpy_unchecked",
                "__array__", "equal", "allclose"}

_state = threading.local()
_install_lock = threading.Lock()
_installed = [0]
_saved = []
_packed_saved = []
_wrapped = {}  # id(core function) -> (function, its tracing wrapper), while installed


def _tracer():
    t = getattr(_state, "tracer", None)
    return t if t is not None and not t.suspended else None


class _Suspend:
    """Runs library internals of an op that is already recorded without recording them again."""

    def __init__(self, tracer):
        self.tracer = tracer

    def __enter__(self):
        self.prev, self.tracer.suspended = self.tracer.suspended, True

    def __exit__(self, *exc):
        self.tracer.suspended = self.prev


def _iter_tensors(args):
    for a in args:
        if isinstance(a, Tensor):
            yield a
        elif isinstance(a, (list, tuple)):
            yield from _iter_tensors(a)


def _extent(t):
    """[start, end) bytes of the memory a tensor can reach."""
    start = t.data_ptr()
    span = 1 + sum((s - 1) * st for s, st in zip(t.shape, t.stride()) if s > 0)
    if t.numel() == 0:
        span = 0
    return start, start + span * t.element_size()


def _wrap_function(name, fn):
    def wrapper(*args, **kwargs):
        tracer = _tracer()
        if tracer is None:
            return fn(*args, **kwargs)
        return tracer.call(name, fn, args, kwargs)
    wrapper.__name__ = getattr(fn, "__name__", name)
    wrapper.__doc__ = getattr(fn, "__doc__", None)
    wrapper._nc_original = fn
    return wrapper


def _install():
    with _install_lock:
        _installed[0] += 1
        if _installed[0] > 1:
            return
        originals = _wrapped
        for name in dir(_core):
            fn = getattr(_core, name)
            if name.startswith("__") or name in _CONFIG_FUNCTIONS or not callable(fn) or isinstance(fn, type):
                continue
            originals[id(fn)] = (fn, _wrap_function(name, fn))
            _saved.append((_core, name, fn))
            setattr(_core, name, originals[id(fn)][1])
        # Aliases bound at import (``from ._core import matmul``) in neurocore's own modules.
        for mod_name, mod in list(sys.modules.items()):
            if mod is None or not (mod_name == "neurocore" or mod_name.startswith("neurocore.")) or mod is _core:
                continue
            for attr, value in list(vars(mod).items()):
                entry = originals.get(id(value))
                if entry is not None and entry[0] is value:
                    _saved.append((mod, attr, value))
                    setattr(mod, attr, entry[1])
        for name, value in list(vars(Tensor).items()):
            if name in _METADATA_METHODS or name in ("__init__", "__new__", "__getattribute__", "__setattr__",
                                                       "__delattr__", "__init_subclass__", "__subclasshook__",
                                                       "__dir__", "__class__", "__sizeof__", "__getstate__",
                                                       "_pybind11_conduit_v1_", "__module__", "__doc__"):
                continue
            # C++ methods, conversions, and Python in-place methods (they may call ops captured at
            # import, which the _core wrappers don't see).
            if name in _CONVERSIONS or type(value).__name__ == "instancemethod" or (
                    name.endswith("_") and not name.startswith("__") and callable(value)):
                _saved.append((Tensor, name, value))
                setattr(Tensor, name, _wrap_function(name, value))
        # Python methods that convert dtypes through a C++ method captured at import.
        for name in ("to", "float", "type_as"):
            value = vars(Tensor)[name]
            _saved.append((Tensor, name, value))
            setattr(Tensor, name, _wrap_function(name, value))
        from ..nn.module import Module
        _packed_saved[:] = [_packed.install(_tracer)]
        _saved.append((Module, "__call__", Module.__call__))
        Module.__call__ = _module_call(Module.__call__)
        for name in ("data",):  # property: reading gives an untraced alias, writing replaces the data
            prop = vars(Tensor)[name]
            _saved.append((Tensor, name, prop))
            setattr(Tensor, name, property(_wrap_function("data", prop.fget), _wrap_function("data_", prop.fset)))


def _uninstall():
    with _install_lock:
        _installed[0] -= 1
        if _installed[0] > 0:
            return
        for owner, name, value in reversed(_saved):
            setattr(owner, name, value)
        _saved.clear()
        _packed.uninstall(_packed_saved.pop())
        _wrapped.clear()


def _wrap_module_attributes(model):
    """Core functions kept as module attributes (TransformerEncoderLayer's ``self.activation =
    F.relu``, bound when the module was built) go through the tracing wrappers too. Returns the
    (module, name, original) entries to put back."""
    swapped = []
    for m in model.modules():
        for attr, value in list(vars(m).items()):
            entry = _wrapped.get(id(value))
            if entry is not None and entry[0] is value:
                swapped.append((m, attr, value))
                m.__dict__[attr] = entry[1]
    return swapped


class Tracer:
    """Records the ops of one run of a model. Values are numbered in creation order."""

    def __init__(self, model, handlers):
        self.handlers = handlers
        self.suspended = False
        self.nodes = []
        self.values = {}      # id(tensor) -> value number
        self.keep = []        # every tensor seen, kept alive so ids are not reused
        self.extents = {}     # value number -> (start, end) of its memory
        self.stale = set()    # value numbers whose memory was overwritten in place
        self.value_shapes = []
        self.constants = {}   # value number -> weight name
        self.derived = {}     # weight name -> data of constants computed from weights only
        self.params = {}      # id(tensor) -> name of a parameter or buffer
        self.pending_full = {}  # id(tensor) -> (tensor, version, value): made by zeros/ones/full in forward
        for name, p in list(model.named_parameters()) + list(model.named_buffers()):
            self.params.setdefault(id(p), (name, p))
        self.module_names = {id(m): (name or type(model).__name__) for name, m in model.named_modules()}
        self.module_stack = []
        self.packed = {}      # value number of packed-sequence data -> its lengths tensor (see _packed)
        self.readable = set()  # ids of tensors of trace-time metadata whose data may be read

    # -- values --
    def new_value(self, t, name=None):
        v = len(self.value_shapes)
        self.value_shapes.append(tuple(t.shape))
        self.bind(t, v)
        return v

    def bind(self, t, v):
        self.values[id(t)] = v
        self.keep.append(t)
        self.extents[v] = _extent(t)

    def where(self):
        return self.module_stack[-1] if self.module_stack else "the model"

    def fail(self, msg):
        raise ExportError(f"[export] {msg} (in module '{self.where()}')")

    def value_of(self, t, op):
        """The value number of a tensor used by a recorded op (weights become constants)."""
        v = self.values.get(id(t))
        if v is not None:
            if v in self.stale:
                self.fail(f"op '{op}' reads a tensor of shape {tuple(t.shape)} whose memory was overwritten by "
                          "an in-place op after it was computed")
            return v
        pending = self.pending_full.pop(id(t), None)
        if pending is not None:
            return self._record_full(t, pending, op)
        param = self.params.get(id(t))
        if param is not None:
            if t.dtype != _core.dtype.float32:
                self.fail(f"parameter '{param[0]}' is {t.dtype}; export supports float32 only")
            v = self.new_value(t)
            self.constants[v] = param[0]
            return v
        self.fail(f"op '{op}' uses a tensor of shape {tuple(t.shape)} that is neither an input, a parameter or "
                  "buffer, nor the result of an op export records (it was computed by an unsupported op or "
                  "created inside forward)")

    def created_full(self, t, value):
        """A float32 tensor filled with `value` inside forward (``nc.zeros(1, x.size(0), h)``): it becomes
        a ``full`` node (its shape may follow the batch size) when a recorded op first uses it."""
        if t.dtype == _core.dtype.float32 and isinstance(value, (int, float)) and not isinstance(value, bool):
            self.keep.append(t)
            self.pending_full[id(t)] = (t, t._version, float(value))

    def _record_full(self, t, pending, op):
        _, version, value = pending
        if t._version != version:
            self.fail(f"op '{op}' uses a tensor of shape {tuple(t.shape)} created in forward and then modified in "
                      "place; export records tensors made in forward only as they were created (zeros/ones/full)")
        v = self.new_value(t)
        self.nodes.append({"op": "full", "inputs": [], "outputs": [v],
                           "attrs": {"shape": list(t.shape), "value": value}, "module": self.where()})
        return v

    def is_traced(self, t):
        return id(t) in self.values or id(t) in self.params

    # -- ops --
    def call(self, name, fn, args, kwargs):
        if name in _CONVERSIONS and args and id(args[0]) in self.readable:
            with _Suspend(self):
                return fn(*args, **kwargs)
        if name in _CONVERSIONS:
            self.fail(f"'{name}' reads tensor data into Python while tracing; data-dependent control flow and "
                      "values computed outside the graph can't be exported")
        handler = self.handlers.get(name)
        tensors = list(_iter_tensors(list(args) + list(kwargs.values())))
        if handler is None:
            traced = [t for t in tensors if self.is_traced(t)]
            if traced:
                self.fail(f"op '{name}' is not supported by export (applied to a traced tensor of shape "
                          f"{tuple(traced[0].shape)})")
            if name.endswith("_") and name != "requires_grad_":
                self._check_no_overlap(tensors, name)
            with _Suspend(self):
                return fn(*args, **kwargs)
        with _Suspend(self):
            result = fn(*args, **kwargs)
        handler(self, name, args, kwargs, result)
        return result

    def _check_no_overlap(self, tensors, name):
        for t in tensors:
            a, b = _extent(t)
            for v, (c, d) in self.extents.items():
                if a < d and c < b:
                    self.fail(f"in-place op '{name}' writes memory that a traced tensor uses")

    def record(self, op, inputs, result, attrs=None, derived=True):
        """Appends a node: `inputs` are tensors (traced or weights), `result` the output tensor. On
        weights only the result is stored as a weight, unless `derived` is off (its shape may follow
        the batch size)."""
        if not isinstance(result, Tensor):
            self.fail(f"op '{op}' returned {type(result).__name__}, expected a tensor")
        if result.dtype != _core.dtype.float32:
            self.fail(f"op '{op}' produced a {result.dtype} tensor; export supports float32 only")
        ids = [self.value_of(t, op) for t in inputs]
        if derived and ids and all(v in self.constants for v in ids):
            # Weights only (a Conv1d weight viewed as 2-D, a transposed parameter): the result is a
            # constant too, stored with the weights.
            name = f"{self.constants[ids[0]]}:{op}{len(self.derived)}"
            out = self.new_value(result)
            self.constants[out] = name
            with _Suspend(self):
                self.derived[name] = np.array(result.detach()._numpy_unchecked(), dtype=np.float32)
            return out
        lengths = _packed.check(self, op, ids, attrs or {})
        out = self.new_value(result)
        self.nodes.append({"op": op, "inputs": ids, "outputs": [out], "attrs": dict(attrs or {}),
                           "module": self.where()})
        if lengths is not None and op == "cat":
            self.packed[out] = lengths
        return out

    def record_multi(self, op, inputs, results, attrs):
        """Appends a node with several outputs (rnn: y, h_n[, c_n])."""
        for r in results:
            if not isinstance(r, Tensor) or r.dtype != _core.dtype.float32:
                self.fail(f"op '{op}' produced a {getattr(r, 'dtype', type(r).__name__)} output; export supports "
                          "float32 only")
        ids = [self.value_of(t, op) for t in inputs]
        lengths = _packed.check(self, op, ids, attrs)
        outs = [self.new_value(r) for r in results]
        if lengths is not None:
            self.packed[outs[0]] = lengths
        self.nodes.append({"op": op, "inputs": ids, "outputs": outs, "attrs": dict(attrs), "module": self.where()})
        return outs

    def record_in_place(self, op, inputs, target, result, attrs):
        """`target` is overwritten with op(inputs): it gets a new value, other views of it go stale."""
        ids = [self.value_of(t, op) for t in inputs]
        v = len(self.value_shapes)
        self.value_shapes.append(tuple(target.shape))
        self.nodes.append({"op": op, "inputs": ids, "outputs": [v], "attrs": dict(attrs), "module": self.where()})
        self._mark_stale(target, keep=v)
        self.bind(target, v)
        if isinstance(result, Tensor):
            self.bind(result, v)

    def _mark_stale(self, target, keep):
        a, b = _extent(target)
        for other, (c, d) in list(self.extents.items()):
            if a < d and c < b and other != keep:
                self.stale.add(other)

    def alias(self, src, result, op):
        """`result` holds the same values as traced `src` (contiguous, clone, eval dropout)."""
        self.bind(result, self.value_of(src, op))

    def rebind_in_place(self, target, new_value_tensor, op):
        """`target` was overwritten in place with the value of the traced `new_value_tensor`."""
        v = self.value_of(new_value_tensor, op)
        self._mark_stale(target, keep=v)
        self.bind(target, v)


def _module_call(original):
    """Module.__call__ that keeps the running module's name on the tracer's stack (for errors)."""
    def call(module, *args, **kwargs):
        tracer = getattr(_state, "tracer", None)
        if tracer is None or tracer.suspended:
            return original(module, *args, **kwargs)
        tracer.module_stack.append(tracer.module_names.get(id(module), type(module).__name__))
        try:
            return original(module, *args, **kwargs)
        finally:
            tracer.module_stack.pop()
    return call


def run_trace(model, inputs, handlers):
    """Runs `model(*inputs)` under a tracer; returns (tracer, input values, output values, outputs)."""
    tracer = Tracer(model, handlers)
    in_values = [tracer.new_value(x) for x in inputs]
    _install()
    swapped = _wrap_module_attributes(model)
    _state.tracer = tracer
    _fusion._tracing.on = True
    try:
        with _enable_grad():
            outputs = model(*inputs)
    finally:
        _state.tracer = None
        _fusion._tracing.on = False
        for m, attr, value in swapped:
            m.__dict__[attr] = value
        _uninstall()
    outs = _flatten_outputs(outputs)
    if not outs or not all(isinstance(o, Tensor) for o in outs):
        raise ExportError(f"[export] the model must return a tensor or (nested) tuples of tensors, got "
                          f"{type(outputs).__name__}")
    out_values = []
    for o in outs:
        v = tracer.values.get(id(o))
        if v is None:
            raise ExportError(f"[export] an output of shape {tuple(o.shape)} was not computed by ops export records "
                              "(it comes from an unsupported op, or is a parameter)")
        if v in tracer.stale:
            raise ExportError(f"[export] an output of shape {tuple(o.shape)} was overwritten in place after it "
                              "was computed")
        out_values.append(v)
    return tracer, in_values, out_values, [np.array(o.detach()._numpy_unchecked()) for o in outs]


def _flatten_outputs(outputs):
    """The model's outputs in order: nested tuples and lists flattened (an LSTM's (y, (h_n, c_n))),
    None entries dropped (MultiheadAttention's weights with need_weights=False), as torch.onnx does."""
    if outputs is None:
        return []
    if isinstance(outputs, (tuple, list)):
        return [o for item in outputs for o in _flatten_outputs(item)]
    return [outputs]


class _enable_grad:
    """Sequential fuses Conv+ReLU by calling the convolution's internals when autograd is off; with
    autograd on, every module goes through its own forward, which is what the trace records."""

    def __enter__(self):
        self.prev = _core.is_grad_enabled()
        _core._set_grad_enabled(True)

    def __exit__(self, *exc):
        _core._set_grad_enabled(self.prev)
