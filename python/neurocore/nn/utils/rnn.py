"""Packed sequences for the recurrent layers (PyTorch's ``torch.nn.utils.rnn``).

A PackedSequence holds a batch of sequences of different lengths time step by time step: ``data``
has the ``batch_sizes[t]`` active rows of step t one after the other (sequences sorted by
decreasing length), so RNN, LSTM and GRU run each step on exactly its active rows. Rows move in and
out of packed form by one differentiable row gather.
"""
from typing import NamedTuple, Optional

import numpy as np

from ... import _core
from ..._core import Tensor
from ..._creation import full
from ..._indexing import cat
from ..._tensor import tensor


def _rows(data, rows):
    """data[rows] for a 2-D (or wider) tensor and an int64 NumPy array of row numbers, with a
    deterministic scatter-add gradient (the embedding op)."""
    flat = data.reshape(data.shape[0], -1)
    out = _core._embedding(flat, tensor(np.ascontiguousarray(rows, dtype=np.int64)), -1, False)
    return out.reshape((len(rows),) + tuple(data.shape[1:]))


def _as_lengths(lengths, op):
    if isinstance(lengths, Tensor):
        lengths = lengths.numpy()
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or not (lengths.dtype.kind in "iu" or np.all(np.mod(lengths, 1) == 0)):
        raise ValueError(f"[{op}] lengths must be a 1-D sequence of integers, got {lengths!r}")
    return lengths.astype(np.int64)


def invert_permutation(permutation):
    if permutation is None:
        return None
    p = permutation.numpy() if isinstance(permutation, Tensor) else np.asarray(permutation)
    inv = np.empty_like(p)
    inv[p] = np.arange(len(p), dtype=p.dtype)
    return tensor(inv.astype(np.int64))


class PackedSequence(NamedTuple):
    """data (sum(batch_sizes), *), batch_sizes (T,) int64, and the permutations between the
    caller's batch order and the length-sorted one (None when the batch was already sorted)."""
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Optional[Tensor] = None
    unsorted_indices: Optional[Tensor] = None

    def to(self, *args, **kwargs):
        data = self.data.to(*args, **kwargs)
        return self if data is self.data else self._replace(data=data)

    @property
    def is_cuda(self):
        return False

    def is_pinned(self):
        return False


# While neurocore.export traces a model it puts tracing versions of pack_padded_sequence,
# pad_packed_sequence and the RNN layers' batch permutation here (keys "pack", "pad",
# "permute_batch"; each called with the real function first): packed sequences become graph nodes
# that read the lengths at run time.
_export_hooks = {}


def _batch_sizes_of(lengths):
    """batch_sizes[t] = how many (descending) lengths exceed t."""
    t = np.arange(int(lengths[0]) if len(lengths) else 0)
    return (lengths[None, :] > t[:, None]).sum(axis=1).astype(np.int64)


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Packs a padded batch (T, B, *) (or (B, T, *) with batch_first) of sequences with the given
    lengths. With enforce_sorted=True the lengths must be non-increasing; otherwise the batch is
    sorted here and the permutation kept in the result."""
    hook = _export_hooks.get("pack")
    if hook is not None:
        return hook(_pack_padded_sequence, input, lengths, batch_first, enforce_sorted)
    return _pack_padded_sequence(input, lengths, batch_first, enforce_sorted)


def _pack_padded_sequence(input, lengths, batch_first, enforce_sorted):
    op = "pack_padded_sequence"
    lengths = _as_lengths(lengths, op)
    if input.dim() < 2:
        raise ValueError(f"[{op}] input must have at least 2 dims (T, B, *), got shape {tuple(input.shape)}")
    batch_dim = 0 if batch_first else 1
    B, T = input.shape[batch_dim], input.shape[1 - batch_dim]
    if len(lengths) != B:
        raise ValueError(f"[{op}] expected {B} lengths (the batch size of input shape {tuple(input.shape)}), "
                         f"got {len(lengths)}")
    if B and lengths.min() <= 0:
        raise ValueError(f"[{op}] Length of all samples has to be greater than 0, but found an element in "
                         f"'lengths' that is <= 0 (lengths {lengths.tolist()})")
    if B and lengths.max() > T:
        raise ValueError(f"[{op}] a length of {int(lengths.max())} is longer than the sequence: input shape "
                         f"{tuple(input.shape)} has {T} time steps")
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise RuntimeError(f"[{op}] `lengths` array must be sorted in decreasing order when `enforce_sorted` "
                               f"is True (got {lengths.tolist()}). You can pass `enforce_sorted=False` to "
                               "pack_padded_sequence and/or pack_sequence to sidestep this requirement if you do "
                               "not need ONNX exportability.")
        order = None
    else:
        order = np.argsort(-lengths, kind="stable").astype(np.int64)
    sorted_lengths = lengths if order is None else lengths[order]
    batch_sizes = _batch_sizes_of(sorted_lengths)
    # Rows of the (T*B, *) time-major grid (or (B*T, *) batch-major) that each packed row reads.
    b_of = np.concatenate([np.arange(b) for b in batch_sizes])
    t_of = np.repeat(np.arange(len(batch_sizes)), batch_sizes)
    b_orig = b_of if order is None else order[b_of]
    rows = b_orig * T + t_of if batch_first else t_of * B + b_orig
    flat = input.reshape((T * B,) + tuple(input.shape[2:]))
    data = _rows(flat, rows)
    sorted_indices = None if order is None else tensor(order)
    return PackedSequence(data, tensor(batch_sizes), sorted_indices, invert_permutation(sorted_indices))


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """The inverse of pack_padded_sequence: returns (padded (T, B, *) or (B, T, *), lengths int64),
    in the batch order the sequences were packed from."""
    hook = _export_hooks.get("pad")
    if hook is not None:
        return hook(_pad_packed_sequence, sequence, batch_first, padding_value, total_length)
    return _pad_packed_sequence(sequence, batch_first, padding_value, total_length)


def _pad_packed_sequence(sequence, batch_first, padding_value, total_length):
    op = "pad_packed_sequence"
    data, batch_sizes = sequence.data, sequence.batch_sizes.numpy().astype(np.int64)
    T, B = len(batch_sizes), int(batch_sizes[0])
    if total_length is not None:
        if total_length < T:
            raise ValueError(f"[{op}] Expected total_length to be at least the length of the longest sequence "
                             f"in input, but got total_length={total_length} and max sequence length being {T}")
        T = total_length
    lengths = (batch_sizes[None, :] > np.arange(B)[:, None]).sum(axis=1).astype(np.int64)  # sorted order
    unsorted = None if sequence.unsorted_indices is None else sequence.unsorted_indices.numpy().astype(np.int64)
    # Each output cell reads its packed row, or the padding row appended after the data.
    n = data.shape[0]
    cell = np.full((T, B), n, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(batch_sizes)[:-1]])
    for t, (o, b) in enumerate(zip(offsets, batch_sizes)):
        cell[t, :b] = o + np.arange(b)
    if unsorted is not None:
        cell = cell[:, unsorted]
        lengths = lengths[unsorted]
    if batch_first:
        cell = cell.T
    feat = tuple(data.shape[1:])
    pad = full((1,) + feat, padding_value, dtype=data.dtype)
    padded = _rows(cat([data, pad], 0), cell.reshape(-1)).reshape(cell.shape + feat)
    return padded, tensor(lengths)


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stacks tensors of shapes (L_i, *) into (max L, B, *) (or (B, max L, *)), padding with
    padding_value on the right (or the left)."""
    op = "pad_sequence"
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0))
    sequences = list(sequences)
    if not sequences:
        raise ValueError(f"[{op}] received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise ValueError(f"[{op}] padding_side must be 'left' or 'right', got {padding_side!r}")
    feat = tuple(sequences[0].shape[1:])
    for i, s in enumerate(sequences):
        if tuple(s.shape[1:]) != feat:
            raise ValueError(f"[{op}] sequence {i} has shape {tuple(s.shape)}, expected trailing dims {feat}")
    lengths = np.array([s.shape[0] for s in sequences], dtype=np.int64)
    B, T = len(sequences), int(lengths.max())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    n = int(lengths.sum())
    cell = np.full((B, T), n, dtype=np.int64)
    for b in range(B):
        first = 0 if padding_side == "right" else T - lengths[b]
        cell[b, first:first + lengths[b]] = starts[b] + np.arange(lengths[b])
    if not batch_first:
        cell = cell.T
    dtype = sequences[0].dtype
    pad = full((1,) + feat, padding_value, dtype=dtype)
    stacked = cat([s.reshape((s.shape[0],) + feat) for s in sequences] + [pad], 0)
    return _rows(stacked, cell.reshape(-1)).reshape(cell.shape + feat)


def pack_sequence(sequences, enforce_sorted=True):
    """Packs a list of (L_i, *) tensors (see pack_padded_sequence)."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of (L_i, *) tensors inside a padded batch."""
    lengths = _as_lengths(lengths, "unpad_sequence")
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [padded_sequences[i, :int(n)] for i, n in enumerate(lengths)]


def unpack_sequence(packed_sequences):
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
