"""The fast paths behind the training step: the Philox vector path (groups of 32 and 8 counters,
across a carry into the counter's high word), the dropout mask drawn as an integer threshold on
the random words, and Adam as one multi-tensor pass over parameters of both float dtypes and
sizes that span several chunks."""
import numpy as np
import pytest

import neurocore as nc
from helpers import require_torch

C = nc._core


@pytest.mark.parametrize("counter0", [0, 2**32 - 37, 2**33 + 5])
def test_philox_vector_groups_match_single_calls(counter0):
    key = 0x0123456789ABCDEF
    n = 77  # two groups of 32, one of 8, a scalar tail of 5
    many = C._philox(key, counter0, n).reshape(n, 4)
    for i in range(n):
        assert many[i].tolist() == C._philox(key, counter0 + i, 1).tolist(), i


@pytest.mark.parametrize("dtype", [nc.float32, nc.float64])
@pytest.mark.parametrize("p", [0.2, 0.5, 1.0 / 3.0, 0.999])
def test_dropout_mask_is_the_uniform_threshold(dtype, p):
    # Element i of a dropout mask uses word i of the stream: kept (scaled by 1/(1-p)) exactly when
    # the word's top 24 bits as a fraction, u = (w >> 8) / 2^24, are >= p.
    shape = (37, 129)  # not a multiple of 4 words: the last counter is partly used
    nc.manual_seed(1234)
    x = nc.ones(shape, dtype=dtype)
    out = nc.nn.functional.dropout(x, p, training=True).numpy()
    n = out.size  # manual_seed(s) starts the stream at key s, counter 0
    words = C._philox(1234, 0, (n + 3) // 4).reshape(-1)[:n]
    u = (words >> 8).astype(np.float64) / 2.0**24
    scale = np.array(1.0 / (1.0 - p)).astype(out.dtype)
    expected = np.where(u >= p, scale, 0).astype(out.dtype).reshape(shape)
    assert np.array_equal(out, expected)


def test_dropout_p_one_zeroes_everything():
    x = nc.ones((5, 7))
    assert not nc.nn.functional.dropout(x, 1.0, training=True).numpy().any()


@pytest.mark.torch
def test_adam_multi_tensor_mixed_dtypes_matches_torch():
    torch = require_torch()
    rng = np.random.default_rng(0)
    # Sizes around the 8192-element chunk: one exactly, several chunks with a tail, tiny ones.
    shapes = [(8192,), (3, 7001), (5,), (40, 513), ()]
    dtypes = [np.float32, np.float64, np.float32, np.float64, np.float32]
    arrays = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
    ours = [nc.tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    kw = dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.05, amsgrad=True)
    opt, topt = nc.optim.Adam(ours, **kw), torch.optim.Adam(theirs, **kw)
    for step in range(4):
        for p, t, a in zip(ours, theirs, arrays):
            g = (np.sin(a * (step + 1)) + 0.1 * a).astype(a.dtype)
            p.grad, t.grad = nc.tensor(g), torch.tensor(g)
        opt.step()
        topt.step()
    for p, t, a in zip(ours, theirs, arrays):
        tol = dict(rtol=1e-5, atol=1e-6) if a.dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(p.detach().numpy(), t.detach().numpy(), **tol)
        assert p.dtype == (nc.float32 if a.dtype == np.float32 else nc.float64)


def test_adam_multi_tensor_thread_independent():
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(100, 300), (17,), (8193,)]]
    grads = [rng.standard_normal(a.shape).astype(np.float32) for a in arrays]
    saved = nc.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            nc.set_num_threads(threads)
            ps = [nc.tensor(a.copy(), requires_grad=True) for a in arrays]
            opt = nc.optim.Adam(ps, lr=0.1)
            for _ in range(3):
                for p, g in zip(ps, grads):
                    p.grad = nc.tensor(g)
                opt.step()
            results.append([p.detach().numpy().copy() for p in ps])
    finally:
        nc.set_num_threads(saved)
    for a, b in zip(*results):
        assert np.array_equal(a, b)


@pytest.mark.torch
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_class_indices_matches_torch(reduction, dtype):
    # The one-node path of (N, C) logits and int64 targets, with ignored rows; first and second
    # derivatives (create_graph) against torch.
    torch = require_torch()
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((9, 6)).astype(dtype) * 3
    target = rng.integers(0, 6, 9)
    target[[2, 5]] = -100
    x, tx = nc.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    loss = nc.nn.functional.cross_entropy(x, nc.tensor(target), reduction=reduction)
    tloss = torch.nn.functional.cross_entropy(tx, torch.tensor(target), reduction=reduction)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(loss.item(), tloss.item(), **tol)
    # Plain backward (the one-pass formula) and create_graph (the differentiable one).
    loss.backward(retain_graph=True)
    tloss.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), **tol)
    (g,) = nc.autograd.grad(loss, [x], create_graph=True)
    (tg,) = torch.autograd.grad(tloss, [tx], create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), **tol)
    v = rng.standard_normal((9, 6)).astype(dtype)
    (gg,) = nc.autograd.grad((g * nc.tensor(v)).sum(), [x])
    (tgg,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), [tx])
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), **tol)


def test_cross_entropy_all_ignored_is_nan_with_zero_grad():
    x = nc.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    loss = nc.nn.functional.cross_entropy(x, nc.tensor(np.full(3, -100)))
    assert np.isnan(loss.item())
    loss.backward()
    assert np.array_equal(x.grad.numpy(), np.zeros((3, 4), np.float32))


def test_cross_entropy_bad_target_names_the_loss():
    x = nc.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    with pytest.raises((IndexError, ValueError), match="nll_loss"):
        nc.nn.functional.cross_entropy(x, nc.tensor(np.array([0, 4, 1])))
    with pytest.raises(ValueError, match="target of shape"):
        nc.nn.functional.cross_entropy(x, nc.tensor(np.array([0, 1])))


def test_dropout_nan_p_raises():
    x = nc.ones((2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\[dropout\] p must be in \[0, 1\]"):
        nc.nn.functional.dropout(x, float("nan"), training=True)
    with pytest.raises(ValueError, match=r"\[dropout\] p must be in \[0, 1\]"):
        nc.nn.functional.dropout2d(x, float("nan"), training=True)
