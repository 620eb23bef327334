"""The storage dtypes uint8, int8, int16, int32, float16 and bfloat16: creation, conversion with
PyTorch's rounding (round-to-nearest-even for the 16-bit floats), NumPy round trips, promotion,
arithmetic computed in int64 / float32 and rounded back, views and indexing."""
import numpy as np
import pytest

import neurocore as nc
from helpers import require_torch


@pytest.fixture(scope="module")
def torch():
    return require_torch()


NAMES = ["uint8", "int8", "int16", "int32", "float16", "bfloat16"]


def tdt(torch, name):
    return getattr(torch, name)


def test_names_itemsize_and_aliases():
    for name, size in zip(NAMES, (1, 1, 2, 4, 2, 2)):
        d = getattr(nc, name)
        assert str(d) == f"neurocore.{name}" and d.itemsize == size
        assert d.is_floating_point == name.startswith(("float", "bfloat"))
    assert nc.half == nc.float16 and nc.short == nc.int16 and nc.int == nc.int32


@pytest.mark.parametrize("name", NAMES)
def test_conversion_matches_torch(torch, name):
    rng = np.random.default_rng(0)
    vals = np.concatenate([rng.standard_normal(2000) * 10.0 ** rng.integers(-8, 5, 2000),
                           [0.0, -0.0, 1.0, -1.0, 2.5, 3.5, -2.5, 100.25, 65504.0, 65519.0, 65520.0, 1e5, 3e38,
                            5.96e-8, 2.98e-8, 1e-40, 1.00390625, 1.01171875]]).astype(np.float32)
    if not name.startswith(("float", "bfloat")):
        vals = np.round(vals[np.abs(vals) < 100])  # integer conversions of in-range values
    t = torch.tensor(vals).to(tdt(torch, name))
    n = nc.tensor(vals).to(getattr(nc, name))
    assert n.dtype == getattr(nc, name) and tuple(n.shape) == tuple(t.shape)
    np.testing.assert_array_equal(n.float().numpy(), t.float().numpy())
    np.testing.assert_array_equal(n.double().numpy(), t.double().numpy())
    # from float64 as well, and back through every other dtype
    np.testing.assert_array_equal(nc.tensor(vals.astype(np.float64)).to(getattr(nc, name)).float().numpy(),
                                  torch.tensor(vals.astype(np.float64)).to(tdt(torch, name)).float().numpy())
    assert n.long().tolist() == t.long().tolist()
    assert n.bool().tolist() == t.bool().tolist()


def test_bfloat16_rounds_to_nearest_even(torch):
    # 1 + 2^-8 is halfway between the bfloat16 values 1 and 1 + 2^-7: even (1) wins; 1 + 3*2^-8 rounds up
    v = nc.tensor([1.00390625, 1.01171875, float("nan"), float("inf")]).bfloat16()
    out = v.float().tolist()
    assert out[0] == 1.0 and out[1] == 1.015625 and np.isnan(out[2]) and out[3] == float("inf")
    h = nc.tensor([2049.0, 2051.0, 1e6]).half().float().tolist()
    assert h == [2048.0, 2052.0, float("inf")]


def test_methods_and_type(torch):
    x = nc.tensor([1.5, -2.25])
    assert x.half().dtype == nc.float16 and x.bfloat16().dtype == nc.bfloat16
    assert x.int().dtype == nc.int32 and x.short().dtype == nc.int16 and x.char().dtype == nc.int8
    assert x.byte().dtype == nc.uint8
    assert x.type(nc.float16).dtype == nc.float16 and x.type("torch.HalfTensor").dtype == nc.float16
    assert x.to(nc.bfloat16).to(nc.float32).tolist() == [1.5, -2.25]
    assert x.int().tolist() == [1, -2]  # truncation toward zero, as in PyTorch
    assert nc.zeros(2, 3, dtype=nc.int8).tolist() == [[0] * 3] * 2
    assert nc.ones(2, dtype=nc.bfloat16).float().tolist() == [1.0, 1.0]
    assert nc.full((2,), 7, dtype=nc.int16).tolist() == [7, 7]
    assert nc.tensor([1, 2], dtype=nc.uint8).dtype == nc.uint8
    assert nc.tensor([0.1], dtype=nc.bfloat16).item() == torch.tensor([0.1], dtype=torch.bfloat16).item()
    assert repr(nc.tensor([1.5], dtype=nc.float16)) == "tensor([1.5000], dtype=neurocore.float16)"
    assert x.element_size() == 4 and x.half().element_size() == 2


@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "float16"])
def test_numpy_round_trip(name):
    arr = np.array([[1, 2, 3], [4, 5, 6]], dtype=getattr(np, name))
    t = nc.from_numpy(arr)
    assert t.dtype == getattr(nc, name)
    t[0, 0] = 9  # shares memory
    assert arr[0, 0] == 9
    back = t.numpy()
    assert back.dtype == arr.dtype and np.array_equal(back, arr)
    assert nc.as_tensor(arr).dtype in (getattr(nc, name), nc.int64, nc.float32)
    assert nc.tensor(arr, dtype=getattr(nc, name)).numpy().dtype == arr.dtype


def test_bfloat16_numpy_refused_like_torch(torch):
    with pytest.raises(TypeError, match="BFloat16"):
        nc.ones(2, dtype=nc.bfloat16).numpy()
    assert nc.ones(2, dtype=nc.bfloat16).tolist() == [1.0, 1.0]


def test_promotion_matches_torch(torch):
    names = NAMES + ["bool", "int64", "float32", "float64"]
    for a in names:
        for b in names:
            ta = torch.ones(2, dtype=getattr(torch, a))
            tb = torch.ones(2, dtype=getattr(torch, b))
            na = nc.ones(2, dtype=getattr(nc, a if a != "bool" else "bool_"))
            nb = nc.ones(2, dtype=getattr(nc, b if b != "bool" else "bool_"))
            if a == b == "bool":
                continue  # bool * bool is int64 here (arithmetic has no bool kernel; see README)
            expected = str((ta * tb).dtype).split(".")[-1]
            assert str((na * nb).dtype).split(".")[-1] == expected, (a, b)
            assert (na * nb).float().tolist() == [1.0, 1.0]


def test_arithmetic_computed_wide_and_rounded_back(torch):
    u = nc.tensor([250, 3], dtype=nc.uint8)
    assert (u + 10).dtype == nc.uint8 and (u + 10).tolist() == (torch.tensor([250, 3], dtype=torch.uint8) + 10).tolist()
    assert (u / 2).dtype == nc.float32 and (u / 2).tolist() == [125.0, 1.5]
    i = nc.tensor([7, -7], dtype=nc.int32)
    assert (i * 3).dtype == nc.int32 and (i * 3).tolist() == [21, -21]
    assert (i + 0.5).dtype == nc.float32
    h = nc.tensor([0.1, 0.2, 1000.0], dtype=nc.float16)
    th = torch.tensor([0.1, 0.2, 1000.0], dtype=torch.float16)
    for nf, tf in ((lambda a: a + a, lambda a: a + a), (lambda a: a * 3.3, lambda a: a * 3.3),
                   (lambda a: a.exp(), lambda a: a.exp()), (lambda a: a.sqrt(), lambda a: a.sqrt()),
                   (lambda a: -a, lambda a: -a), (lambda a: a.abs(), lambda a: a.abs())):
        r = nf(h)
        assert r.dtype == nc.float16
        np.testing.assert_array_equal(r.float().numpy(), tf(th).float().numpy())
    b = nc.tensor([1.5, 2.0], dtype=nc.bfloat16)
    assert (b * b).dtype == nc.bfloat16 and (b * b).float().tolist() == [2.25, 4.0]
    assert (b + nc.ones(2)).dtype == nc.float32
    assert abs(nc.tensor([-3], dtype=nc.int8)).tolist() == [3]


def test_gradient_through_half(torch):
    x = nc.tensor([0.5, -1.0, 2.0], requires_grad=True)
    y = (x.half() * x.half()).float().sum()
    y.backward()
    tx = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    (tx.half() * tx.half()).float().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_views_and_indexing_on_storage_dtypes(torch):
    for name in NAMES:
        d = getattr(nc, name)
        x = nc.arange(12).reshape(3, 4).to(d)
        assert x.t().contiguous().float().tolist() == torch.arange(12).reshape(3, 4).t().float().tolist()
        assert x[1:, ::2].float().tolist() == [[4.0, 6.0], [8.0, 10.0]]
        assert x[nc.tensor([2, 0])].float().tolist() == [[8.0, 9.0, 10.0, 11.0], [0.0, 1.0, 2.0, 3.0]]
        assert nc.cat([x, x]).shape == (6, 4) and nc.cat([x, x]).dtype == d
        y = x.clone()
        y[0] = 5
        assert y[0].float().tolist() == [5.0] * 4 and x[0, 0].item() == 0
        assert x.view(4, 3).dtype == d and x.flatten().shape == (12,)


def test_reductions_and_matmul_in_float32(torch):
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    for name in ("float16", "bfloat16"):
        n, t = nc.tensor(x).to(getattr(nc, name)), torch.tensor(x).to(getattr(torch, name))
        assert (n @ n.t()).dtype == getattr(nc, name)
        np.testing.assert_allclose((n @ n.t()).float().numpy(), (t @ t.t()).float().numpy(), rtol=1e-2, atol=1e-2)
        assert n.sum().dtype == getattr(nc, name)
        np.testing.assert_allclose(n.sum(1).float().numpy(), t.sum(1).float().numpy(), rtol=1e-2)
        np.testing.assert_allclose(n.mean().float().item(), t.mean().float().item(), rtol=1e-2)
    i = nc.tensor([[1, 2], [3, 4]], dtype=nc.int32)
    assert i.sum().dtype == nc.int64 and i.sum().item() == 10 and i.sum(0).tolist() == [4, 6]


def test_ops_without_kernels_say_so():
    with pytest.raises(TypeError, match=r"\[logsumexp\].*float16"):
        nc.logsumexp(nc.ones(3, dtype=nc.float16), 0)
    with pytest.raises(TypeError, match=r"int32"):
        nc.ones(2, 2, dtype=nc.int32) @ nc.ones(2, 2, dtype=nc.int32)
