"""``nc.onnx.load``: an ONNX model as a trainable ``nn.Module``.

Loading reads and validates the file (parse, opset, graph structure, supported operators, the ONNX
checker and strict shape inference), converts older or newer opsets with ONNX's version converter,
turns the floating initializers that act as weights into ``nn.Parameter``s (under the initializer's
dotted name, so a PyTorch export keeps PyTorch's ``state_dict`` keys), keeps BatchNormalization
statistics as buffers and the remaining initializers as constants, folds every node whose inputs
are all constants, and keeps the remaining nodes in topological order. Calling the module runs them
with neurocore ops.
"""
import os
import re

import numpy as np

from .. import _core
from ..nn import Module, Parameter
from . import _import_ops as ops
from ._common import IMPORT_OPSETS, OnnxError, UnsupportedOperatorError, require_onnx

# Initializers in these input slots are weights: they become Parameters.
_WEIGHT_SLOTS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (0, 1, 2), "MatMul": (0, 1),
                 "BatchNormalization": (1, 2), "LayerNormalization": (1, 2), "InstanceNormalization": (1, 2),
                 "PRelu": (1,), "Gather": (0,), "LSTM": (1, 2, 3), "GRU": (1, 2, 3), "RNN": (1, 2, 3)}
# ... and these hold running statistics: buffers (in the state_dict, updated in training).
_BUFFER_SLOTS = {"BatchNormalization": (3, 4)}
# An initializer added to or multiplied with a tensor is a weight when it is not a scalar (a bias, a
# decomposed LayerNorm's scale) or when the tensor comes from a dense/conv op (the bias of MatMul + Add).
_ELEMENTWISE = {"Add", "Sub", "Mul", "Div"}
_WEIGHTED_PRODUCERS = {"MatMul", "Gemm", "Conv", "ConvTranspose"}
# Optional outputs neurocore does not compute: (op, output index) -> what it is.
_UNSUPPORTED_OUTPUTS = {("MaxPool", 1): "Indices", ("Dropout", 1): "mask", ("BatchNormalization", 1): "running_mean",
                        ("BatchNormalization", 2): "running_var", ("LayerNormalization", 1): "Mean",
                        ("LayerNormalization", 2): "InvStdDev"}
_DEFAULT_DOMAINS = ("", "ai.onnx")
_NAME = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+)$")


# ----------------------------------------------------------------------------------------------------
# reading and validating


def _read(f):
    onnx = require_onnx("onnx.load")
    if isinstance(f, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(f)
        return model, "<ModelProto>"
    what = os.fspath(f) if isinstance(f, (str, os.PathLike)) else ("<bytes>" if isinstance(f, (bytes, bytearray))
                                                                    else "<file>")
    try:
        if isinstance(f, (bytes, bytearray)):
            model = onnx.load_model_from_string(bytes(f))
        else:
            model = onnx.load(f)
    except FileNotFoundError:
        raise
    except Exception as e:  # DecodeError, truncated external data, ...
        raise OnnxError(f"[onnx.load] cannot parse {what} as an ONNX model (truncated or not an ONNX file?): "
                        f"{type(e).__name__}: {e}") from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise OnnxError(f"[onnx.load] {what} holds no graph (truncated or not an ONNX model file?)")
    return model, what


def _default_opset(model, what):
    versions = [o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS]
    if not versions:
        raise OnnxError(f"[onnx.load] {what} imports no version of the default ONNX operator set "
                        f"(opset_import: {[(o.domain, o.version) for o in model.opset_import]})")
    return versions[0]


def _convert_opset(model, what):
    onnx = require_onnx("onnx.load")
    version = _default_opset(model, what)
    lo, hi = IMPORT_OPSETS
    if lo <= version <= hi:
        return model, version
    if version < 1 or version > onnx.defs.onnx_opset_version():
        raise OnnxError(f"[onnx.load] {what} declares default-domain opset {version}, which does not exist "
                        f"(this onnx package knows 1..{onnx.defs.onnx_opset_version()}; neurocore runs {lo}..{hi})")
    target = lo if version < lo else hi
    try:
        converted = onnx.version_converter.convert_version(model, target)
    except Exception as e:
        raise OnnxError(f"[onnx.load] {what} uses opset {version}; neurocore runs opsets {lo}..{hi} and ONNX's "
                        f"version converter could not convert it to {target}: {e}") from None
    return converted, target


def _topological_order(graph, what):
    """Node indices in an order where every input is produced before use; clear errors for inputs
    nothing produces, values produced twice, and cycles."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    producer = {}
    for i, node in enumerate(graph.node):
        for out in node.output:
            if not out:
                continue
            if out in producer or out in available:
                raise OnnxError(f"[onnx.load] {what}: value '{out}' is produced twice (by node "
                                f"{_label(node)} and {'an earlier node' if out in producer else 'a graph input'})")
            producer[out] = i
    missing = []
    for node in graph.node:
        for name in node.input:
            if name not in available and name not in producer:
                missing.append(f"node {_label(node)} reads '{name}'")
    for out in graph.output:
        if out.name not in available and out.name not in producer:
            missing.append(f"graph output '{out.name}'")
    if missing:
        raise OnnxError(f"[onnx.load] {what}: {', '.join(missing)}, which is not a graph input, an initializer or "
                        "the output of any node (missing initializer?)")
    waiting = [len({producer[n] for n in node.input if n in producer}) for node in graph.node]
    users = [[] for _ in graph.node]
    for i, node in enumerate(graph.node):
        for src in {producer[n] for n in node.input if n in producer}:
            users[src].append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    order = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in users[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    if len(order) != len(graph.node):
        stuck = [_label(graph.node[i]) for i in range(len(graph.node)) if waiting[i] > 0]
        raise OnnxError(f"[onnx.load] {what}: the graph has a cycle; these nodes wait on each other: "
                        f"{', '.join(stuck[:20])}{' ...' if len(stuck) > 20 else ''}")
    return order


def _label(node):
    return f"'{node.name}' ({node.op_type})" if node.name else f"({node.op_type} -> {list(node.output)})"


def _check_supported(graph, what):
    problems, types = [], set()
    for node in graph.node:
        if node.domain not in _DEFAULT_DOMAINS:
            problems.append(f"{_label(node)} in domain '{node.domain}'")
        elif node.op_type not in ops.OPS and node.op_type not in ops.CONSTANT_OPS:
            problems.append(_label(node))
        else:
            unsupported = [f"{_label(node)} output {_UNSUPPORTED_OUTPUTS[(node.op_type, k)]} '{out}'"
                           for k, out in enumerate(node.output) if out and (node.op_type, k) in _UNSUPPORTED_OUTPUTS]
            if not unsupported:
                continue
            problems += unsupported
        types.add(node.op_type)
    if problems:
        raise UnsupportedOperatorError(f"[onnx.load] {what} uses {len(problems)} node(s) neurocore does not support "
                                       f"(op types: {', '.join(sorted(types))}): " + "; ".join(problems))


def _check(model, order, what):
    onnx = require_onnx("onnx.load")
    checked = onnx.ModelProto()
    checked.CopyFrom(model)
    del checked.graph.node[:]
    checked.graph.node.extend(model.graph.node[i] for i in order)
    try:
        onnx.checker.check_model(checked)
        onnx.shape_inference.infer_shapes(checked, check_type=True, strict_mode=True)
    except Exception as e:
        raise OnnxError(f"[onnx.load] {what} fails ONNX's checks: {type(e).__name__}: {e}") from None


# ----------------------------------------------------------------------------------------------------
# classifying initializers


def _consumers(graph):
    """value name -> [(node, input slot)], looking through Identity and Transpose nodes (a weight
    transposed for MatMul is still a weight)."""
    uses = {}
    for node in graph.node:
        for k, name in enumerate(node.input):
            uses.setdefault(name, []).append((node, k))
    resolved = {}

    def walk(name, seen):
        out = []
        for node, k in uses.get(name, []):
            if node.op_type in ("Identity", "Transpose") and node.output[0] not in seen:
                out += walk(node.output[0], seen | {node.output[0]})
            else:
                out.append((node, k))
        return out
    for name in uses:
        resolved[name] = walk(name, {name})
    return resolved


def _classify(graph, arrays, trainable):
    """initializer name -> 'parameter' | 'buffer' | 'constant'."""
    producers = {out: node.op_type for node in graph.node for out in node.output}
    uses = _consumers(graph)
    kinds = {}
    for name, arr in arrays.items():
        floating = arr.dtype.kind == "f"
        if trainable is not None:
            kinds[name] = "parameter" if name in trainable else "constant"
            continue
        kind = "constant"
        for node, k in uses.get(name, []):
            if k in _BUFFER_SLOTS.get(node.op_type, ()):
                kind = "buffer"
            elif floating and k in _WEIGHT_SLOTS.get(node.op_type, ()):
                kind = "parameter"
                break
            elif floating and node.op_type in _ELEMENTWISE and np.isfinite(arr).all():
                other = node.input[1 - k] if len(node.input) == 2 else ""
                if arr.size > 1 or producers.get(other) in _WEIGHTED_PRODUCERS:
                    kind = "parameter"
                    break
        if kind == "parameter" and not floating:
            kind = "constant"
        kinds[name] = kind
    if trainable is not None:
        unknown = sorted(set(trainable) - set(arrays))
        bad = sorted(n for n in trainable if n in arrays and arrays[n].dtype.kind != "f")
        if unknown or bad:
            raise OnnxError(f"[onnx.load] trainable names must be floating initializers; not initializers: "
                            f"{unknown}, not floating: {bad}")
    return kinds


# ----------------------------------------------------------------------------------------------------
# the module


class _Group(Module):
    """Holds the parameters and buffers under one dotted prefix (``features.0``)."""

    def forward(self, *args):
        raise RuntimeError("[onnx] parameter groups of an imported model are not callable; call the model")


class _Step:
    __slots__ = ("fn", "inputs", "outputs", "attrs", "ctx", "n_outputs", "node", "opset", "_evaluator")

    def __init__(self, node, attrs, opset):
        self.fn = ops.OPS.get(node.op_type)
        self.inputs, self.outputs = list(node.input), list(node.output)
        self.attrs, self.node, self.opset = attrs, node, opset
        self.ctx = ops.Context(node.name or node.op_type, node.op_type, opset)
        self.n_outputs = len(node.output)
        self._evaluator = None

    def __getstate__(self):  # the op functions and the evaluator are looked up again after unpickling
        return {k: getattr(self, k) for k in self.__slots__ if k not in ("fn", "_evaluator")}

    def __setstate__(self, state):
        for k, v in state.items():
            setattr(self, k, v)
        self.fn, self._evaluator = ops.OPS.get(self.node.op_type), None

    def run_constant(self, values):
        """Runs the node on NumPy inputs with ONNX's reference evaluator (exact ONNX semantics)."""
        if self._evaluator is None:
            self._evaluator = _reference_evaluator(self.node, values, self.opset)
        feeds = {n: v for n, v in zip(self.inputs, values) if n}
        try:
            return self._evaluator.run(None, feeds)
        except Exception as e:
            raise self.ctx.error(f"failed on constant inputs of shapes {[np.shape(v) for v in values]}: "
                                 f"{type(e).__name__}: {e}") from None

    def run(self, values, training):
        if all(v is None or isinstance(v, np.ndarray) for v in values) and self.node.op_type not in ("Dropout",):
            return self.run_constant(values)
        self.ctx.training = training
        try:
            if self.node.op_type in ops.MULTI_OUTPUT:
                out = self.fn(self.ctx, values, self.attrs, self.n_outputs)
            else:
                out = self.fn(self.ctx, values, self.attrs)
        except OnnxError:
            raise
        except (RuntimeError, ValueError, TypeError, IndexError) as e:
            shapes = [None if v is None else tuple(v.shape) for v in values]
            raise self.ctx.error(f"{e} (input shapes {shapes})") from None
        return out if isinstance(out, tuple) else (out,)


def _reference_evaluator(node, values, opset):
    onnx = require_onnx("onnx.load")
    from onnx.reference import ReferenceEvaluator
    h = onnx.helper
    inputs = [h.make_tensor_value_info(n, h.np_dtype_to_tensor_dtype(np.asarray(v).dtype), None)
              for n, v in zip(node.input, values) if n]
    outputs = [h.make_value_info(n, onnx.TypeProto()) for n in node.output if n]
    graph = h.make_graph([node], "constant", inputs, outputs)
    return ReferenceEvaluator(h.make_model(graph, opset_imports=[h.make_opsetid("", opset)]))


def _register(owner, leaf, arr, kind):
    tensor = ops.to_tensor(arr)
    if kind == "parameter":
        owner.register_parameter(leaf, Parameter(tensor))
    else:
        owner.register_buffer(leaf, tensor)


def _declared_shape(value_info):
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim)


class OnnxModule(Module):
    """An ONNX graph run with neurocore ops. Its weights are Parameters named after the file's
    initializers; call it with the graph inputs (Tensors or NumPy arrays, positionally or by name).
    It returns one Tensor, or a tuple when the graph has several outputs. Loaded in eval mode
    (BatchNormalization uses the running statistics, Dropout is off, as in ONNX Runtime); ``train()``
    switches both to their training behaviour for fine-tuning."""

    def __init__(self, model, order, opset, trainable, what):
        super().__init__()
        onnx = require_onnx("onnx.load")
        graph = model.graph
        self.opset = opset
        self._model = model
        arrays = {}
        for init in graph.initializer:
            try:
                arrays[init.name] = onnx.numpy_helper.to_array(init)
            except Exception as e:
                raise OnnxError(f"[onnx.load] {what}: initializer '{init.name}' cannot be read "
                                f"(external data missing or corrupt?): {e}") from None
        kinds = _classify(graph, arrays, trainable)
        init_names = set(arrays)
        self.input_names = [i.name for i in graph.input if i.name not in init_names]
        self.output_names = [o.name for o in graph.output]
        self._input_shapes = {i.name: _declared_shape(i) for i in graph.input if i.name not in init_names}
        self._steps, self._last_use = [], []
        self._paths = {}  # initializer name -> dotted path in this module
        self._constants = {}
        for name, arr in arrays.items():
            if kinds[name] == "constant":
                self._constants[name] = arr
            else:
                self._paths[name] = self._place(name, arr, kinds[name])
        self._steps = self._fold([graph.node[i] for i in order], opset)
        self._last_use = self._lifetimes()
        self.eval()

    def _place(self, name, arr, kind):
        """Registers an initializer under its dotted name (``features.0.weight``) when that is a path of
        identifiers; other names (``onnx::Conv_3``, ``/fc/Constant_output_0``) go on this module, cleaned."""
        parts, owner = name.split("."), self
        if all(_NAME.match(p) and not hasattr(Module, p) for p in parts):
            for p in parts[:-1]:
                child = owner._modules.get(p)
                if child is None and hasattr(owner, p):
                    owner = None
                    break
                if child is None:
                    child = _Group()
                    owner.add_module(p, child)
                owner = child
            if owner is not None and not hasattr(owner, parts[-1]):
                _register(owner, parts[-1], arr, kind)
                return name
        base = "p_" + (re.sub(r"\W", "_", name).strip("_") or "value")
        leaf, n = base, 1
        while hasattr(self, leaf):
            leaf, n = f"{base}_{n}", n + 1
        _register(self, leaf, arr, kind)
        return leaf

    def _fold(self, nodes, opset):
        """Plan steps; nodes whose inputs are all constants run once now (Constant, shapes of weights,
        and the Shape of an input whose declared shape is fully static: calls are checked against it)."""
        onnx = require_onnx("onnx.load")
        static = {name: shape for name, shape in self._input_shapes.items()
                  if shape is not None and all(isinstance(d, int) for d in shape)}
        steps = []
        for node in nodes:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            for key, value in list(attrs.items()):
                if isinstance(value, onnx.TensorProto):
                    attrs[key] = onnx.numpy_helper.to_array(value)
            step = _Step(node, attrs, opset)
            inputs = [n for n in node.input if n]
            if node.op_type == "Shape" and inputs[0] in static:
                dims = np.array(static[inputs[0]], dtype=np.int64)
                self._constants[node.output[0]] = dims[attrs.get("start", 0):attrs.get("end")]
                continue
            if node.op_type != "Dropout" and all(n in self._constants for n in inputs) and \
                    (inputs or node.op_type in ops.CONSTANT_OPS):
                outs = step.run_constant([self._constants.get(n) if n else None for n in node.input])
                for name, value in zip([n for n in node.output if n], outs):
                    self._constants[name] = np.asarray(value)
            else:
                steps.append(step)
        return steps

    def _lifetimes(self):
        last = {}
        for i, step in enumerate(self._steps):
            for n in step.inputs:
                last[n] = i
        keep = set(self.output_names)
        return [[n for n in set(step.inputs) if n and last.get(n) == i and n not in keep and n not in self._paths]
                for i, step in enumerate(self._steps)]

    def _tensor_of(self, path):
        owner = self
        *mods, leaf = path.split(".")
        for m in mods:
            owner = owner._modules[m]
        return owner._parameters[leaf] if leaf in owner._parameters else owner._buffers[leaf]

    def _bind_inputs(self, args, kwargs):
        if len(args) > len(self.input_names):
            raise TypeError(f"[onnx] the model takes {len(self.input_names)} input(s) {self.input_names}, "
                            f"got {len(args)}")
        values = dict(zip(self.input_names, args))
        for k, v in kwargs.items():
            if k not in self.input_names:
                raise TypeError(f"[onnx] the model has no input named {k!r} (inputs: {self.input_names})")
            if k in values:
                raise TypeError(f"[onnx] input {k!r} given twice")
            values[k] = v
        missing = [n for n in self.input_names if n not in values]
        if missing:
            raise TypeError(f"[onnx] missing input(s) {missing} (the model takes {self.input_names})")
        for name, v in values.items():
            v = v if isinstance(v, _core.Tensor) else ops.to_tensor(np.asarray(v))
            declared = self._input_shapes.get(name)
            if declared is not None:
                got = tuple(v.shape)
                if len(got) != len(declared) or any(isinstance(d, int) and d != g for d, g in zip(declared, got)):
                    shown = tuple(d if d is not None else "?" for d in declared)
                    raise ValueError(f"[onnx] input '{name}' has shape {got}, the model declares {shown}")
            values[name] = v
        return values

    def forward(self, *args, **kwargs):
        values = dict(self._constants)
        for name, path in self._paths.items():
            values[name] = self._tensor_of(path)
        values.update(self._bind_inputs(args, kwargs))
        training = self.training
        for step, dead in zip(self._steps, self._last_use):
            outs = step.run([values.get(n) if n else None for n in step.inputs], training)
            for name, value in zip(step.outputs, outs):
                if name:
                    values[name] = value
            for n in dead:
                values.pop(n, None)
        results = tuple(ops.to_tensor(values[n]) for n in self.output_names)
        return results[0] if len(results) == 1 else results

    def extra_repr(self):
        return (f"opset={self.opset}, inputs={self.input_names}, outputs={self.output_names}, "
                f"nodes={len(self._steps)}")

    def to_onnx(self):
        """The loaded ModelProto with its initializers replaced by the current parameters and buffers."""
        onnx = require_onnx("onnx")
        model = onnx.ModelProto()
        model.CopyFrom(self._model)
        for init in model.graph.initializer:
            if init.name in self._paths:
                arr = self._tensor_of(self._paths[init.name]).detach().numpy()
                init.CopyFrom(onnx.numpy_helper.from_array(arr.astype(onnx.helper.tensor_dtype_to_np_dtype(
                    init.data_type)), init.name))
        return model


def load(f, *, trainable=None, check=True):
    """Loads an ONNX model as an ``nn.Module`` that runs and trains with neurocore.

    Args:
        f: a path, a file object, the file's bytes, or an ``onnx.ModelProto``.
        trainable: initializer names to make Parameters (the rest become constants). Default ``None``:
            floating initializers used as weights (Conv, ConvTranspose, Gemm, MatMul, LSTM/GRU/RNN,
            normalisation scale and bias, PRelu slope, Gather tables, non-scalars added or multiplied
            elementwise, biases added after MatMul/Conv) become Parameters, BatchNormalization
            statistics become buffers.
        check: run ONNX's checker and strict shape inference on the model. Default ``True``.

    Raises ``OnnxError`` for files that are not valid ONNX (truncated, unknown opset, missing
    initializers, cycles) and ``UnsupportedOperatorError`` listing every unsupported node."""
    onnx = require_onnx("onnx.load")
    model, what = _read(f)
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    model, opset = _convert_opset(model, what)
    order = _topological_order(model.graph, what)
    _check_supported(model.graph, what)
    if check:
        _check(model, order, what)
    return OnnxModule(model, order, opset, None if trainable is None else set(trainable), what)
