"""nn.Embedding / F.embedding against PyTorch: lookup, gradient (deterministic scatter-add),
padding_idx, max_norm renormalisation in place, scale_grad_by_freq, from_pretrained, errors;
and the shipped Shakespeare text."""
import numpy as np
import pytest

import neurocore as nc
import neurocore.nn.functional as F
from helpers import assert_close, gradcheck, rand, require_torch


def _indices(shape, rows, seed=0):
    return np.random.default_rng(seed).integers(0, rows, size=shape).astype(np.int64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
@pytest.mark.parametrize("scale_grad_by_freq", [False, True])
def test_functional_forward_and_gradient_match_torch(dtype, padding_idx, scale_grad_by_freq):
    torch = require_torch()
    w = rand((7, 5), dtype)
    idx = _indices((4, 6), 7)
    idx[0, :3] = 2  # repeated indices and the padding row
    idx[1, 0] = 6
    tw, nw = torch.tensor(w, requires_grad=True), nc.tensor(w, requires_grad=True)
    to = torch.nn.functional.embedding(torch.tensor(idx), tw, padding_idx=padding_idx,
                                       scale_grad_by_freq=scale_grad_by_freq)
    no = F.embedding(nc.tensor(idx), nw, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq)
    assert_close(no, to, 0, 0, "forward")
    g = rand((4, 6, 5), dtype, seed=3)
    (to * torch.tensor(g)).sum().backward()
    (no * nc.tensor(g)).sum().backward()
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    assert_close(nw.grad, tw.grad, what="grad weight", **tol)


def test_module_init_padding_row_repr_and_state_dict():
    torch = require_torch()
    nc.manual_seed(0)
    emb = nc.nn.Embedding(1000, 16, padding_idx=3)
    w = emb.weight.detach().numpy()
    assert w.shape == (1000, 16) and np.all(w[3] == 0)
    rest = np.delete(w, 3, axis=0).ravel()
    assert abs(rest.mean()) < 0.02 and abs(rest.std() - 1) < 0.02  # N(0, 1)
    assert list(emb.state_dict().keys()) == ["weight"]
    assert repr(emb) == repr(torch.nn.Embedding(1000, 16, padding_idx=3))
    assert repr(nc.nn.Embedding(10, 3, max_norm=1.0, norm_type=1.0, scale_grad_by_freq=True)) == \
        repr(torch.nn.Embedding(10, 3, max_norm=1.0, norm_type=1.0, scale_grad_by_freq=True))
    assert nc.nn.Embedding(10, 3, padding_idx=-2).padding_idx == 8
    # a PyTorch table loads unchanged and gives the same lookup
    t = torch.nn.Embedding(12, 4, padding_idx=0)
    m = nc.nn.Embedding(12, 4, padding_idx=0)
    m.load_state_dict({k: nc.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    idx = _indices((3, 5), 12)
    assert_close(m(nc.tensor(idx)), t(torch.tensor(idx)), 0, 0, "loaded table")


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0])
def test_max_norm_renormalises_looked_up_rows_in_place(norm_type):
    torch = require_torch()
    w = rand((6, 4), np.float32, low=-3, high=3)
    idx = np.array([[0, 2, 2], [5, 0, 1]], dtype=np.int64)
    t = torch.nn.Embedding.from_pretrained(torch.tensor(w.copy()), freeze=False, max_norm=1.5, norm_type=norm_type)
    m = nc.nn.Embedding.from_pretrained(nc.tensor(w.copy()), freeze=False, max_norm=1.5, norm_type=norm_type)
    to, no = t(torch.tensor(idx)), m(nc.tensor(idx))
    assert_close(no, to, 1e-6, 1e-6, "output")
    assert_close(m.weight, t.weight, 1e-6, 1e-6, "table after renorm")  # rows 3, 4 untouched
    assert np.array_equal(m.weight.detach().numpy()[[3, 4]], w[[3, 4]])
    g = rand((2, 3, 4), np.float32, seed=5)
    (to * torch.tensor(g)).sum().backward()
    (no * nc.tensor(g)).sum().backward()
    assert_close(m.weight.grad, t.weight.grad, 1e-6, 1e-6, "grad")


def test_from_pretrained_freeze_and_padding():
    w = nc.tensor(rand((5, 3), np.float32))
    frozen = nc.nn.Embedding.from_pretrained(w)
    assert not frozen.weight.requires_grad
    out = frozen(nc.tensor(np.array([1, 4], dtype=np.int64)))
    assert np.array_equal(out.numpy(), w.numpy()[[1, 4]]) and not out.requires_grad
    trainable = nc.nn.Embedding.from_pretrained(w, freeze=False, padding_idx=1)
    out = trainable(nc.tensor(np.array([1, 1, 2], dtype=np.int64)))
    out.sum().backward()
    g = trainable.weight.grad.numpy()
    assert np.all(g[1] == 0) and np.all(g[2] == 1) and np.all(g[[0, 3, 4]] == 0)


def test_gradient_is_identical_on_one_and_two_threads():
    w = rand((50, 64), np.float32)
    idx = _indices((4000,), 50, seed=9)
    g = rand((4000, 64), np.float32, seed=2)
    grads = []
    prev = nc.get_num_threads()
    try:
        for threads in (1, 2):
            nc.set_num_threads(threads)
            nw = nc.tensor(w, requires_grad=True)
            (F.embedding(nc.tensor(idx), nw) * nc.tensor(g)).sum().backward()
            grads.append(nw.grad.numpy())
    finally:
        nc.set_num_threads(prev)
    assert np.array_equal(grads[0], grads[1])


def test_gradcheck_float64_and_double_backward():
    idx = nc.tensor(np.array([[0, 3, 3], [2, 1, 0]], dtype=np.int64))
    # (padding_idx and scale_grad_by_freq change the gradient on purpose: checked against PyTorch above)
    gradcheck(lambda w: F.embedding(idx, w), [rand((4, 3))])
    # create_graph: the weight gradient is itself differentiable in the upstream gradient
    w = nc.tensor(rand((4, 3)), requires_grad=True)
    u = nc.tensor(rand((2, 3, 3), seed=4), requires_grad=True)
    (gw,) = nc.autograd.grad([(F.embedding(idx, w, padding_idx=1) * u).sum()], [w], create_graph=True)
    (gw * gw).sum().backward()
    expected = 2 * gw.detach().numpy()[idx.numpy()]
    expected[idx.numpy() == 1] = 0
    assert np.allclose(u.grad.numpy(), expected)


def test_bad_input_raises_clear_errors():
    emb = nc.nn.Embedding(10, 3)
    with pytest.raises(IndexError, match=r"\[embedding\] index 10 is out of range for a table of 10 rows"):
        emb(nc.tensor(np.array([1, 10], dtype=np.int64)))
    with pytest.raises(IndexError, match=r"\[embedding\] index -1 is out of range for a table of 10 rows"):
        emb(nc.tensor(np.array([[-1]], dtype=np.int64)))
    with pytest.raises(TypeError, match=r"\[embedding\] indices must be an int64 tensor"):
        emb(nc.tensor(np.array([1.0, 2.0], dtype=np.float32)))
    with pytest.raises(ValueError, match=r"\[embedding\] weight must be 2-D"):
        F.embedding(nc.tensor(np.array([0], dtype=np.int64)), nc.zeros(3))
    with pytest.raises(ValueError, match=r"padding_idx 5 must be within num_embeddings"):
        F.embedding(nc.tensor(np.array([0], dtype=np.int64)), nc.zeros(5, 2), padding_idx=5)
    with pytest.raises(NotImplementedError, match="sparse"):
        nc.nn.Embedding(4, 2, sparse=True)
    with pytest.raises(IndexError, match=r"\[embedding_renorm_\] index 12"):
        F.embedding(nc.tensor(np.array([12], dtype=np.int64)), nc.zeros(5, 2), max_norm=1.0)
    # an empty index tensor gives an empty result
    assert tuple(emb(nc.tensor(np.zeros((0, 4), dtype=np.int64))).shape) == (0, 4, 3)


def test_shakespeare_text_is_shipped():
    text = nc.datasets.load_shakespeare()
    assert isinstance(text, str) and len(text) == 1115394
    assert len(set(text)) == 65 and text.startswith("First Citizen:")
