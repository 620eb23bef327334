"""nn.utils.rnn (PackedSequence, pack_padded_sequence, pad_packed_sequence, pad_sequence,
pack_sequence) and packed batches of unequal lengths through RNN, LSTM and GRU, against PyTorch."""
import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from neurocore.nn.utils import rnn as nc_rnn
from helpers import assert_close, rand, require_torch
from test_rnn import KINDS, make_pair, states

TOL = dict(rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True), (3, False), (1, True)])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_packed_layers_match_torch(kind, num_layers, bidirectional, enforce_sorted):
    torch = require_torch()
    torch.manual_seed(0)
    dtype = np.float64
    batch_first = num_layers == 2
    T, I, H = 5, 3, 4
    lengths = [5, 3, 3, 1] if enforce_sorted else [3, 5, 1, 3]
    B = len(lengths)
    theirs, ours = make_pair(torch, kind, I, H, dtype, num_layers=num_layers, bidirectional=bidirectional,
                             batch_first=batch_first)
    x = rand((B, T, I) if batch_first else (T, B, I), dtype, seed=1)
    D = 2 if bidirectional else 1
    h = states(kind, num_layers, D, B, H, dtype, seed=3) if num_layers != 3 else None
    lstm = kind.startswith("lstm")
    tx, nx = torch.tensor(x, requires_grad=True), nc.tensor(x, requires_grad=True)
    th = [torch.tensor(a, requires_grad=True) for a in h] if h else None
    nh = [nc.tensor(a, requires_grad=True) for a in h] if h else None
    tp = torch.nn.utils.rnn.pack_padded_sequence(tx, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
    np_ = nc_rnn.pack_padded_sequence(nx, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
    assert_close(np_.data, tp.data, 0, 0, "packed data")
    assert np.array_equal(np_.batch_sizes.numpy(), tp.batch_sizes.numpy())
    targ = None if th is None else (tuple(th) if lstm else th[0])
    narg = None if nh is None else (tuple(nh) if lstm else nh[0])
    to, ts = theirs(tp, targ)
    no, ns = ours(np_, narg)
    assert isinstance(no, nc_rnn.PackedSequence)
    tpad, tlen = torch.nn.utils.rnn.pad_packed_sequence(to, batch_first=batch_first, padding_value=-1.0)
    npad, nlen = nc_rnn.pad_packed_sequence(no, batch_first=batch_first, padding_value=-1.0)
    assert np.array_equal(nlen.numpy(), tlen.numpy())
    touts = [tpad] + (list(ts) if lstm else [ts])
    nouts = [npad] + (list(ns) if lstm else [ns])
    for i, (t, n) in enumerate(zip(touts, nouts)):
        assert_close(n, t, what=f"output {i}", **TOL)
    tl = nl = 0
    for i, t in enumerate(touts):
        w = rand(tuple(t.shape), dtype, seed=40 + i)
        tl, nl = tl + (t * torch.tensor(w)).sum(), nl + (nouts[i] * nc.tensor(w)).sum()
    tl.backward()
    nl.backward()
    assert_close(nx.grad, tx.grad, what="grad input", **TOL)
    for t, n in zip(th or [], nh or []):
        assert_close(n.grad, t.grad, what="grad state", **TOL)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tparams[name].grad, what=f"grad {name}", **TOL)


def test_pad_sequence_pack_sequence_and_round_trip():
    torch = require_torch()
    seqs = [rand((n, 2), seed=n) for n in (2, 4, 1)]
    for batch_first in (False, True):
        for side in ("right", "left"):
            t = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=batch_first,
                                                padding_value=7.0, padding_side=side)
            n = nc_rnn.pad_sequence([nc.tensor(s) for s in seqs], batch_first=batch_first, padding_value=7.0,
                                    padding_side=side)
            assert_close(n, t, 0, 0, f"pad_sequence {batch_first} {side}")
    tp = torch.nn.utils.rnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    npk = nc_rnn.pack_sequence([nc.tensor(s) for s in seqs], enforce_sorted=False)
    assert_close(npk.data, tp.data, 0, 0, "pack_sequence")
    assert np.array_equal(npk.unsorted_indices.numpy(), tp.unsorted_indices.numpy())
    back = nc_rnn.unpack_sequence(npk)
    for a, b in zip(back, seqs):
        assert np.array_equal(a.numpy(), b)
    padded, lengths = nc_rnn.pad_packed_sequence(npk, total_length=6)
    assert tuple(padded.shape) == (6, 3, 2) and lengths.numpy().tolist() == [2, 4, 1]
    # gradients flow through packing and padding
    x = nc.tensor(rand((4, 3, 2)), requires_grad=True)
    p = nc_rnn.pack_padded_sequence(x, [4, 2, 1])
    (nc_rnn.pad_packed_sequence(p)[0] * 2).sum().backward()
    mask = np.zeros((4, 3, 1))
    mask[:4, 0], mask[:2, 1], mask[:1, 2] = 1, 1, 1
    assert np.array_equal(x.grad.numpy(), 2 * np.broadcast_to(mask, (4, 3, 2)))


def test_packing_errors():
    x = nc.zeros(4, 3, 2)
    with pytest.raises(RuntimeError, match="must be sorted in decreasing order"):
        nc_rnn.pack_padded_sequence(x, [2, 4, 1])
    with pytest.raises(ValueError, match=r"\[pack_padded_sequence\] a length of 5 is longer than the sequence"):
        nc_rnn.pack_padded_sequence(x, [5, 4, 1])
    with pytest.raises(ValueError, match=r"expected 3 lengths"):
        nc_rnn.pack_padded_sequence(x, [4, 1])
    with pytest.raises(ValueError, match="greater than 0"):
        nc_rnn.pack_padded_sequence(x, [4, 1, 0])
    p = nc_rnn.pack_padded_sequence(x, [4, 2, 1])
    with pytest.raises(ValueError, match="total_length"):
        nc_rnn.pad_packed_sequence(p, total_length=2)
    with pytest.raises(ValueError, match=r"\[lstm\] input has 2 features, expected 3"):
        nn.LSTM(3, 4)(p)
