"""The framework-overhead machinery: the caching tensor allocator, inline shapes of any rank,
the GIL kept for small ops, and the fast paths of Module calls, Linear and Dropout. Each fast
path must behave exactly like the general one (and like PyTorch)."""
import threading

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from helpers import rand, require_torch


@pytest.fixture
def cache_limit():
    """Restores the allocator's cache limit after a test changes it."""
    limit = nc.memory_stats()["cache_limit_bytes"]
    yield limit
    nc.set_cache_limit(limit)


# --------------------------------------------------------------------------------------------- allocator

def test_memory_stats_keys_and_empty_cache():
    stats = nc.memory_stats()
    assert set(stats) == {"cached_bytes", "cache_limit_bytes", "cache_hits", "cache_misses"}
    x = nc.ones(1000, 37)
    del x
    assert nc.memory_stats()["cached_bytes"] >= 1000 * 37 * 4
    nc.empty_cache()
    assert nc.memory_stats()["cached_bytes"] == 0


def test_freed_block_is_reused_for_the_same_size():
    nc.empty_cache()
    x = nc.ones(333, 77)
    ptr = x.data_ptr()
    del x
    hits = nc.memory_stats()["cache_hits"]
    y = nc.empty(333, 77)
    assert y.data_ptr() == ptr
    assert nc.memory_stats()["cache_hits"] == hits + 1


def test_reused_memory_does_not_leak_old_values():
    for shape in [(7,), (64,), (300, 301), (1, 1)]:
        dirty = nc.full(shape, float("nan"))
        del dirty
        np.testing.assert_array_equal(nc.zeros(*shape).numpy(), np.zeros(shape, np.float32))
        dirty = nc.full(shape, 5.0)
        del dirty
        np.testing.assert_array_equal(nc.ones(*shape).numpy(), np.ones(shape, np.float32))


def test_cache_limit_caps_cached_bytes(cache_limit):
    nc.set_cache_limit(0)
    assert nc.memory_stats()["cached_bytes"] == 0
    x = nc.ones(100, 100)
    del x
    assert nc.memory_stats()["cached_bytes"] == 0
    nc.set_cache_limit(1 << 20)
    big = [nc.ones(256, 256) for _ in range(8)]  # 8 x 256 KiB: only 4 fit under 1 MiB
    del big
    assert 0 < nc.memory_stats()["cached_bytes"] <= 1 << 20
    with pytest.raises(ValueError, match=r"\[set_cache_limit\]"):
        nc.set_cache_limit(-1)


def test_alignment_of_every_size_class():
    for n in [1, 15, 16, 17, 255, 257, 1000, 4097, 65537, 1 << 20]:
        assert nc.empty(n).data_ptr() % 64 == 0


def test_tensors_allocated_and_freed_from_many_threads():
    # Ops this large release the GIL, so the threads really allocate and free concurrently.
    a = nc.tensor(rand((256, 256), seed=1))
    expected = ((a * 2.0 + 1.0) * a).numpy()
    errors = []

    def work():
        try:
            for _ in range(30):
                r = (a * 2.0 + 1.0) * a
                np.testing.assert_allclose(r.numpy(), expected, rtol=0)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# --------------------------------------------------------------------------------------------- shapes of any rank

@pytest.mark.parametrize("rank", [0, 1, 5, 6, 7, 9, 12])
def test_high_rank_shapes_match_numpy(rank):
    shape = tuple((i % 3) + 1 for i in range(rank))
    a = rand(shape, seed=2)
    b = rand(shape[1:], seed=3)
    x, y = nc.tensor(a), nc.tensor(b)
    np.testing.assert_allclose((x + y).numpy(), a + b, rtol=1e-6)
    assert tuple(x.reshape(-1).shape) == (a.size,)
    if rank >= 2:
        perm = tuple(reversed(range(rank)))
        p = x.permute(perm)
        assert p.stride() == tuple(np.array(a.strides)[list(perm)] // a.itemsize)
        np.testing.assert_array_equal(p.contiguous().numpy(), a.transpose(perm))
        np.testing.assert_allclose(p.sum(dim=(0, rank - 1)).numpy(), a.transpose(perm).sum(axis=(0, rank - 1)),
                                   rtol=1e-5)
        np.testing.assert_allclose(x.unsqueeze(1).squeeze(1).numpy(), a)


def test_high_rank_batched_matmul_and_broadcast():
    a, b = rand((2, 1, 3, 1, 2, 4, 5), seed=4), rand((3, 2, 1, 5, 2), seed=5)
    np.testing.assert_allclose(nc.matmul(nc.tensor(a), nc.tensor(b)).numpy(), np.matmul(a, b), rtol=1e-5)


# --------------------------------------------------------------------------------------------- linear / matmul

def test_linear_with_no_input_features_gives_the_bias():
    torch = require_torch()
    for bias in [True, False]:
        for dtype, tdtype in [(nc.float32, torch.float32), (nc.float64, torch.float64)]:
            layer = nn.Linear(0, 3, bias=bias, dtype=dtype)
            if bias:
                with nc.no_grad():
                    layer.bias.copy_(nc.tensor([1.0, -2.0, 3.0], dtype=dtype))
            out = layer(nc.zeros(4, 0, dtype=dtype))
            tl = torch.nn.Linear(0, 3, bias=bias, dtype=tdtype)
            if bias:
                with torch.no_grad():
                    tl.bias.copy_(torch.tensor([1.0, -2.0, 3.0]))
            np.testing.assert_array_equal(out.detach().numpy(), tl(torch.zeros(4, 0, dtype=tdtype)).detach().numpy())


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
def test_linear_weight_layouts_and_strided_input(layout):
    torch = require_torch()
    x, w, b = rand((5, 3, 7), seed=6), rand((4, 7), seed=7), rand((4,), seed=8)
    nw = nc.tensor(w)
    if layout == "transposed":
        nw = nc.tensor(np.ascontiguousarray(w.T)).t()
    elif layout == "strided":
        nw = nc.tensor(np.concatenate([w, w], axis=1))[:, ::2]
        w = np.concatenate([w, w], axis=1)[:, ::2]
    nx = nc.tensor(x).transpose(0, 1).contiguous().transpose(0, 1)  # same values, not contiguous
    out = nn.functional.linear(nx, nw, nc.tensor(b))
    ref = torch.nn.functional.linear(torch.tensor(x), torch.tensor(np.ascontiguousarray(w)), torch.tensor(b))
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


def test_linear_bias_must_be_a_tensor():
    with pytest.raises(TypeError, match=r"\[linear\]"):
        nc.nn.functional.linear(nc.ones(2, 3), nc.ones(4, 3), [1.0, 2.0, 3.0, 4.0])


def test_batch1_linear_matches_torch_for_any_thread_count():
    torch = require_torch()
    x, w, b = (rand(s, np.float32, seed) for s, seed in [((1, 784), 9), ((128, 784), 10), ((128,), 11)])
    ref = torch.nn.functional.linear(torch.tensor(x), torch.tensor(w), torch.tensor(b)).numpy()
    threads = nc.get_num_threads()
    try:
        outs = []
        for n in [1, 2, 3]:
            nc.set_num_threads(n)
            outs.append(nn.functional.linear(nc.tensor(x), nc.tensor(w), nc.tensor(b)).numpy())
    finally:
        nc.set_num_threads(threads)
    np.testing.assert_allclose(outs[0], ref, rtol=1e-5, atol=1e-5)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


# --------------------------------------------------------------------------------------------- module fast paths

def test_linear_parameter_replaced_by_a_plain_attribute():
    layer = nn.Linear(3, 2)
    w = layer.weight.detach() * 2
    del layer.weight
    layer.weight = w  # as weight-normalisation style reparametrisations do
    x = nc.tensor(rand((4, 3), np.float32, seed=12))
    np.testing.assert_allclose(layer(x).detach().numpy(), (x @ w.t() + layer.bias).detach().numpy(), rtol=1e-6)
    assert "weight" not in dict(layer.named_parameters())


def test_module_call_runs_hooks_added_and_removed_between_calls():
    layer = nn.ReLU()
    x = nc.tensor([-1.0, 2.0])
    calls = []
    h1 = layer.register_forward_pre_hook(lambda m, args: calls.append("pre"))
    h2 = layer.register_forward_hook(lambda m, args, out: out * 10)
    np.testing.assert_array_equal(layer(x).numpy(), [0.0, 20.0])
    h1.remove()
    h2.remove()
    np.testing.assert_array_equal(layer(x).numpy(), [0.0, 2.0])
    assert calls == ["pre"]


def test_dropout_identity_returns_the_same_tensor_like_torch():
    torch = require_torch()
    x, tx = nc.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])
    for training, p in [(False, 0.5), (True, 0.0), (False, 1.0)]:
        assert (nc.dropout(x, p, training) is x) == (torch.nn.functional.dropout(tx, p, training) is tx)
        assert nn.functional.dropout(x, p, training) is x
    m = nn.Dropout(0.2).eval()
    assert m(x) is x
    xi = nc.tensor([1, 2])  # any dtype passes through the identity, as in PyTorch
    assert nc.dropout(xi, 0.5, False) is xi
    with pytest.raises(ValueError, match=r"\[dropout\]"):
        nc.dropout(x, 1.5, False)
    with pytest.raises(ValueError, match=r"\[dropout\]"):
        nc.dropout(x, float("nan"), False)
