"""PyTorch parity of the tensor ops real programs call: sorting and selection, triangles, scans,
einsum and batched products, roll, nonzero, scatter family, masked ops, F.pad, unique, bincount,
random sampling with generators, formatting and the legacy constructors."""
import numpy as np
import pytest

import neurocore as nc
import neurocore.nn.functional as F
from helpers import assert_close, check_op, gradcheck, rand, require_torch


@pytest.fixture(scope="module")
def torch():
    return require_torch()


# --- sort / argsort / topk ---------------------------------------------------------------------

@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_matches_torch_stable(torch, dim, descending):
    x = np.random.default_rng(0).integers(0, 4, size=(5, 7)).astype(np.float32)  # many ties
    t = torch.sort(torch.tensor(x), dim=dim, descending=descending, stable=True)
    n = nc.sort(nc.tensor(x), dim=dim, descending=descending)
    assert_close(n.values, t.values, 0, 0)
    assert_close(n.indices, t.indices, 0, 0)
    assert_close(nc.tensor(x).argsort(dim=dim, descending=descending), t.indices, 0, 0)
    assert n.indices.dtype == nc.int64


def test_sort_gradient_and_nan(torch):
    x = rand((4, 6), seed=1)
    check_op(lambda t, a: t.sort(a, dim=1, descending=True).values, lambda m, a: m.sort(a, dim=1, descending=True).values, [x])
    gradcheck(lambda a: nc.sort(a, 0).values, [x])
    v = nc.tensor([3.0, float("nan"), 1.0, 2.0])
    assert np.isnan(v.sort().values.numpy()[-1]) and v.sort().indices.tolist() == [2, 3, 0, 1]
    assert v.sort(descending=True).indices.tolist() == [1, 0, 3, 2]


@pytest.mark.parametrize("largest", [True, False])
def test_topk(torch, largest):
    x = rand((3, 8), seed=2)
    check_op(lambda t, a: t.topk(a, 3, dim=1, largest=largest), lambda m, a: m.topk(a, 3, dim=1, largest=largest), [x])
    check_op(lambda t, a: a.topk(2, 0, largest), lambda m, a: a.topk(2, 0, largest), [x])
    gradcheck(lambda a: nc.topk(a, 2, dim=-1).values, [x])
    # Ties: the values match PyTorch and the indices point at them (the order of tied indices is unspecified).
    tie = np.array([1.0, 3, 3, 2, 3], np.float32)
    n = nc.topk(nc.tensor(tie), 2)
    assert_close(n.values, torch.topk(torch.tensor(tie), 2).values, 0, 0)
    assert all(tie[i] == 3 for i in n.indices.tolist())


def test_topk_errors(torch):
    with pytest.raises(IndexError, match=r"\[topk\] k \(9\) is out of range"):
        nc.zeros(3, 8).topk(9)
    with pytest.raises(IndexError, match=r"dimension out of range"):
        nc.zeros(3, 8).topk(1, dim=2)
    with pytest.raises(IndexError, match=r"dimension out of range"):
        nc.zeros(3).sort(dim=1)


# --- tril / triu -------------------------------------------------------------------------------

@pytest.mark.parametrize("diagonal", [-1, 0, 2])
def test_tril_triu(torch, diagonal):
    x = rand((2, 4, 5), seed=3)
    check_op(lambda t, a: t.tril(a, diagonal), lambda m, a: m.tril(a, diagonal), [x])
    check_op(lambda t, a: a.triu(diagonal), lambda m, a: a.triu(diagonal), [x])
    a = nc.tensor(x)
    a.tril_(diagonal)
    assert_close(a, torch.tensor(x).tril_(diagonal), 0, 0)
    i = nc.ones(3, 3, dtype=nc.int64).triu(1)
    assert i.dtype == nc.int64 and i.tolist() == torch.ones(3, 3, dtype=torch.int64).triu(1).tolist()
    with pytest.raises(RuntimeError, match=r"\[tril\] input tensor must have at least 2 dimensions"):
        nc.zeros(3).tril()


# --- cumsum / cumprod --------------------------------------------------------------------------

@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum_cumprod(torch, dim):
    x = rand((3, 4, 2), seed=4)
    check_op(lambda t, a: t.cumsum(a, dim), lambda m, a: m.cumsum(a, dim), [x])
    check_op(lambda t, a: a.cumprod(dim), lambda m, a: a.cumprod(dim), [x])
    gradcheck(lambda a: nc.cumsum(a, dim), [x])
    gradcheck(lambda a: nc.cumprod(a, dim), [x])


def test_cumprod_gradient_with_zeros(torch):
    x = np.array([[2.0, 0.0, 3.0, 0.0, 5.0], [0.0, 1.5, -2.0, 4.0, 1.0], [1.0, 2.0, 3.0, 4.0, 0.0]])
    check_op(lambda t, a: t.cumprod(a, 1), lambda m, a: m.cumprod(a, 1), [x], dtype=np.float64)
    gradcheck(lambda a: nc.cumprod(a, 1), [x])
    gradcheck(lambda a: nc.cumprod(a, 0), [x.T.copy()])


def test_cumsum_dtypes(torch):
    i = nc.tensor([1, 2, 3])
    assert i.cumsum(0).dtype == nc.int64 and i.cumsum(0).tolist() == [1, 3, 6]
    b = nc.tensor([True, False, True])
    assert b.cumsum(0).dtype == nc.int64 and b.cumsum(0).tolist() == [1, 1, 2]
    f = nc.cumsum(i, 0, dtype=nc.float64)
    assert f.dtype == nc.float64 and f.tolist() == [1.0, 3.0, 6.0]
    assert nc.tensor(2.0).cumsum(0).item() == 2.0
    with pytest.raises(IndexError, match=r"dimension out of range"):
        nc.zeros(2, 3).cumsum(2)
    # float32 sums accumulate in double, as PyTorch's CPU kernel does
    big = np.full(100000, 0.1, np.float32)
    assert_close(nc.tensor(big).cumsum(0), torch.tensor(big).cumsum(0), 1e-6, 0)


# --- einsum / bmm / baddbmm --------------------------------------------------------------------

EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ij,ij->", [(3, 4), (3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ij", [(3, 4)]),
    ("ba", [(3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("...ij,...jk->...ik", [(2, 3, 4, 5), (3, 5, 2)]),
    ("...ij,...jk", [(2, 1, 4, 5), (3, 5, 2)]),
    ("b...d,bd->b...", [(2, 3, 4, 5), (2, 5)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    ("ijk->", [(2, 3, 4)]),
    ("iij->j", [(3, 3, 2)]),
    ("i,i,i->i", [(5,), (5,), (5,)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM_CASES)
def test_einsum(torch, eq, shapes):
    arrays = [rand(s, seed=10 + k) for k, s in enumerate(shapes)]
    check_op(lambda t, *a: t.einsum(eq, *a), lambda m, *a: m.einsum(eq, *a), arrays, rtol=1e-5, atol=1e-5)


def test_einsum_float64_gradcheck_and_list_form():
    a, b = rand((2, 3, 4), seed=1), rand((2, 4, 3), seed=2)
    gradcheck(lambda x, y: nc.einsum("bij,bjk->bik", x, y), [a, b])
    gradcheck(lambda x, y: nc.einsum("bij,bji->b", [x, y]), [a, b])


def test_einsum_errors():
    with pytest.raises(ValueError, match=r"\[einsum\].*number of subscripts"):
        nc.einsum("ij,jk->ik", nc.zeros(3, 4), nc.zeros(4))
    with pytest.raises(ValueError, match=r"\[einsum\] output subscript 'z' does not appear"):
        nc.einsum("ij->z", nc.zeros(3, 4))
    with pytest.raises(ValueError, match=r"\[einsum\] subscript 'j' has size 4 in one operand and 5"):
        nc.einsum("ij,jk->ik", nc.zeros(3, 4), nc.zeros(5, 2))
    with pytest.raises(ValueError, match=r"\[einsum\] the equation 'ij,jk->ik' has 2 operand"):
        nc.einsum("ij,jk->ik", nc.zeros(3, 4))


def test_bmm_baddbmm_addmm(torch):
    b1, b2, inp = rand((2, 3, 4), seed=1), rand((2, 4, 5), seed=2), rand((3, 5), seed=3)
    check_op(lambda t, a, b: t.bmm(a, b), lambda m, a, b: m.bmm(a, b), [b1, b2])
    check_op(lambda t, i, a, b: t.baddbmm(i, a, b, beta=0.5, alpha=2.0),
             lambda m, i, a, b: m.baddbmm(i, a, b, beta=0.5, alpha=2.0), [inp, b1, b2])
    check_op(lambda t, i, a, b: i.baddbmm(a, b), lambda m, i, a, b: i.baddbmm(a, b), [np.broadcast_to(inp, (2, 3, 5)).copy(), b1, b2])
    check_op(lambda t, i, a, b: t.addmm(i, a, b, beta=2, alpha=0.5), lambda m, i, a, b: m.addmm(i, a, b, beta=2, alpha=0.5),
             [inp, b1[0], b2[0]])
    gradcheck(lambda i, a, b: nc.baddbmm(i, a, b, beta=0.3, alpha=-1.5), [inp, b1, b2])
    # beta=0: input is ignored, NaN included
    nan_in = nc.full((3, 5), float("nan"))
    assert np.all(np.isfinite(nc.baddbmm(nan_in, nc.tensor(b1), nc.tensor(b2), beta=0).numpy()))
    with pytest.raises(RuntimeError, match=r"\[bmm\] batch1 must be a 3D tensor"):
        nc.bmm(nc.zeros(3, 4), nc.zeros(2, 4, 5))
    with pytest.raises(RuntimeError, match=r"\[bmm\] expected size for first two dimensions of batch2"):
        nc.bmm(nc.zeros(2, 3, 4), nc.zeros(2, 5, 5))


# --- roll / nonzero ----------------------------------------------------------------------------

@pytest.mark.parametrize("shifts,dims", [(1, None), (-2, None), (1, 0), ((1, -2), (0, 1)), (5, 1)])
def test_roll(torch, shifts, dims):
    x = rand((3, 4), seed=5)
    check_op(lambda t, a: t.roll(a, shifts, dims), lambda m, a: m.roll(a, shifts, dims), [x])


def test_nonzero(torch):
    x = np.array([[0, 1, 0], [2, 0, 3]], np.int64)
    assert_close(nc.tensor(x).nonzero(), torch.tensor(x).nonzero(), 0, 0)
    for n, t in zip(nc.nonzero(nc.tensor(x), as_tuple=True), torch.nonzero(torch.tensor(x), as_tuple=True)):
        assert_close(n, t, 0, 0)
    assert tuple(nc.zeros(2, 3).nonzero().shape) == (0, 2)
    assert nc.nonzero(nc.tensor([0.0, 2.0, 0.5])).tolist() == [[1], [2]]


# --- scatter family ----------------------------------------------------------------------------

def test_scatter_src_value_and_reduce(torch):
    x = rand((3, 5), seed=6)
    idx = np.array([[0, 1, 2, 0, 0], [2, 0, 0, 1, 2]], np.int64)
    src = rand((2, 5), seed=7)
    check_op(lambda t, a, s: a.scatter(0, torch.tensor(idx), s), lambda m, a, s: a.scatter(0, nc.tensor(idx), s), [x, src])
    check_op(lambda t, a, s: t.scatter_add(a, 0, torch.tensor(idx), s),
             lambda m, a, s: m.scatter_add(a, 0, nc.tensor(idx), s), [x, src])
    check_op(lambda t, a: a.scatter(1, torch.tensor(idx[:, :3]), 2.5), lambda m, a: a.scatter(1, nc.tensor(idx[:, :3]), 2.5), [x])
    for reduce in ("add", "multiply"):
        t = torch.tensor(x).scatter_(0, torch.tensor(idx), torch.tensor(src), reduce=reduce)
        n = nc.tensor(x).scatter_(0, nc.tensor(idx), nc.tensor(src), reduce=reduce)
        assert_close(n, t, 1e-6, 1e-7)
    # src larger than index: only the part index addresses is used
    big = rand((4, 6), seed=8)
    check_op(lambda t, a, s: a.scatter(0, torch.tensor(idx), s), lambda m, a, s: a.scatter(0, nc.tensor(idx), s), [x, big], grad=False)
    gradcheck(lambda a, s: nc.scatter(a, 0, nc.tensor(idx), s), [x, big])  # (PyTorch's backward refuses this case)
    uniq = nc.tensor([[0, 1, 2], [2, 0, 1]])  # (with repeats the surviving write is unspecified, as in PyTorch)
    gradcheck(lambda a, s: nc.scatter(a, 1, uniq, s), [x, src])
    gradcheck(lambda a, s: nc.scatter_add(a, 1, nc.tensor(idx[:, :3]), s), [x, src])
    # in place, through autograd
    a = nc.tensor(x, requires_grad=True)
    b = a * 1
    b.scatter_(0, nc.tensor(idx), 0.0)
    b.sum().backward()
    ta = torch.tensor(x, requires_grad=True)
    tb = ta * 1
    tb.scatter_(0, torch.tensor(idx), 0.0)
    tb.sum().backward()
    assert_close(a.grad, ta.grad, 0, 0)
    # scatter_add_ in place
    y = nc.zeros(3, 5, dtype=nc.float64)
    y.scatter_add_(0, nc.tensor(idx), nc.tensor(src))
    assert_close(y, torch.zeros(3, 5, dtype=torch.float64).scatter_add_(0, torch.tensor(idx), torch.tensor(src)), 1e-6, 1e-6)


def test_scatter_errors(torch):
    x = nc.zeros(3, 5)
    with pytest.raises(IndexError, match=r"\[scatter\] index 3 is out of bounds for dimension 0 with size 3"):
        x.scatter(0, nc.tensor([[3]]), 1.0)
    with pytest.raises(TypeError, match=r"\[scatter\] index must be an int64 tensor"):
        x.scatter(0, nc.tensor([[0.0]]), 1.0)
    with pytest.raises(ValueError, match=r"\[scatter\] reduce argument must be either 'add' or 'multiply'"):
        x.scatter(0, nc.tensor([[0]]), 1.0, reduce="max")
    with pytest.raises(TypeError, match=r"\[scatter\] expected src to have the input's dtype"):
        x.scatter(0, nc.tensor([[0]]), nc.tensor([[1.0]], dtype=nc.float64))
    a = nc.zeros(3, 5, requires_grad=True) * 1
    with pytest.raises(RuntimeError, match=r"reduce='multiply' is not implemented"):
        a.scatter(0, nc.tensor([[0]]), 2.0, reduce="multiply")


def test_index_fill_masked_fill_masked_scatter(torch):
    x = rand((3, 4), seed=9)
    idx = np.array([0, 2], np.int64)
    check_op(lambda t, a: a.index_fill(1, torch.tensor(idx), -1.0), lambda m, a: a.index_fill(1, nc.tensor(idx), -1.0), [x])
    n = nc.tensor(x)
    n.index_fill_(0, nc.tensor([1]), 7.0)
    assert_close(n, torch.tensor(x).index_fill_(0, torch.tensor([1]), 7.0), 0, 0)
    mask = np.array([[True, False, True, False]] * 3)
    check_op(lambda t, a: a.masked_fill(torch.tensor(mask), 0.5), lambda m, a: m.masked_fill(a, nc.tensor(mask), 0.5), [x])
    n = nc.tensor(x)
    assert n.masked_fill_(nc.tensor(mask[0]), 2.0) is n
    assert_close(n, torch.tensor(x).masked_fill_(torch.tensor(mask[0]), 2.0), 0, 0)
    src = rand((4, 4), seed=10)
    check_op(lambda t, a, s: a.masked_scatter(torch.tensor(mask), s), lambda m, a, s: a.masked_scatter(nc.tensor(mask), s),
             [x, src])
    n = nc.tensor(x)
    n.masked_scatter_(nc.tensor(mask[0]), nc.tensor(src))
    assert_close(n, torch.tensor(x).masked_scatter_(torch.tensor(mask[0]), torch.tensor(src)), 0, 0)
    with pytest.raises(RuntimeError, match=r"\[masked_scatter_\] number of elements in source"):
        nc.tensor(x).masked_scatter(nc.tensor(mask), nc.zeros(2))
    with pytest.raises(IndexError, match=r"\[index_fill_\] index 4 is out of range"):
        nc.tensor(x).index_fill(1, nc.tensor([4]), 0.0)


# --- F.pad -------------------------------------------------------------------------------------

PAD_CASES = [
    ((1, 2), "constant", (2, 3, 5)), ((1, 2, 0, 3), "constant", (2, 3, 5)), ((-1, 2, 1, -2), "constant", (2, 4, 5)),
    ((2, 1), "reflect", (2, 3, 5)), ((1, 2, 2, 1), "reflect", (1, 2, 4, 5)),
    ((2, 3), "replicate", (2, 3, 5)), ((1, 2, 2, 1), "replicate", (2, 4, 5)), ((1, 1, 1, 1, 1, 1), "replicate", (1, 1, 2, 3, 4)),
    ((2, 1), "circular", (2, 3, 5)), ((1, 2, 3, 1), "circular", (1, 2, 4, 5)),
]


@pytest.mark.parametrize("pad,mode,shape", PAD_CASES)
def test_pad(torch, pad, mode, shape):
    x = rand(shape, seed=11)
    check_op(lambda t, a: t.nn.functional.pad(a, pad, mode=mode), lambda m, a: F.pad(a, pad, mode=mode), [x])


def test_pad_value_gradcheck_and_errors(torch):
    x = rand((2, 3, 4), seed=12)
    check_op(lambda t, a: t.nn.functional.pad(a, (1, 1, 2, 0), value=-3.0), lambda m, a: F.pad(a, (1, 1, 2, 0), value=-3.0), [x])
    gradcheck(lambda a: F.pad(a, (2, 1), mode="reflect"), [x])
    gradcheck(lambda a: F.pad(a, (3, 1), mode="replicate"), [x])
    gradcheck(lambda a: F.pad(a, (1, -1, 1, 1)), [x])
    with pytest.raises(RuntimeError, match=r"\[pad\] padding size should be less than"):
        F.pad(nc.zeros(1, 2, 3), (3, 0), mode="reflect")
    with pytest.raises(ValueError, match=r"\[pad\] padding length must be divisible by 2"):
        F.pad(nc.zeros(1, 2, 3), (1,))
    with pytest.raises(NotImplementedError, match=r"\[pad\] unknown padding mode"):
        F.pad(nc.zeros(1, 2, 3), (1, 1), mode="mirror")


# --- unique / bincount -------------------------------------------------------------------------

def test_unique(torch):
    x = np.array([[3, 1, 3], [2, 1, 5]], np.int64)
    t = torch.unique(torch.tensor(x), return_inverse=True, return_counts=True)
    n = nc.unique(nc.tensor(x), return_inverse=True, return_counts=True)
    for a, b in zip(n, t):
        assert_close(a, b, 0, 0)
    assert_close(nc.tensor(x).unique(), torch.tensor(x).unique(), 0, 0)
    f = np.array([0.5, -1.0, 0.5, 2.0], np.float32)
    n = nc.unique(nc.tensor(f), return_counts=True)
    assert n[0].dtype == nc.float32 and n[0].tolist() == [-1.0, 0.5, 2.0] and n[1].tolist() == [1, 2, 1]
    rows = np.array([[1, 2], [0, 1], [1, 2]], np.int64)
    for a, b in zip(nc.unique(nc.tensor(rows), dim=0, return_inverse=True),
                    torch.unique(torch.tensor(rows), dim=0, return_inverse=True)):
        assert_close(a, b, 0, 0)


def test_bincount(torch):
    x = np.array([0, 1, 1, 3, 1], np.int64)
    assert_close(nc.bincount(nc.tensor(x)), torch.bincount(torch.tensor(x)), 0, 0)
    assert_close(nc.tensor(x).bincount(minlength=7), torch.tensor(x).bincount(minlength=7), 0, 0)
    for wdt in (np.float32, np.float64):
        w = rand((5,), wdt, seed=13)
        t = torch.bincount(torch.tensor(x), weights=torch.tensor(w))
        n = nc.bincount(nc.tensor(x), weights=nc.tensor(w))
        assert str(n.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        assert_close(n, t, 1e-6, 1e-7)
    with pytest.raises(RuntimeError, match=r"\[bincount\] .*non-negative"):
        nc.bincount(nc.tensor([1, -1]))
    with pytest.raises(RuntimeError, match=r"\[bincount\] only supports 1-d"):
        nc.bincount(nc.tensor([[1]]))


# --- random: Generator, randperm, multinomial --------------------------------------------------

def test_generator_streams_match_manual_seed():
    g = nc.Generator().manual_seed(123)
    nc.manual_seed(123)
    a = nc.rand(5)
    b = nc.randn(3)
    c = nc.randint(0, 10, (4,))
    assert nc.rand(5, generator=g).tolist() == a.tolist()
    assert nc.randn(3, generator=g).tolist() == b.tolist()
    assert nc.randint(0, 10, (4,), generator=g).tolist() == c.tolist()
    # a generator leaves the global stream alone, and the global stream leaves it alone
    nc.manual_seed(7)
    x1 = nc.rand(4)
    nc.manual_seed(7)
    nc.rand(3, generator=g)
    assert nc.rand(4).tolist() == x1.tolist()
    assert g.initial_seed() == 123 and nc.Generator().initial_seed() == 67280421310721


def test_generator_state_roundtrip():
    g = nc.Generator().manual_seed(5)
    nc.rand(3, generator=g)
    state = g.get_state()
    first = nc.randn(4, generator=g).tolist()
    g.set_state(state)
    assert nc.randn(4, generator=g).tolist() == first
    t = nc.empty(6).uniform_(-1, 1, generator=nc.Generator().manual_seed(9))
    u = nc.empty(6).uniform_(-1, 1, generator=nc.Generator().manual_seed(9))
    assert t.tolist() == u.tolist() and all(-1 <= v < 1 for v in t.tolist())
    n1 = nc.empty(6).normal_(2.0, 0.5, generator=nc.Generator().manual_seed(9))
    n2 = nc.normal(2.0, 0.5, (6,), generator=nc.Generator().manual_seed(9))
    assert n1.tolist() == n2.tolist()
    r1 = nc.empty(5, dtype=nc.int64).random_(3, 9, generator=nc.Generator().manual_seed(2))
    r2 = nc.empty(5, dtype=nc.int64).random_(3, 9, generator=nc.Generator().manual_seed(2))
    assert r1.tolist() == r2.tolist() and all(3 <= v < 9 for v in r1.tolist())
    assert all(0 <= v < 4 for v in nc.empty(50, dtype=nc.int64).random_(4).tolist())
    s = nc.Generator().seed()
    assert isinstance(s, int) and s >= 0
    nc.manual_seed(11)
    st = nc.default_generator.get_state()
    v = nc.rand(2).tolist()
    nc.default_generator.set_state(st)
    assert nc.rand(2).tolist() == v
    w = nc.nn.Linear(3, 2).weight
    nc.nn.init.kaiming_uniform_(w, generator=nc.Generator().manual_seed(1))
    w2 = w.detach().clone()
    nc.nn.init.kaiming_uniform_(w, generator=nc.Generator().manual_seed(1))
    assert w.tolist() == w2.tolist()
    with pytest.raises(TypeError, match=r"generator must be a neurocore.Generator"):
        nc.rand(2, generator=3)


def test_randperm():
    p = nc.randperm(50, generator=nc.Generator().manual_seed(3))
    assert p.dtype == nc.int64 and sorted(p.tolist()) == list(range(50))
    assert p.tolist() == nc.randperm(50, generator=nc.Generator().manual_seed(3)).tolist()
    assert p.tolist() != list(range(50))
    assert nc.randperm(0).tolist() == []
    with pytest.raises(RuntimeError, match=r"\[randperm\] n must be non-negative"):
        nc.randperm(-1)


def test_multinomial_distribution():
    g = nc.Generator().manual_seed(0)
    w = nc.tensor([1.0, 0.0, 3.0, 4.0])
    s = nc.multinomial(w, 20000, replacement=True, generator=g)
    counts = np.bincount(s.numpy(), minlength=4) / 20000
    np.testing.assert_allclose(counts, [0.125, 0.0, 0.375, 0.5], atol=0.015)
    assert counts[1] == 0
    # without replacement: distinct indices, zero weights never chosen, first draw proportional to the weights
    rows = nc.tensor(np.tile([1.0, 0.0, 3.0, 4.0], (4000, 1)))
    d = nc.multinomial(rows, 3, generator=g).numpy()
    assert d.shape == (4000, 3) and np.all(np.sort(d, 1) == [0, 2, 3])
    np.testing.assert_allclose(np.bincount(d[:, 0], minlength=4) / 4000, [0.125, 0, 0.375, 0.5], atol=0.03)
    # second draw given the first is 3: proportional to (1, 3)
    second = d[d[:, 0] == 3, 1]
    np.testing.assert_allclose(np.mean(second == 2), 0.75, atol=0.04)
    with pytest.raises(RuntimeError, match=r"not enough non-negative category"):
        nc.multinomial(w, 4)
    with pytest.raises(RuntimeError, match=r"probability tensor contains either inf, nan or element < 0"):
        nc.multinomial(nc.tensor([1.0, -1.0]), 1)
    with pytest.raises(RuntimeError, match=r"prob_dist must be 1 or 2 dim"):
        nc.multinomial(nc.ones(2, 2, 2), 1)


# --- small API: clone(memory_format), nelement, add_(alpha), format, legacy constructors --------

def test_clone_numel_alpha(torch):
    x = rand((2, 3, 4, 5), np.float32, seed=14)
    c = nc.tensor(x).clone(memory_format=nc.channels_last)
    tc = torch.tensor(x).clone(memory_format=torch.channels_last)
    assert c.stride() == tc.stride() and np.array_equal(c.numpy(), x)
    assert nc.clone(nc.tensor(x), memory_format=nc.contiguous_format).is_contiguous()
    assert nc.tensor(x).nelement() == 120 == nc.numel(nc.tensor(x))
    a, b = rand((3,), seed=15), rand((3,), seed=16)
    check_op(lambda t, p, q: p.add(q, alpha=2.5), lambda m, p, q: p.add(q, alpha=2.5), [a, b])
    check_op(lambda t, p, q: p.sub(q, alpha=-0.5), lambda m, p, q: p.sub(q, alpha=-0.5), [a, b])
    n = nc.tensor(a)
    assert n.add_(nc.tensor(b), alpha=3) is n
    assert_close(n, torch.tensor(a).add_(torch.tensor(b), alpha=3), 1e-12, 0)
    n.sub_(1.0, alpha=2)
    assert_close(n, torch.tensor(a).add_(torch.tensor(b), alpha=3).sub_(1.0, alpha=2), 1e-12, 0)
    with pytest.raises(TypeError, match=r"alpha must not be a floating point"):
        nc.tensor([1, 2]).add(nc.tensor([1, 1]), alpha=0.5)


def test_format_like_torch(torch):
    for v in (0.5, 1.0 / 3, -2.0):
        assert f"{nc.tensor(v)}" == f"{torch.tensor(v)}"
        assert f"{nc.tensor(v):.4f}" == f"{torch.tensor(v):.4f}"
        assert f"{nc.tensor(v):>10.2e}" == f"{torch.tensor(v):>10.2e}"
    assert f"{nc.tensor(3)}" == f"{torch.tensor(3)}" == "3"
    assert f"{nc.tensor(3):04d}" == "0003"
    assert f"{nc.zeros(2)}" == str(nc.zeros(2))
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{nc.zeros(2):.2f}"
    assert "{:.3f}".format(nc.tensor([1.5]).sum()) == "1.500"


def test_legacy_constructors():
    a = nc.LongTensor([1, 2, 3])
    assert a.dtype == nc.int64 and a.tolist() == [1, 2, 3]
    f = nc.FloatTensor(2, 3)
    assert f.dtype == nc.float32 and tuple(f.shape) == (2, 3)
    assert nc.FloatTensor([[1, 2]]).dtype == nc.float32 and nc.DoubleTensor([1]).dtype == nc.float64
    assert nc.BoolTensor([True, False]).dtype == nc.bool
    assert isinstance(nc.zeros(2), nc.FloatTensor) and not isinstance(nc.zeros(2), nc.LongTensor)
    assert isinstance(a, nc.LongTensor)
    assert tuple(nc.LongTensor().shape) == (0,)
