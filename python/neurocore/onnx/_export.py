"""``nc.onnx.export``: a neurocore model as an ONNX file that ONNX Runtime runs.

The model is traced in eval mode by the tracer of ``neurocore.export`` (each op it runs appends an
op record), the records become ONNX nodes (``_export_ops``), parameters and buffers become
initializers under their ``state_dict`` names, and the result must pass ``onnx.checker`` with
``full_check=True``. With ``dynamic_axes`` the model is traced a second time with those axes one
larger: the two traces must have the same ops, and the dims that changed become symbolic in the
graph's inputs and outputs and ``0`` (copy the input's dim) or ``-1`` (inferred) in reshapes.
"""
import io
import os

import numpy as np

from .. import _core
from .._tensor import from_numpy
from . import _export_ops
from ._common import EXPORT_OPSETS, OnnxError, numpy_of_nc_dtype, require_onnx


def _as_inputs(args):
    if isinstance(args, (_core.Tensor, np.ndarray)):
        args = (args,)
    if not isinstance(args, (tuple, list)) or not args:
        raise TypeError(f"[onnx.export] args must be a tensor or a tuple of tensors, got {type(args).__name__}")
    out = []
    for a in args:
        if isinstance(a, np.ndarray):
            a = from_numpy(np.ascontiguousarray(a))
        if not isinstance(a, _core.Tensor):
            raise TypeError(f"[onnx.export] model inputs must be tensors, got {type(a).__name__}")
        out.append(a.detach())
    return out


def _dynamic_axes(dynamic_axes, names):
    """{value name: {axis: dim name}} from torch.onnx's forms ({name: [axes]} or {name: {axis: name}})."""
    result = {}
    for name, axes in (dynamic_axes or {}).items():
        if name not in names:
            raise ValueError(f"[onnx.export] dynamic_axes names '{name}', which is not an input or output name "
                             f"({names})")
        if isinstance(axes, dict):
            result[name] = {int(k): str(v) for k, v in axes.items()}
        else:
            result[name] = {int(k): f"{name}_dynamic_axes_{i + 1}" for i, k in enumerate(axes)}
    return result


def _grown(x, axes):
    """x one larger along each axis in ``axes`` (its first slice repeated)."""
    arr = x.numpy()
    for axis in axes:
        arr = np.concatenate([arr, np.take(arr, [0], axis=axis)], axis=axis)
    return from_numpy(np.ascontiguousarray(arr))


class _Trace:
    """The op records of one run: nodes ({op, inputs, outputs, attrs, module}), value shapes, the
    values that are weights (value -> state_dict name), input and output values."""

    def __init__(self, model, inputs):
        from ..export._ops import HANDLERS
        from ..export._trace import ExportError, run_trace
        try:
            tracer, self.in_values, self.out_values, _ = run_trace(model, inputs, HANDLERS)
        except ExportError as e:
            raise OnnxError(str(e).replace("[export]", "[onnx.export]", 1)) from None
        self.nodes, self.shapes, self.constants = tracer.nodes, tracer.value_shapes, tracer.constants
        self.derived = tracer.derived  # "weight:op<k>" -> data of an op on weights only (Conv1d's 2-D view)


def _compare_traces(first, second, model_name, input_names):
    """Per reshape node its ONNX target; per full node the dims that follow an input's dynamic axis."""
    if [n["op"] for n in first.nodes] != [n["op"] for n in second.nodes]:
        raise OnnxError(f"[onnx.export] {model_name} runs different ops when a dynamic axis changes size; it can't "
                        "be exported with these dynamic_axes")
    reshapes = {}
    for i, (a, b) in enumerate(zip(first.nodes, second.nodes)):
        if a["op"] == "reshape":
            reshapes[i] = _dynamic_target(a, first.shapes[a["inputs"][0]], second.shapes[b["inputs"][0]],
                                          b["attrs"]["shape"])
        elif a["op"] in ("full", "expand") and a["attrs"]["shape"] != b["attrs"]["shape"]:
            reshapes[i] = _dynamic_full(a, b, first, second, input_names)
        elif a["attrs"] != b["attrs"]:
            raise OnnxError(f"[onnx.export] op '{a['op']}' in module '{a['module']}' has attributes that change with "
                            f"the dynamic axes ({a['attrs']} vs {b['attrs']})")
    return reshapes


def _dynamic_full(a, b, first, second, input_names):
    """A filled or expanded tensor whose shape follows the dynamic axes: each changed dim is read from a
    graph input's dim that has the same sizes in both traces."""
    dims = {}
    for k, (p, q) in enumerate(zip(a["attrs"]["shape"], b["attrs"]["shape"])):
        if p == q:
            continue
        source = next(((name, axis) for name, v1, v2 in zip(input_names, first.in_values, second.in_values)
                       for axis, (s1, s2) in enumerate(zip(first.shapes[v1], second.shapes[v2]))
                       if s1 == p and s2 == q), None)
        if source is None or len(a["attrs"]["shape"]) != len(b["attrs"]["shape"]):
            raise OnnxError(f"[onnx.export] {a['op']} in module '{a['module']}' has a dim ({p}, then {q}) that "
                            "is no input's dynamic axis; it can't be exported with these dynamic_axes")
        dims[k] = source
    return dims


def _dynamic_target(node, in1, in2, target2):
    """The Reshape target for the dynamic axes: a dim that changed is 0 (copy the input's dim) when it
    equals the input's dim at the same position in both traces, else -1 (inferred; one at most)."""
    target1 = list(node["attrs"]["shape"])
    out = []
    for k, (p, q) in enumerate(zip(target1, target2)):
        if p == q:
            out.append(p)
        elif k < len(in1) and in1[k] == p and in2[k] == q:
            out.append(0)
        else:
            out.append(-1)
    if out.count(-1) > 1:
        raise OnnxError(f"[onnx.export] reshape in module '{node['module']}' to {target1}: dims "
                        f"{[k for k, d in enumerate(out) if d == -1]} change with the dynamic axes and are not the "
                        "input's dims; ONNX's Reshape can infer only one")
    return out


def _value_info(onnx, name, shape, symbolic, dtype=np.float32):
    dims = [symbolic.get(i, d) for i, d in enumerate(shape)]
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return onnx.helper.make_tensor_value_info(name, elem, dims)


def _name_outputs(b, sources, output_names, input_names):
    """Gives the graph outputs their requested names: the producing node's output is renamed (and its
    readers follow), or an Identity is added (an output that is an input, or the same value twice)."""
    producers = {o: n for n in b.nodes for o in n.output}
    for k, (src, name) in enumerate(zip(sources, output_names)):
        node = producers.get(src)
        if node is None or src in input_names or src in sources[:k] + sources[k + 1:]:
            b.nodes.append(b.onnx.helper.make_node("Identity", [src], [name], name=b.unique(f"/Identity_{name}")))
            continue
        for n in b.nodes:
            for i, inp in enumerate(n.input):
                if inp == src:
                    n.input[i] = name
        node.output[list(node.output).index(src)] = name


def _to_proto(model, inputs, input_names, output_names, dynamic_axes, opset):
    onnx = require_onnx("onnx.export")
    trace = _Trace(model, inputs)
    n_out = len(trace.out_values)
    input_names = list(input_names or (["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))]))
    output_names = list(output_names or (["output"] if n_out == 1 else [f"output_{i}" for i in range(n_out)]))
    if len(input_names) != len(inputs) or len(output_names) != n_out:
        raise ValueError(f"[onnx.export] {len(input_names)} input names for {len(inputs)} inputs, "
                         f"{len(output_names)} output names for {n_out} outputs")
    axes = _dynamic_axes(dynamic_axes, input_names + output_names)
    reshapes, out_symbolic = {}, {name: dict(axes.get(name, {})) for name in output_names}
    grow = {i: sorted(axes.get(name, {})) for i, name in enumerate(input_names) if axes.get(name)}
    if grow:
        grown = [_grown(x, grow.get(i, [])) for i, x in enumerate(inputs)]
        try:
            second = _Trace(model, grown)
        except (RuntimeError, ValueError) as e:
            if isinstance(e, OnnxError):
                raise
            raise OnnxError(f"[onnx.export] {type(model).__name__} fails on inputs of shapes "
                            f"{[tuple(g.shape) for g in grown]} (the dynamic axes one larger): {e}") from None
        reshapes = _compare_traces(trace, second, type(model).__name__, input_names)
        for name, v1, v2 in zip(output_names, trace.out_values, second.out_values):
            for k, (p, q) in enumerate(zip(trace.shapes[v1], second.shapes[v2])):
                if p != q and k not in out_symbolic[name]:
                    out_symbolic[name][k] = f"{name}_dynamic_axes_{len(out_symbolic[name]) + 1}"

    b = _export_ops.Builder(opset)
    weights = dict(model.named_parameters())
    weights.update(dict(model.named_buffers()))
    names = {}
    for v, name in zip(trace.in_values, input_names):
        names[v] = name
        b.names.add(name)

    made = {}

    def weight_name(wname):
        """ONNX name of a weight; a reshaped weight is a Reshape node on the original, so the initializers
        keep the state_dict's names and layouts (other ops on weights only are stored as computed)."""
        if wname not in made:
            base, _, op = wname.rpartition(":")
            if wname in weights:
                made[wname] = b.weight(weights[wname].detach().numpy(), wname)
            elif op.startswith("reshape") and (base in weights or base in trace.derived):
                shape = b.const(trace.derived[wname].shape, "shape", np.int64)
                made[wname] = b.node("Reshape", [weight_name(base), shape])
            else:
                made[wname] = b.weight(trace.derived[wname], wname)
        return made[wname]
    for v, wname in trace.constants.items():
        names[v] = weight_name(wname)
    for i, node in enumerate(trace.nodes):
        emit = _export_ops.EMITTERS.get(node["op"])
        if emit is None:
            raise OnnxError(f"[onnx.export] op '{node['op']}' (in module '{node['module']}') has no ONNX mapping")
        attrs = dict(node["attrs"])
        if i in reshapes:
            attrs["shape" if node["op"] == "reshape" else "dynamic_dims"] = reshapes[i]
        b.scope = "/" + node["module"].replace(".", "/") if node["module"] != "the model" else ""
        out = emit(b, [names[v] for v in node["inputs"]], attrs, [trace.shapes[v] for v in node["inputs"]])
        for v, name in zip(node["outputs"], out if isinstance(out, list) else [out]):
            names[v] = name
    _name_outputs(b, [names[v] for v in trace.out_values], output_names, input_names)
    graph = onnx.helper.make_graph(
        b.nodes, type(model).__name__,
        [_value_info(onnx, n, inputs[i].shape, axes.get(n, {}), numpy_of_nc_dtype(inputs[i].dtype))
         for i, n in enumerate(input_names)],
        [_value_info(onnx, n, trace.shapes[v], out_symbolic[n]) for n, v in zip(output_names, trace.out_values)],
        b.initializers)
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="neurocore",
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    return proto


def export(model, args, f=None, input_names=None, output_names=None, dynamic_axes=None, opset_version=17):
    """Exports ``model`` (run on ``args``) to ONNX, as ``torch.onnx.export`` does.

    Args:
        model: an ``nn.Module`` (run in eval mode; its mode is restored after) or a model from
            ``nc.onnx.load`` (its graph is written back with the current weights).
        args: the example input: a Tensor, a NumPy array or a tuple of them.
        f: a path or binary file object to write to; ``None`` only returns the model.
        input_names, output_names: graph input/output names. Default ``input``/``output``
            (numbered when there are several).
        dynamic_axes: ``{name: [axis, ...]}`` or ``{name: {axis: "dim_name"}}``: axes whose size may
            differ from the example's (the batch size, typically).
        opset_version: 17 to 23 (23 writes attention as the Attention op and RMSNorm as
            RMSNormalization). Default 17.

    Returns the ``onnx.ModelProto``, which passes ``onnx.checker.check_model(full_check=True)``."""
    onnx = require_onnx("onnx.export")
    lo, hi = EXPORT_OPSETS
    if not lo <= int(opset_version) <= hi:
        raise ValueError(f"[onnx.export] opset_version {opset_version} is not supported (use {lo}..{hi})")
    from ._load import OnnxModule
    if isinstance(model, OnnxModule):
        proto = model.to_onnx()
        if model.opset != opset_version:
            try:
                proto = onnx.version_converter.convert_version(proto, int(opset_version))
            except Exception as e:
                raise OnnxError(f"[onnx.export] ONNX's version converter can't take the loaded opset-{model.opset} "
                                f"graph to opset {opset_version}: {e}") from None
    else:
        inputs = _as_inputs(args)
        was_training = model.training
        model.eval()
        try:
            proto = _to_proto(model, inputs, input_names, output_names, dynamic_axes, int(opset_version))
        finally:
            model.train(was_training)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:
        raise OnnxError(f"[onnx.export] the exported graph fails onnx.checker: {e}") from None
    if f is not None:
        if isinstance(f, (str, os.PathLike)):
            onnx.save(proto, os.fspath(f))
        elif isinstance(f, io.IOBase) or hasattr(f, "write"):
            f.write(proto.SerializeToString())
        else:
            raise TypeError(f"[onnx.export] f must be a path or a binary file object, got {type(f).__name__}")
    return proto
