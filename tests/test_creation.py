"""Tensor factories: values and dtypes vs PyTorch, seeded randomness."""
import numpy as np
import pytest

import neurocore as nc
from helpers import require_torch

CASES = [
    ("zeros", lambda m: m.zeros(2, 3)), ("zeros_tuple", lambda m: m.zeros((2, 3))), ("ones", lambda m: m.ones(4)),
    ("full_int", lambda m: m.full((2,), 3)), ("full_float", lambda m: m.full((2, 2), 1.5)),
    ("full_bool", lambda m: m.full((1,), True)), ("arange", lambda m: m.arange(5)),
    ("arange_float", lambda m: m.arange(0, 1, 0.1)), ("arange_step", lambda m: m.arange(1, 10, 3)),
    ("arange_neg", lambda m: m.arange(5, 0, -2)), ("linspace", lambda m: m.linspace(0, 1, 7)),
    ("eye", lambda m: m.eye(3)), ("eye_rect", lambda m: m.eye(2, 4)),
    ("zeros_like", lambda m: m.zeros_like(m.ones(2, dtype=m.float64))),
    ("ones_like_dtype", lambda m: m.ones_like(m.zeros(2), dtype=m.int64)),
    ("full_like", lambda m: m.full_like(m.zeros(3), 7.0)), ("zeros_f64", lambda m: m.zeros(2, dtype=m.float64)),
]


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_factories_match_torch(name, make):
    torch = require_torch()
    t, n = make(torch), make(nc)
    assert tuple(n.shape) == tuple(t.shape)
    assert str(n.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    np.testing.assert_allclose(n.numpy(), t.numpy(), rtol=1e-6)


def test_random_factories_are_seeded_and_thread_independent():
    before = nc.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            nc.set_num_threads(threads)
            nc.manual_seed(123)
            results.append([nc.rand(1 << 16).numpy(), nc.randn(1 << 16).numpy(), nc.randint(0, 10, (1 << 16,)).numpy()])
    finally:
        nc.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_random_distributions():
    nc.manual_seed(0)
    u = nc.rand(1_000_000).numpy()
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 2e-3
    z = nc.randn(1_000_000, dtype=nc.float64).numpy()
    assert abs(z.mean()) < 5e-3 and abs(z.std() - 1) < 5e-3
    r = nc.randint(3, 7, (100_000,)).numpy()
    assert r.dtype == np.int64 and set(np.unique(r)) == {3, 4, 5, 6}
    x = nc.empty(1000).uniform_(-2, 2).numpy()
    assert -2 <= x.min() and x.max() < 2


def test_requires_grad_and_errors():
    x = nc.zeros(2, requires_grad=True)
    assert x.requires_grad and x.is_leaf
    with pytest.raises(ValueError, match="negative dimension"):
        nc.zeros(-1)
    with pytest.raises(TypeError, match=r"\[zeros\]"):
        nc.zeros("a")
    with pytest.raises(RuntimeError, match="floating-point"):
        nc.zeros(2, dtype=nc.int64, requires_grad=True)


def test_tensor_constructor_and_repr():
    torch = require_torch()
    for data in ([1, 2, 3], [[1.0, 2.0]], 3.5, [True, False], np.arange(4, dtype=np.float64)):
        t, n = torch.tensor(data), nc.tensor(data)
        assert str(n.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        np.testing.assert_array_equal(n.numpy(), t.numpy())
    assert repr(nc.tensor([1.0, 2.0], requires_grad=True)) == "tensor([1., 2.], requires_grad=True)"
    assert nc.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert nc.tensor(2.5).item() == 2.5
