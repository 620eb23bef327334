"""Packed sequences in a trace: ``pack_padded_sequence(x, lengths)`` -> RNN/LSTM/GRU ->
``pad_packed_sequence``, with the per-sample lengths a model input.

Eagerly a PackedSequence's data has sum(lengths) rows in the order of decreasing length, a shape
that depends on the lengths' values. In the graph the packed data is a value of fixed shape: the
time-major (steps * batch, features) grid in the caller's batch order, rows past a sample's
length zero. Three ops read the lengths at run time: ``pack`` (padded batch -> grid), ``rnn`` with
``packed`` (sorts the rows by length as PyTorch does, runs the packed batch, puts the rows back, so
its final states come out in the caller's order) and ``unpack`` (grid -> padded batch). The
layers' own batch permutations (h0 into the sorted order, h_n back) are therefore identities in the
graph. Between layers the grid may be concatenated along features (bidirectional layers); any
other op on packed data is an error.
"""
from .._core import Tensor
from ..nn.utils import rnn as rnn_utils


def _lengths_tensor(tr, lengths):
    if not isinstance(lengths, Tensor) or not tr.is_traced(lengths):
        tr.fail("pack_padded_sequence's lengths must be a model input tensor (int64, one length per sample) to be "
                f"exported; got {type(lengths).__name__}")
    return lengths


def _pack(tr, real, input, lengths, batch_first, enforce_sorted):
    from ._trace import _Suspend  # noqa: PLC0415 - _trace imports this module
    lengths = _lengths_tensor(tr, lengths)
    with _Suspend(tr):
        packed = real(input, lengths, batch_first, enforce_sorted)
    if input.dim() != 3:
        tr.fail(f"pack_padded_sequence of a {input.dim()}-D input can't be exported; pass (steps, batch, features) "
                "or, with batch_first, (batch, steps, features)")
    out = tr.record("pack", [input, lengths], packed.data, {"batch_first": bool(batch_first),
                                                            "enforce_sorted": bool(enforce_sorted)})
    tr.packed[out] = lengths
    for t in (packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices):
        if t is not None:  # trace-time metadata the layers read into Python; the graph never uses it
            tr.keep.append(t)
            tr.readable.add(id(t))
    return packed


def _pad(tr, real, sequence, batch_first, padding_value, total_length):
    from ._trace import _Suspend  # noqa: PLC0415
    with _Suspend(tr):
        padded, lengths_out = real(sequence, batch_first, padding_value, total_length)
    v = tr.values.get(id(sequence.data))
    lengths = tr.packed.get(v)
    if lengths is None:
        tr.fail("pad_packed_sequence can be exported only for a sequence packed by pack_padded_sequence from model "
                "inputs (through recurrent layers)")
    tr.record("unpack", [sequence.data, lengths], padded,
              {"batch_first": bool(batch_first), "padding_value": float(padding_value),
               "total_length": int(total_length or 0)})
    tr.bind(lengths_out, tr.value_of(lengths, "pad_packed_sequence"))  # the same lengths, in the caller's order
    return padded, lengths_out


def _permute_batch(tr, real, h, permutation, dim):
    """h0 into the length-sorted order or h_n back: the runtime's packed rnn keeps the caller's order."""
    from ._trace import _Suspend  # noqa: PLC0415
    if id(permutation) not in tr.readable:
        tr.fail("a batch permutation that does not come from pack_padded_sequence can't be exported")
    with _Suspend(tr):
        out = real(h, permutation, dim)
    tr.alias(h, out, "permute_batch")
    return out


def install(tracer_of):
    """Puts the tracing versions in place; each falls back to the real function when the calling
    thread is not tracing. Returns what to put back."""
    def hook(fn):
        def call(real, *args):
            tr = tracer_of()
            return real(*args) if tr is None else fn(tr, real, *args)
        return call
    saved = dict(rnn_utils._export_hooks)
    rnn_utils._export_hooks.update(pack=hook(_pack), pad=hook(_pad), permute_batch=hook(_permute_batch))
    return saved


def uninstall(saved):
    rnn_utils._export_hooks.clear()
    rnn_utils._export_hooks.update(saved)


def check(tr, op, ids, attrs):
    """The lengths tensor of a recorded op's packed inputs, or None; ops other than rnn, unpack and
    cat along features can't take packed data."""
    packed = [tr.packed.get(v) for v in ids]
    if not any(p is not None for p in packed):
        return None
    if op == "cat" and attrs.get("dim") == 1 and all(p is packed[0] for p in packed):
        return packed[0]
    if op in ("rnn", "unpack"):
        return packed[0]
    tr.fail(f"op '{op}' uses a PackedSequence's data; export supports packed data only between "
            "pack_padded_sequence, recurrent layers and pad_packed_sequence")
