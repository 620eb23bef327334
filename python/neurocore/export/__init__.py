"""``neurocore.export``: a trained model as one file, run by the C++ runtime.

    nc.export.save(model, "model.ncm", (example_input,), dynamic_batch=True)
    session = nc.export.load("model.ncm")
    y = session(x)                 # NumPy arrays or tensors in, NumPy arrays out

The file is a safetensors file (the weights are its tensors; the graph and the rest are JSON in its
``__metadata__``, see ``_file.py``). ``load`` and the C++ ``neurocore::Session`` run it through the
same runtime (``cpp/runtime/``): BatchNorm folded, bias and ReLU fused into the GEMM/conv store,
buffers planned once per input shape.

Supported: Linear, Conv1d/2d, ConvTranspose1d/2d, max/avg/adaptive-avg pooling, BatchNorm1d/2d
(eval), LayerNorm, RMSNorm, Dropout (removed), Flatten, Identity, the activations,
Softmax/LogSoftmax, RNN/LSTM/GRU (layers, bidirectional, proj_size, batch_first, given or zero
initial states, the returned states) and their cells, packed sequences (``pack_padded_sequence`` of
a padded batch with its per-sample lengths as a model input (int64), the recurrent layers, then
``pad_packed_sequence``; without ``total_length`` the longest sample must fill the padded batch at
run time, as eager returns max(lengths) steps), Embedding (integer inputs), scaled-dot-product
attention (bool or additive float masks, is_causal, scale, grouped-query), MultiheadAttention and
the Transformer encoder/decoder layers (bool or float key-padding and attention masks: bool masks
are model inputs, passed to the runtime as bool arrays or 0/1 floats), any nesting of modules, and
between layers add/sub/mul/div (tensors or numbers, broadcasting), reshape/view/flatten/squeeze/
unsqueeze, permute/transpose, basic indexing (ints, slices, None), matmul, cat/stack, sum/mean over
dims, where/masked_fill with a bool input as the condition. Anything else, and any data-dependent
Python control flow, is an error naming the module.

The batch dim is dim 0 of every input unless ``batch_dim`` says otherwise: a sequence-first LSTM's
(T, B, F) input and its (layers, B, H) initial state both have it at 1.
"""
import os
import tempfile

import numpy as np

from .. import _core
from .._core import Tensor
from . import _file
from ._ops import HANDLERS
from ._trace import ExportError, run_trace

__all__ = ["save", "load", "Session", "ExportError"]


_FLOAT32 = np.dtype(np.float32)
# Integer inputs (Embedding indices) travel as float32, exact below 2**24.
_MAX_EXACT_INDEX = 1 << 24


def _as_array(x, what, keep_int=False):
    if isinstance(x, Tensor):
        x = x.detach().numpy()
    arr = np.asarray(x)
    if keep_int and arr.dtype.kind in "iu":
        return np.ascontiguousarray(arr, dtype=np.int64)
    if keep_int and arr.dtype.kind == "b":
        return np.ascontiguousarray(arr)
    if arr.dtype != np.float32:
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"[export] {what} has dtype {arr.dtype}; expected float32 data")
        if arr.dtype.kind in "iu" and arr.size and int(np.max(np.abs(arr))) >= _MAX_EXACT_INDEX:
            raise ValueError(f"[export] {what} holds integers of magnitude 2**24 or more, which float32 can't "
                             f"carry exactly (shape {arr.shape})")
        arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr)


def _trace_once(model, arrays):
    inputs = tuple(_core._from_numpy(a.copy(), True) for a in arrays)
    tracer, in_values, out_values, outputs = run_trace(model, inputs, HANDLERS)
    return {"tracer": tracer, "in": in_values, "out": out_values, "outputs": outputs}


def _resize_batch(arrays, b, batch_dims):
    """Each array with `b` entries along its batch dim: entry i is entry floor(i * n / b) of the n
    examples, so sorted examples stay sorted (pack_padded_sequence's lengths with enforce_sorted)."""
    out = []
    for a, d in zip(arrays, batch_dims):
        if d is None:
            out.append(a)
            continue
        idx = np.arange(b) * a.shape[d] // b
        out.append(np.ascontiguousarray(np.take(a, idx, axis=d)))
    return out


def _batch_dims(batch_dim, arrays):
    dims = [batch_dim] * len(arrays) if isinstance(batch_dim, int) else list(batch_dim)
    if len(dims) != len(arrays):
        raise ValueError(f"[export] batch_dim has {len(dims)} entries for {len(arrays)} inputs")
    for i, (a, d) in enumerate(zip(arrays, dims)):
        if d is not None and (not isinstance(d, int) or not 0 <= d < a.ndim):
            raise ValueError(f"[export] batch_dim {d!r} of input {i} is not a dim of its shape {a.shape}")
    sizes = {a.shape[d] for a, d in zip(arrays, dims) if d is not None}
    if len(sizes) != 1 or 0 in sizes:  # also: no input has a batch dim
        raise ValueError("[export] dynamic_batch needs every example input to have the same non-zero size along its "
                         f"batch dim (shapes {[a.shape for a in arrays]}, batch dims {dims})")
    return dims


def _same_structure(t1, t2, batch_sizes):
    """Checks that two traces at different batch sizes recorded the same graph; returns the
    reshape targets of each node as [constant, batch multiple] pairs."""
    n1, n2 = t1["tracer"].nodes, t2["tracer"].nodes
    if len(n1) != len(n2) or t1["out"] != t2["out"] or t1["tracer"].constants != t2["tracer"].constants:
        raise ExportError("[export] the model records different graphs at batch sizes "
                          f"{batch_sizes[0]} and {batch_sizes[1]} (Python control flow depends on the batch size); "
                          "export it with dynamic_batch=False")
    for a, b in zip(n1, n2):
        if (a["op"], a["inputs"], a["outputs"]) != (b["op"], b["inputs"], b["outputs"]):
            raise ExportError(f"[export] the model records different graphs at batch sizes {batch_sizes[0]} and "
                              f"{batch_sizes[1]} ('{a['op']}' and '{b['op']}' in module '{a['module']}': Python "
                              "control flow depends on the batch size); export it with dynamic_batch=False")
        if a["op"] not in _BATCH_SHAPED and a["attrs"] != b["attrs"]:
            raise ExportError(f"[export] op '{a['op']}' in module '{a['module']}' changes with the batch size "
                              f"({a['attrs']} at batch {batch_sizes[0]}, {b['attrs']} at {batch_sizes[1]}); "
                              "export with dynamic_batch=False")


_BATCH_SHAPED = ("reshape", "full", "expand")  # ops whose shape attribute may follow the batch size


def _affine_shapes(traces, batches, dynamic):
    """Per reshape (and full) node, its target dims as c + k * batch, fitted on two traces and checked on
    the third."""
    nodes = [t["tracer"].nodes for t in traces]
    for i, node in enumerate(nodes[0]):
        if node["op"] not in _BATCH_SHAPED:
            continue
        if node["attrs"].get("value") != nodes[-1][i]["attrs"].get("value"):
            raise ExportError(f"[export] a tensor filled in module '{node['module']}' changes its value with the "
                              "batch size; export with dynamic_batch=False")
        shapes = [n[i]["attrs"]["shape"] for n in nodes]
        if any(len(s) != len(shapes[0]) for s in shapes):
            raise ExportError(f"[export] {node['op']} in module '{node['module']}' changes rank with the batch size")
        pairs = []
        for d in range(len(shapes[0])):
            if not dynamic:
                pairs.append([int(shapes[0][d]), 0])
                continue
            s0, s1, s2 = (s[d] for s in shapes)
            k, rem = divmod(s1 - s0, batches[1] - batches[0])
            c = s0 - k * batches[0]
            if rem or k < 0 or c + k * batches[2] != s2:
                raise ExportError(f"[export] {node['op']} in module '{node['module']}' has a target dim that is not "
                                  f"a multiple of the batch size ({s0}, {s1}, {s2} at batch sizes {batches}); "
                                  "export with dynamic_batch=False")
            pairs.append([int(c), int(k)])
        node["attrs"]["shape"] = pairs


def save(model, path, example_inputs, dynamic_batch=True, input_names=None, output_names=None, batch_dim=0):
    """Traces `model` in eval mode on `example_inputs` (a tuple, as in ``torch.export``) and writes
    one model file at `path` (atomically). With ``dynamic_batch`` the batch dimension of every input
    may differ at run time. The written file is loaded and run on the examples before it replaces
    `path`; a mismatch with the eager model is an error.

    Args:
        model: a ``neurocore.nn.Module``.
        path: destination file (convention: ``.ncm``).
        example_inputs: tuple of tensors or arrays (float32; integer arrays, such as Embedding
            indices, are recorded as ``int64`` inputs and passed to the runtime as float32 values).
        dynamic_batch: accept any batch size along the batch dim. Default: ``True``.
        input_names, output_names: names recorded in the file. Default: ``input0``, ``output0``, ...
        batch_dim: the batch dim of the inputs: an int for all, or one per input (a sequence-first
            LSTM's (T, B, F) input and its (layers, B, H) h0 both have it at 1; None: an input
            without one, such as an (L, S) attention mask). Default: ``0``.
    """
    from ..nn.module import Module
    if not isinstance(model, Module):
        raise TypeError(f"[export] expected a neurocore.nn.Module, got {type(model).__name__}")
    if isinstance(example_inputs, (Tensor, np.ndarray)):
        example_inputs = (example_inputs,)
    arrays = [_as_array(x, f"example input {i}", keep_int=True) for i, x in enumerate(example_inputs)]
    if not arrays:
        raise ValueError("[export] example_inputs is empty")
    dims = _batch_dims(batch_dim, arrays) if dynamic_batch else [None] * len(arrays)
    training = [(m, m.training) for m in model.modules()]
    for m, _ in training:
        m.training = False
    try:
        b = next(a.shape[d] for a, d in zip(arrays, dims) if d is not None) if dynamic_batch else None
        batches = [b, b + 1, b + 3] if dynamic_batch else [None]
        traces = [_trace_once(model, arrays if bb == b else _resize_batch(arrays, bb, dims)) for bb in batches]
    finally:
        for m, flag in training:
            m.training = flag
    if dynamic_batch:
        _same_structure(traces[0], traces[1], batches[:2])
        _same_structure(traces[0], traces[2], [batches[0], batches[2]])
    _affine_shapes(traces, batches, dynamic_batch)

    first = traces[0]
    tracer = first["tracer"]
    n_in, n_out = len(arrays), len(first["out"])
    input_names = list(input_names or [f"input{i}" for i in range(n_in)])
    output_names = list(output_names or [f"output{i}" for i in range(n_out)])
    if len(input_names) != n_in or len(output_names) != n_out:
        raise ValueError(f"[export] {len(input_names)} input names for {n_in} inputs or {len(output_names)} output "
                         f"names for {n_out} outputs")
    used = set(tracer.constants.values())
    weights = {name: np.array(p.detach()._numpy_unchecked(), dtype=np.float32)
               for name, p in tracer.params.values() if name in used}
    weights.update(tracer.derived)

    def dyn(shape, d):
        return [-1 if i == d else int(s) for i, s in enumerate(shape)]

    def out_shape(k):  # -1 where the output's size follows the batch
        shapes = [t["outputs"][k].shape for t in traces]
        return [s if all(o[i] == s for o in shapes) else -1 for i, s in enumerate(shapes[0])]

    in_shapes = [dyn(a.shape, d) for a, d in zip(arrays, dims)]
    dtypes = ["int64" if a.dtype == np.int64 else "bool" if a.dtype == np.bool_ else "float32" for a in arrays]
    inputs_meta = [{"name": n, "shape": sh, "dtype": dt} for n, sh, dt in zip(input_names, in_shapes, dtypes)]
    outputs_meta = [{"name": n, "shape": out_shape(k), "dtype": "float32"} for k, n in enumerate(output_names)]
    graph = {
        "version": _file.FORMAT_VERSION,
        "num_values": len(tracer.value_shapes),
        "dynamic_batch": bool(dynamic_batch),
        "inputs": [{"name": n, "value": v, "shape": sh, "example_shape": list(a.shape)}
                   for n, v, sh, a in zip(input_names, first["in"], in_shapes, arrays)],
        "outputs": [{"name": n, "value": v} for n, v in zip(output_names, first["out"])],
        "constants": [{"value": v, "tensor": name} for v, name in sorted(tracer.constants.items())],
        "nodes": [{"op": n["op"], "inputs": n["inputs"], "outputs": n["outputs"], "attrs": n["attrs"],
                   "module": n["module"]} for n in tracer.nodes],
    }
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-export-", suffix=".ncm")
    os.close(fd)
    try:
        _file.write(tmp, weights, graph, inputs_meta, outputs_meta)
        _verify(tmp, traces, batches, arrays, dims)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _verify(path, traces, batches, arrays, dims):
    """The runtime's outputs on the traced examples must match the eager model's."""
    session = _core._RuntimeSession(path)
    for trace, bb in zip(traces, batches):
        ins = arrays if bb is None or bb == batches[0] else _resize_batch(arrays, bb, dims)
        got = session.run(ins)
        for g, want in zip(got, trace["outputs"]):
            scale = float(np.max(np.abs(want))) if want.size else 0.0
            if g.shape != want.shape or not np.allclose(g, want, rtol=1e-4, atol=1e-4 * max(scale, 1e-30),
                                                        equal_nan=True):
                raise ExportError("[export] internal error: the exported graph's output differs from the eager "
                                  f"model's (max abs difference {np.max(np.abs(g - want)) if g.shape == want.shape else 'shape'}"
                                  f" at batch {bb}); please report this model")


class Session:
    """A loaded model file, run by the C++ runtime. ``session(x)`` / ``session.run(x, y)`` take NumPy
    arrays or tensors (float32; other float dtypes are converted) and return a NumPy array, or a
    tuple when the model has several outputs. Safe to call from many threads at once."""

    def __init__(self, path, num_threads=None):
        self._session = _core._RuntimeSession(os.fspath(path))
        if num_threads is not None:
            self.num_threads = num_threads
        self.input_names = list(self._session.input_names)
        self.output_names = list(self._session.output_names)
        self.input_shapes = [tuple(s) for s in self._session.input_shapes]

    def run(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise ValueError(f"[export.Session] the model takes {len(self.input_names)} inputs "
                             f"({', '.join(self.input_names)}), got {len(inputs)}")
        # float32 C-contiguous arrays go to the runtime as they are (a batch-1 call is a few
        # microseconds, so the checks and copies of the general path would dominate it)
        for x in inputs:
            if type(x) is not np.ndarray or x.dtype is not _FLOAT32 or not x.flags.c_contiguous:
                inputs = [_as_array(x, f"input '{n}'") for x, n in zip(inputs, self.input_names)]
                break
        outs = self._session.run(inputs)
        return outs[0] if len(outs) == 1 else tuple(outs)

    __call__ = run

    @property
    def num_threads(self):
        """Threads each call of this session uses; setting it (``None`` or 0: back to
        ``nc.get_num_threads()``) leaves the process-wide setting and other sessions alone."""
        return self._session.num_threads

    @num_threads.setter
    def num_threads(self, n):
        n = 0 if n is None else n
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"[export.Session] num_threads must be a non-negative int or None, got {n!r}")
        self._session.num_threads = n

    def describe(self):
        """The nodes after load-time optimisation, one per line (fused ones as ``conv2d+relu``)."""
        return self._session.describe()

    def __repr__(self):
        return f"neurocore.export.Session(inputs={self.input_names}, outputs={self.output_names}, " \
               f"nodes={self._session.num_nodes})"


def load(path, num_threads=None):
    """Opens a model file written by ``save``; everything in it is verified before it can run.
    ``num_threads``: threads per call for this session (Default: ``None``, the process setting)."""
    return Session(path, num_threads)
