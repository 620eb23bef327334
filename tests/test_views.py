"""View semantics as in PyTorch: view() succeeds exactly where PyTorch's stride rule
(computeStride) allows, with PyTorch's message where it does not; reshape() copies only when a
view is impossible; in-place writes through expanded tensors raise."""
import numpy as np
import pytest

import neurocore as nc
from helpers import require_torch


@pytest.fixture(scope="module")
def torch():
    return require_torch()


def _arange(lib, *shape):
    n = int(np.prod(shape))
    return lib.arange(n).reshape(*shape).to(lib.float32)


# (how to make the source from a contiguous tensor, the shape to view it as)
CASES = [
    (lambda x: x.split(2, dim=1)[1], (3, 4, 4, 5), (3, 2, 20)),
    (lambda x: x.split(2, dim=1)[0], (3, 4, 5), (3, -1)),
    (lambda x: x.split(2, dim=1)[0], (3, 4, 5), (6, 5)),
    (lambda x: x.chunk(2, dim=0)[1], (4, 3, 2), (12,)),
    (lambda x: x.chunk(3, dim=2)[1], (2, 3, 6), (6, 2)),
    (lambda x: x.chunk(3, dim=2)[1], (2, 3, 6), (12,)),
    (lambda x: x.transpose(-1, -2), (2, 3, 4), (6, 4, 1)),
    (lambda x: x.transpose(-1, -2), (2, 3, 4), (2, 12)),
    (lambda x: x.transpose(-1, -2), (2, 3, 4), (2, 4, 3)),
    (lambda x: x.transpose(0, 1), (2, 3, 4), (3, 8)),
    (lambda x: x.transpose(0, 1), (2, 3, 4), (3, 2, 2, 2)),
    (lambda x: x.transpose(0, 1), (2, 3, 4), (6, 4)),
    (lambda x: x.narrow(2, 1, 2), (2, 3, 4), (6, 2)),
    (lambda x: x.narrow(2, 1, 2), (2, 3, 4), (12,)),
    (lambda x: x.narrow(0, 1, 1), (2, 3, 4), (12,)),
    (lambda x: x[:, ::2], (4, 6), (4, 3, 1)),
    (lambda x: x[:, ::2], (4, 6), (12,)),
    (lambda x: x.permute(2, 0, 1), (2, 3, 4), (4, 6)),
    (lambda x: x.permute(1, 2, 0), (2, 3, 4), (12, 2)),
    (lambda x: x.unsqueeze(1).expand(2, 3, 4), (2, 4), (2, 3, 2, 2)),
    (lambda x: x.unsqueeze(1).expand(2, 3, 4), (2, 4), (6, 4)),
    (lambda x: x[1], (3, 1, 4), (4, 1)),
    (lambda x: x.transpose(0, 1)[:, :0], (3, 4), (0, 3)),
]


@pytest.mark.parametrize("make,shape,new", CASES)
def test_view_matches_torch(torch, make, shape, new):
    t_src, n_src = make(_arange(torch, *shape)), make(_arange(nc, *shape))
    assert tuple(n_src.stride()) == tuple(t_src.stride())
    try:
        t_view = t_src.view(*new)
    except RuntimeError as e:
        assert "view size is not compatible with input tensor's size and stride" in str(e)
        with pytest.raises(RuntimeError, match=r"\[view\] view size .* is not compatible with input tensor's size "
                                                 r"and stride .*Use \.reshape\(\.\.\.\) instead\."):
            n_src.view(*new)
        t_res, n_res = t_src.reshape(*new), n_src.reshape(*new)
        assert t_res.data_ptr() != t_src.data_ptr() or t_res.numel() == 0
        assert n_res.storage_offset() == 0 and n_res.is_contiguous()
        np.testing.assert_array_equal(n_res.numpy(), t_res.numpy())
        return
    n_view = n_src.view(*new)
    assert tuple(n_view.shape) == tuple(t_view.shape)
    assert tuple(n_view.stride()) == tuple(t_view.stride())
    assert n_view.storage_offset() == t_view.storage_offset()
    np.testing.assert_array_equal(n_view.numpy(), t_view.numpy())
    # reshape shares storage exactly when view does
    n_res = n_src.reshape(*new)
    assert n_res.data_ptr() == n_src.data_ptr() and tuple(n_res.stride()) == tuple(t_view.stride())


def test_view_shares_memory_and_gradient(torch):
    x = nc.arange(24.0).reshape(2, 3, 4)
    v = x.split(2, dim=1)[1].view(2, 4)
    v.add_(100)
    assert x[:, 2].tolist() == (np.arange(24.0).reshape(2, 3, 4)[:, 2] + 100).tolist()
    a = nc.tensor(np.random.default_rng(0).standard_normal((4, 6)), requires_grad=True)
    ta = torch.tensor(a.detach().numpy(), requires_grad=True)
    (a.chunk(2, dim=0)[1].view(-1) * nc.arange(12.0, dtype=nc.float64)).sum().backward()
    (ta.chunk(2, dim=0)[1].view(-1) * torch.arange(12.0, dtype=torch.float64)).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())


def test_reshape_copies_only_when_needed(torch):
    x = nc.arange(12.0).reshape(3, 4)
    assert x.reshape(4, 3).data_ptr() == x.data_ptr()
    t = x.t()
    r = t.reshape(12)
    assert r.data_ptr() != x.data_ptr() and r.tolist() == torch.arange(12.0).reshape(3, 4).t().reshape(12).tolist()
    assert t.reshape(4, 3).data_ptr() == x.data_ptr()  # the same shape: a view
    assert nc.flatten(x.narrow(0, 1, 2)).data_ptr() == x[1].data_ptr()


def test_view_errors(torch):
    with pytest.raises(RuntimeError, match=r"Use \.reshape\(\.\.\.\) instead"):
        nc.zeros(2, 3).t().view(6)
    with pytest.raises(ValueError, match=r"\[view\] shape \(4, 2\) is invalid for input of shape \(2, 3\)"):
        nc.zeros(2, 3).view(4, 2)
    with pytest.raises(ValueError, match=r"only one dimension can be inferred"):
        nc.zeros(2, 3).view(-1, -1)


def test_inplace_through_expanded_raises(torch):
    with pytest.raises(RuntimeError) as t_err:
        torch.zeros(1, 3).expand(4, 3).add_(1)
    for op in (lambda e: e.add_(1), lambda e: e.mul_(2), lambda e: e.copy_(nc.ones(4, 3)),
               lambda e: e.scatter_(0, nc.tensor([[0, 1, 2]]), 1.0), lambda e: e.tril_()):
        e = nc.zeros(1, 3).expand(4, 3)
        with pytest.raises(RuntimeError, match=r"unsupported operation: more than one element of the written-to "
                                                 r"tensor .*refers to a single memory location"):
            op(e)
    assert "more than one element of the written-to tensor refers to a single memory location" in str(t_err.value)
    e = nc.zeros(1, 3).expand(4, 3)
    e.fill_(2.0)  # one value everywhere is allowed, as in PyTorch
    assert e.tolist() == [[2.0] * 3] * 4
