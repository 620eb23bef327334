"""Batch norm, layer norm and channel dropout against PyTorch: outputs, gradients, running
statistics, modes, state_dict, thread-count independence, double backward."""
import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from neurocore.nn import functional as F
from helpers import require_torch, rand, assert_close, check_op, gradcheck

TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
SHAPES = [(8, 4), (5, 3, 7), (4, 3, 5, 6)]


def torch_bn(torch, shape, **kw):
    return (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(shape[1], **kw)


def nc_bn(shape, **kw):
    return (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(shape[1], **kw)


def load_from_torch(nc_module, torch_module):
    nc_module.load_state_dict({k: nc.tensor(v.detach().numpy()) for k, v in torch_module.state_dict().items()})


def randomise_affine(torch, tm, seed=3):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in tm.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) + 0.5)


def run_steps(torch, shape, dtype, steps=3, train=True, **kw):
    """Runs `steps` forward/backward passes of the same BatchNorm in both libraries and returns
    (torch module, nc module, torch input, nc input, torch out, nc out)."""
    tm, nm = torch_bn(torch, shape, **kw), nc_bn(shape, **kw)
    if dtype == np.float64:
        tm.double()
        nm.double()
    randomise_affine(torch, tm)
    load_from_torch(nm, tm)
    tm.train(train)
    nm.train(train)
    for step in range(steps):
        x = rand(shape, dtype, seed=step, low=-2, high=3)
        g = rand(shape, dtype, seed=50 + step)
        tx, nx = torch.tensor(x, requires_grad=True), nc.tensor(x, requires_grad=True)
        ty, ny = tm(tx), nm(nx)
        (ty * torch.tensor(g)).sum().backward()
        (ny * nc.tensor(g)).sum().backward()
    return tm, nm, tx, nx, ty, ny


def compare_modules(tm, nm, tx, nx, ty, ny, tol):
    assert_close(ny, ty, what="output", **tol)
    assert_close(nx.grad, tx.grad, what="input grad", **tol)
    for name, tp in tm.named_parameters():
        assert_close(getattr(nm, name).grad, tp.grad, what=f"{name} grad", **tol)
    for name, tb in tm.named_buffers():
        nb = getattr(nm, name)
        assert nb is not None, name
        assert_close(nb, tb, what=name, **tol)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_batchnorm_training_parity(shape, dtype):
    torch = require_torch()
    compare_modules(*run_steps(torch, shape, dtype), TOL[dtype])


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_batchnorm_eval_parity(shape, dtype):
    torch = require_torch()
    tm, nm, *_ = run_steps(torch, shape, dtype)
    tm.eval()
    nm.eval()
    x = rand(shape, dtype, seed=9)
    g = rand(shape, dtype, seed=10)
    tx, nx = torch.tensor(x, requires_grad=True), nc.tensor(x, requires_grad=True)
    for p in tm.parameters():
        p.grad = None
    nm.zero_grad()
    ty, ny = tm(tx), nm(nx)
    (ty * torch.tensor(g)).sum().backward()
    (ny * nc.tensor(g)).sum().backward()
    compare_modules(tm, nm, tx, nx, ty, ny, TOL[dtype])
    assert int(nm.num_batches_tracked.item()) == 3


@pytest.mark.torch
@pytest.mark.parametrize("kw", [dict(momentum=None), dict(affine=False), dict(track_running_stats=False),
                                dict(momentum=0.3, eps=1e-3), dict(bias=False)])
@pytest.mark.parametrize("shape", [(6, 3), (3, 2, 4, 5)])
def test_batchnorm_options(shape, kw):
    torch = require_torch()
    tm, nm, *rest = run_steps(torch, shape, np.float64, steps=4, **kw)
    compare_modules(tm, nm, *rest, TOL[np.float64])
    assert repr(nm) == repr(tm)
    # Eval after training: running stats (or, untracked, the batch statistics).
    tm.eval()
    nm.eval()
    x = rand(shape, np.float64, seed=21)
    assert_close(nm(nc.tensor(x)), tm(torch.tensor(x)), **TOL[np.float64])


@pytest.mark.torch
def test_batchnorm_extra_repr_and_state_dict_keys():
    torch = require_torch()
    for args, kw in [((16,), {}), ((4,), dict(affine=False, momentum=None)), ((3,), dict(track_running_stats=False))]:
        for cls in ("BatchNorm1d", "BatchNorm2d"):
            n, t = getattr(nn, cls)(*args, **kw), getattr(torch.nn, cls)(*args, **kw)
            assert repr(n) == repr(t)
            assert list(n.state_dict().keys()) == list(t.state_dict().keys())
    assert repr(nn.BatchNorm2d(16)) == ("BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, "
                                        "track_running_stats=True)")
    assert nn.BatchNorm1d(3).num_batches_tracked.dtype == nc.int64
    assert repr(nn.LayerNorm(8)) == repr(torch.nn.LayerNorm(8))
    assert repr(nn.LayerNorm((2, 3), elementwise_affine=False)) == repr(torch.nn.LayerNorm((2, 3), elementwise_affine=False))
    assert list(nn.LayerNorm(8, bias=False).state_dict().keys()) == list(torch.nn.LayerNorm(8, bias=False).state_dict().keys())


@pytest.mark.torch
def test_batchnorm_loads_torch_state_dict_and_round_trips():
    torch = require_torch()
    tm = torch.nn.BatchNorm2d(3)
    tm.train()
    for s in range(2):
        tm(torch.tensor(rand((4, 3, 5, 5), np.float32, seed=s)))
    randomise_affine(torch, tm)
    nm = nn.BatchNorm2d(3)
    nm.load_state_dict(tm.state_dict())  # torch tensors directly
    assert int(nm.num_batches_tracked.item()) == 2
    tm.eval()
    nm.eval()
    x = rand((2, 3, 5, 5), np.float32, seed=7)
    assert_close(nm(nc.tensor(x)), tm(torch.tensor(x)), **TOL[np.float32])
    # Back into torch, and an old checkpoint without num_batches_tracked still loads.
    t2 = torch.nn.BatchNorm2d(3)
    t2.load_state_dict({k: torch.tensor(v.numpy()) for k, v in nm.state_dict().items()})
    assert int(t2.num_batches_tracked) == 2
    old = {k: v for k, v in tm.state_dict().items() if k != "num_batches_tracked"}
    n3 = nn.BatchNorm2d(3)
    n3.load_state_dict(old)
    assert int(n3.num_batches_tracked.item()) == 0


@pytest.mark.torch
def test_batchnorm_input_checks():
    torch = require_torch()
    bn1, bn2 = nn.BatchNorm1d(3), nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"\[BatchNorm1d\] expected 2D or 3D input \(got 4D input\)"):
        bn1(nc.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\[BatchNorm2d\] expected 4D input \(got 2D input\)"):
        bn2(nc.zeros(2, 3))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        bn1(nc.zeros(1, 3))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        torch.nn.BatchNorm1d(3)(torch.zeros(1, 3))
    bn1.eval()
    assert bn1(nc.ones(1, 3)).shape == (1, 3)  # batch 1 is fine in eval
    with pytest.raises(RuntimeError, match=r"\[batch_norm\] weight should have 2 elements"):
        F.batch_norm(nc.zeros(4, 2), None, None, nc.ones(3), None, training=True)
    with pytest.raises(ValueError, match="evaluation mode"):
        F.batch_norm(nc.zeros(4, 2), None, None, training=False)
    with pytest.raises(TypeError, match="floating-point"):
        F.batch_norm(nc.zeros(4, 2, dtype=nc.int64), None, None, training=True)


@pytest.mark.torch
@pytest.mark.parametrize("training", [True, False])
def test_functional_batch_norm(training):
    torch = require_torch()
    rm, rv = rand((3,), np.float64, seed=1), rand((3,), np.float64, seed=2, low=0.5, high=2)
    trm, trv, nrm, nrv = torch.tensor(rm), torch.tensor(rv), nc.tensor(rm), nc.tensor(rv)
    check_op(lambda t, x, w, b: t.nn.functional.batch_norm(x, trm, trv, w, b, training, 0.2, 1e-4),
             lambda n, x, w, b: F.batch_norm(x, nrm, nrv, w, b, training, 0.2, 1e-4),
             [rand((5, 3, 4), seed=3), rand((3,), seed=4), rand((3,), seed=5)], dtype=np.float64)
    assert_close(nrm, trm, **TOL[np.float64])
    assert_close(nrv, trv, **TOL[np.float64])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(training):
    rm, rv = nc.tensor(rand((3,), seed=1)), nc.tensor(rand((3,), seed=2, low=0.5, high=2))
    gradcheck(lambda x, w, b: F.batch_norm(x, rm.clone(), rv.clone(), w, b, training, 0.1, 1e-5),
              [rand((4, 3, 5), seed=3), rand((3,), seed=4), rand((3,), seed=5)])


def test_layer_norm_gradcheck():
    gradcheck(lambda x, w, b: F.layer_norm(x, (3, 4), w, b), [rand((2, 3, 4), seed=1), rand((3, 4), seed=2),
                                                             rand((3, 4), seed=3)])


@pytest.mark.torch
@pytest.mark.parametrize("norm", ["batch", "batch_eval", "layer"])
def test_double_backward_matches_torch(norm):
    torch = require_torch()
    x, w, b = rand((4, 3, 5), seed=1), rand((3,), seed=2), rand((3,), seed=3)
    if norm == "layer":
        w, b = rand((5,), seed=2), rand((5,), seed=3)
    gy = rand((4, 3, 5), seed=4)
    results = []
    rm, rv = rand((3,), seed=5), rand((3,), seed=6, low=0.5, high=2)
    stats = dict(batch=(None, None), batch_eval=(rm, rv), layer=None)[norm]

    def make(lib, fb, fl):
        if norm == "layer":
            return lambda x, w, b: fl(x, (5,), w, b)
        r = [None if s is None else lib.tensor(s) for s in stats]
        return lambda x, w, b: fb(x, r[0], r[1], w, b, norm == "batch")
    for lib, fn in [(torch, make(torch, torch.nn.functional.batch_norm, torch.nn.functional.layer_norm)),
                    (nc, make(nc, F.batch_norm, F.layer_norm))]:
        ts = [lib.tensor(a, requires_grad=True) for a in (x, w, b)]
        y = fn(*ts)
        grads = lib.autograd.grad((y * lib.tensor(gy)).sum(), ts, create_graph=True)
        second = sum((g * g).sum() for g in grads)
        results.append([g.detach().numpy() for g in lib.autograd.grad(second, ts[:2])])
    for t, n in zip(*results):
        np.testing.assert_allclose(n, t, rtol=1e-9, atol=1e-11)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,normalized", [((6, 8), (8,)), ((2, 3, 4, 5), (4, 5)), ((7,), (7,))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_parity(shape, normalized, affine, dtype):
    torch = require_torch()
    tm, nm = torch.nn.LayerNorm(normalized, elementwise_affine=affine), nn.LayerNorm(normalized, elementwise_affine=affine)
    if dtype == np.float64:
        tm.double()
        nm.double()
    if affine:
        randomise_affine(torch, tm)
        load_from_torch(nm, tm)
    x = rand(shape, dtype, seed=5, low=-2, high=4)
    g = rand(shape, dtype, seed=6)
    tx, nx = torch.tensor(x, requires_grad=True), nc.tensor(x, requires_grad=True)
    ty, ny = tm(tx), nm(nx)
    (ty * torch.tensor(g)).sum().backward()
    (ny * nc.tensor(g)).sum().backward()
    assert_close(ny, ty, **TOL[dtype])
    assert_close(nx.grad, tx.grad, **TOL[dtype])
    for name, tp in tm.named_parameters():
        assert_close(getattr(nm, name).grad, tp.grad, what=name, **TOL[dtype])


@pytest.mark.torch
def test_empty_batch_like_torch():
    torch = require_torch()
    tm, nm = torch.nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    tx, nx = torch.zeros(0, 3, 4, requires_grad=True), nc.zeros(0, 3, 4, requires_grad=True)
    ty, ny = tm(tx), nm(nx)
    ty.sum().backward()
    ny.sum().backward()
    assert tuple(ny.shape) == (0, 3, 4)
    compare_modules(tm, nm, tx, nx, ty, ny, TOL[np.float32])
    assert tuple(F.layer_norm(nc.zeros(0, 4), (4,)).shape) == (0, 4)


@pytest.mark.torch
def test_non_contiguous_inputs_and_bias_only():
    torch = require_torch()
    # A channels-last view of (N, H, W, C) data, and layer_norm with a bias but no weight.
    check_op(lambda t, x, w, b: t.nn.functional.batch_norm(x.permute(0, 3, 1, 2), None, None, w, b, True),
             lambda n, x, w, b: F.batch_norm(x.permute(0, 3, 1, 2), None, None, w, b, True),
             [rand((2, 4, 5, 3), seed=1), rand((3,), seed=2), rand((3,), seed=3)], dtype=np.float64)
    check_op(lambda t, x, b: t.nn.functional.layer_norm(x.transpose(0, 1), (2, 3), None, b),
             lambda n, x, b: F.layer_norm(x.transpose(0, 1), (2, 3), None, b),
             [rand((2, 4, 3), seed=4), rand((2, 3), seed=5)], dtype=np.float64)


def test_dropout2d_inplace():
    nc.manual_seed(1)
    x = nc.ones(3, 8, 2, 2)
    y = F.dropout2d(x, 0.5, True, inplace=True)
    assert np.array_equal(x.numpy(), y.numpy())
    assert np.any(x.numpy() == 0) and np.any(x.numpy() == 2)


def test_layer_norm_shape_error():
    with pytest.raises(RuntimeError, match=r"\[layer_norm\] Given normalized_shape=\(4,\)"):
        F.layer_norm(nc.zeros(2, 3), (4,))


@pytest.mark.parametrize("op", ["batch", "layer"])
def test_thread_count_independent(op):
    # Large enough that statistics and gradients span several chunks and threads.
    x = nc.tensor(rand((64, 3, 40, 40), np.float32, seed=1, low=-3, high=5), requires_grad=True)
    g = nc.tensor(rand((64, 3, 40, 40), np.float32, seed=2))
    prev = nc.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            nc.set_num_threads(threads)
            m = nn.BatchNorm2d(3) if op == "batch" else nn.LayerNorm((40, 40))
            x.grad = None
            y = m(x)
            (y * g).sum().backward()
            extra = [m.running_var.numpy().copy()] if op == "batch" else []
            outs.append([y.detach().numpy().copy(), x.grad.numpy().copy(), m.weight.grad.numpy().copy()] + extra)
    finally:
        nc.set_num_threads(prev)
    for a, b in zip(*outs):
        assert np.array_equal(a, b)


def test_dropout2d_masks():
    nc.manual_seed(0)
    x = nc.ones(8, 16, 5, 5)
    m = nn.Dropout2d(0.25)
    assert repr(m) == "Dropout2d(p=0.25, inplace=False)"
    y = m(x).numpy()
    per_channel = y.reshape(8, 16, -1)
    # Every channel is all zero or all 1/(1-p).
    assert np.all(per_channel.min(axis=2) == per_channel.max(axis=2))
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert 0 < np.count_nonzero(per_channel[:, :, 0] == 0) < 8 * 16
    # Gradient uses the same mask.
    xg = nc.ones(4, 6, 3, 3, requires_grad=True)
    nc.manual_seed(5)
    out = m(xg)
    out.sum().backward()
    assert np.array_equal(xg.grad.numpy(), out.detach().numpy())
    # Seed determinism, eval identity, p=1 and 3-D input (read as (N, C, L)).
    nc.manual_seed(3)
    a = m(x).numpy()
    nc.manual_seed(3)
    assert np.array_equal(a, m(x).numpy())
    m.eval()
    assert m(x) is x or np.array_equal(m(x).numpy(), x.numpy())
    assert np.all(F.dropout2d(x, 1.0).numpy() == 0)
    with pytest.warns(UserWarning, match="3D input"):
        y3 = F.dropout2d(nc.ones(4, 6, 10), 0.5).numpy()
    assert np.all(y3.min(axis=2) == y3.max(axis=2))
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        nn.Dropout2d(1.5)


class _Residual:
    """Linear -> BatchNorm1d -> ReLU -> Linear with a skip connection, in either library."""

    @staticmethod
    def build(lib):
        class Block(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = lib.nn.Linear(6, 6)
                self.bn = lib.nn.BatchNorm1d(6)
                self.fc2 = lib.nn.Linear(6, 6)
                self.head = lib.nn.Linear(6, 1)

            def forward(self, x):
                return self.head(x + self.fc2(lib.relu(self.bn(self.fc1(x)))))
        return Block()


@pytest.mark.torch
def test_residual_block_trains_like_torch():
    torch = require_torch()
    torch.manual_seed(0)
    tm, nm = _Residual.build(torch).double(), _Residual.build(nc).double()
    nm.load_state_dict({k: nc.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    x = rand((32, 6), seed=1)
    target = (x[:, :1] * 2 - x[:, 1:2] ** 2).astype(np.float64)
    t_opt = torch.optim.SGD(tm.parameters(), lr=0.05, momentum=0.9)
    n_opt = nc.optim.SGD(nm.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for step in range(30):
        t_opt.zero_grad()
        n_opt.zero_grad()
        tl = torch.nn.functional.mse_loss(tm(torch.tensor(x)), torch.tensor(target))
        nl = F.mse_loss(nm(nc.tensor(x)), nc.tensor(target))
        tl.backward()
        nl.backward()
        if step == 0:
            for name, p in tm.named_parameters():
                assert_close(dict(nm.named_parameters())[name].grad, p.grad, what=name, rtol=1e-9, atol=1e-12)
        t_opt.step()
        n_opt.step()
        losses.append(float(nl.item()))
        np.testing.assert_allclose(losses[-1], float(tl.item()), rtol=1e-8)
    assert losses[-1] < 0.5 * losses[0]
    for k, v in tm.state_dict().items():
        assert_close(nm.state_dict()[k], v, what=k, rtol=1e-7, atol=1e-9)
