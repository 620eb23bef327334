"""Second-order gradients through F.scaled_dot_product_attention (create_graph=True recomputes the
attention backward from differentiable ops) and gradients of additive float masks (accumulated by
the fused backward): against PyTorch's math backend, float64 finite differences of the first-order
gradients, dropout (same mask in both paths), thread-count independence, and through
nn.MultiheadAttention and nn.TransformerEncoderLayer (gradient penalties)."""
import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from neurocore.nn import functional as F
from helpers import require_torch, rand, assert_close, gradcheck

TOL64 = dict(rtol=1e-9, atol=1e-11)


def math_backend(torch):
    """PyTorch's SDPA backend that supports double backward and mask gradients on CPU."""
    from torch.nn.attention import sdpa_kernel, SDPBackend
    return sdpa_kernel(SDPBackend.MATH)


def torch_sdpa(torch, *args, **kw):
    with math_backend(torch):
        return torch.nn.functional.scaled_dot_product_attention(*args, **kw)


def second_order(lib, sdpa, arrays, w, mask, mask_grad, **kw):
    """First-order grads (create_graph) of sum(out * w) wrt q, k, v (and the mask), then the
    gradient of a penalty on them wrt q, k, v, w (and the mask)."""
    ts = [lib.tensor(a, requires_grad=True) for a in arrays]
    wt = lib.tensor(w, requires_grad=True)
    m = None if mask is None else lib.tensor(mask)
    wrt = list(ts)
    if mask_grad:
        m.requires_grad_(True)
        wrt.append(m)
    out = sdpa(*ts, attn_mask=m, **kw)
    first = lib.autograd.grad((out * wt).sum(), wrt, create_graph=True)
    penalty = sum((g * g).sum() for g in first) + (out * out).sum()
    second = lib.autograd.grad(penalty, wrt + [wt])
    return [g.detach().numpy() for g in list(first) + list(second)]


def double_backward_parity(qs, ks, vs, mask=None, mask_grad=False, seed=0, **kw):
    torch = require_torch()
    arrays = [rand(s, np.float64, seed=seed + i) for i, s in enumerate((qs, ks, vs))]
    w = rand(qs[:-1] + (vs[-1],), np.float64, seed=seed + 5)
    ref = second_order(torch, lambda *a, **k: torch_sdpa(torch, *a, **k), arrays, w, mask, mask_grad, **kw)
    got = second_order(nc, F.scaled_dot_product_attention, arrays, w, mask, mask_grad, **kw)
    for i, (n, t) in enumerate(zip(got, ref)):
        assert_close(n, t, what=f"gradient {i}", **TOL64)


@pytest.mark.torch
@pytest.mark.parametrize("kw", [
    dict(),
    dict(is_causal=True),
    dict(is_causal=True, scale=0.3),
    dict(scale=1.7),
], ids=["plain", "causal", "causal-scale", "scale"])
@pytest.mark.parametrize("L,S", [(5, 6), (7, 7), (9, 4), (1, 3)])
def test_double_backward_vs_torch(kw, L, S):
    double_backward_parity((2, 3, L, 4), (2, 3, S, 4), (2, 3, S, 3), **kw)


@pytest.mark.torch
def test_double_backward_gqa_and_leading_dims():
    double_backward_parity((2, 4, 5, 4), (2, 2, 6, 4), (2, 2, 6, 3), enable_gqa=True)
    double_backward_parity((1, 6, 7, 4), (1, 2, 7, 4), (1, 2, 7, 5), enable_gqa=True, is_causal=True)
    double_backward_parity((6, 4), (8, 4), (8, 2))  # no batch dims
    double_backward_parity((2, 2, 2, 5, 3), (2, 2, 2, 6, 3), (2, 2, 2, 6, 3), is_causal=True)


@pytest.mark.torch
@pytest.mark.parametrize("mask_shape", [(5, 6), (2, 1, 5, 6), (3, 1, 6), (2, 3, 5, 6)])
def test_double_backward_with_masks(mask_shape):
    rng = np.random.default_rng(3)
    bool_mask = rng.random(mask_shape) > 0.3
    bool_mask[..., 0] = True  # every row keeps a key (PyTorch's math backend gives NaN otherwise)
    double_backward_parity((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 3), mask=bool_mask)
    add = rand(mask_shape, np.float64, seed=4, low=-2, high=1)
    add[bool_mask == 0] = -np.inf
    double_backward_parity((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 3), mask=add)
    double_backward_parity((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 3), mask=rand(mask_shape, np.float64, seed=4),
                           mask_grad=True)


def finite_difference_second_order(fn, arrays, eps=1e-6):
    """fn(*tensors) -> list of first-order gradient tensors (create_graph=True). Checks the
    gradient of sum_i <g_i, w_i> (random w_i) against central differences of the same sum
    computed by the first-order (fused) path."""
    xs = [nc.tensor(a, requires_grad=True) for a in arrays]
    firsts = fn(*xs, create_graph=True)
    ws = [rand(tuple(g.shape), np.float64, seed=30 + i) for i, g in enumerate(firsts)]
    objective = sum((g * nc.tensor(w)).sum() for g, w in zip(firsts, ws))
    analytic = nc.autograd.grad(objective, xs, allow_unused=True)

    def value(*arrs):
        gs = fn(*[nc.tensor(a, requires_grad=True) for a in arrs], create_graph=False)
        return sum(float(np.sum(g.numpy() * w)) for g, w in zip(gs, ws))

    for i, x in enumerate(arrays):
        num = np.zeros_like(x)
        for j in range(x.size):
            plus, minus = [a.copy() for a in arrays], [a.copy() for a in arrays]
            plus[i].reshape(-1)[j] += eps
            minus[i].reshape(-1)[j] -= eps
            num.reshape(-1)[j] = (value(*plus) - value(*minus)) / (2 * eps)
        got = np.zeros_like(x) if analytic[i] is None else analytic[i].numpy()
        np.testing.assert_allclose(got, num, rtol=1e-5, atol=1e-7, err_msg=f"second-order gradient of input {i}")


def first_grads(mask=None, mask_grad=False, seed=None, **kw):
    def fn(q, k, v, *rest, create_graph):
        m = rest[0] if mask_grad else mask
        if seed is not None:
            nc.manual_seed(seed)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=m, **kw)
        w = nc.tensor(rand(tuple(out.shape), np.float64, seed=99))
        wrt = [q, k, v] + ([m] if mask_grad else [])
        return list(nc.autograd.grad((out * w).sum(), wrt, create_graph=create_graph))
    return fn


def test_second_order_finite_differences():
    q, k, v = rand((1, 2, 4, 3), seed=1), rand((1, 2, 5, 3), seed=2), rand((1, 2, 5, 2), seed=3)
    finite_difference_second_order(first_grads(is_causal=True, scale=0.8), [q, k, v])
    m = np.random.default_rng(0).random((4, 5)) > 0.4
    m[:, 1] = True
    finite_difference_second_order(first_grads(mask=nc.tensor(m)), [q, k, v])
    q6 = rand((1, 4, 3, 3), seed=4)
    finite_difference_second_order(first_grads(enable_gqa=True), [q6, k, v])
    finite_difference_second_order(first_grads(mask_grad=True), [q, k, v, rand((2, 1, 5), seed=5)])


def test_second_order_with_dropout():
    """The create_graph path applies the kernel's own dropout factors: its first-order gradients
    equal the fused ones bit for bit in float64 up to rounding, and its second order matches
    finite differences of the (re-seeded) fused path."""
    q, k, v = rand((1, 2, 6, 3), seed=1), rand((1, 2, 7, 3), seed=2), rand((1, 2, 7, 2), seed=3)
    fn = first_grads(seed=11, dropout_p=0.4, is_causal=True)
    ts = [nc.tensor(a, requires_grad=True) for a in (q, k, v)]
    fused = fn(*ts, create_graph=False)
    graph = fn(*ts, create_graph=True)
    for a, b in zip(fused, graph):
        np.testing.assert_allclose(b.detach().numpy(), a.numpy(), rtol=1e-12, atol=1e-14)
    finite_difference_second_order(fn, [q, k, v])


def test_fully_masked_rows_have_zero_second_order_gradients():
    q, k, v = (nc.tensor(rand(s, seed=i), requires_grad=True) for i, s in enumerate([(1, 4, 3), (1, 5, 3), (1, 5, 2)]))
    m = np.ones((4, 5), dtype=bool)
    m[1] = False
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=nc.tensor(m))
    gq, gk, gv = nc.autograd.grad(out.sum(), [q, k, v], create_graph=True)
    assert np.all(gq.detach().numpy()[0, 1] == 0)
    second = nc.autograd.grad((gq * gq).sum() + (gk * gk).sum() + (gv * gv).sum(), [q, k, v])
    assert all(np.all(np.isfinite(g.numpy())) for g in second)
    assert np.all(second[0].numpy()[0, 1] == 0)


# ---- gradients of an additive float mask (first order, fused kernel) ----

@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mask_shape", [(129, 70), (2, 1, 129, 70), (3, 1, 70), (2, 3, 129, 70), (1, 70), (129, 1)])
def test_mask_gradient_vs_torch(dtype, mask_shape):
    torch = require_torch()
    shapes = ((2, 3, 129, 16), (2, 3, 70, 16), (2, 3, 70, 8))
    arrays = [rand(s, dtype, seed=i) for i, s in enumerate(shapes)]
    mask = rand(mask_shape, dtype, seed=7, low=-3, high=1)
    g = rand((2, 3, 129, 8), dtype, seed=8)
    res = []
    for lib, fn in ((torch, lambda *a, **k: torch_sdpa(torch, *a, **k)), (nc, F.scaled_dot_product_attention)):
        ts = [lib.tensor(a, requires_grad=True) for a in arrays + [mask]]
        out = fn(*ts[:3], attn_mask=ts[3])
        out.backward(lib.tensor(g))
        res.append([out.detach().numpy()] + [t.grad.numpy() for t in ts])
    tol = TOL64 if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    for name, n, t in zip(("output", "query", "key", "value", "mask"), *res):
        assert_close(n, t, what=name, **tol)


@pytest.mark.torch
def test_mask_gradient_gqa_and_masked_entries():
    torch = require_torch()
    arrays = [rand(s, np.float64, seed=i) for i, s in enumerate(((2, 4, 9, 8), (2, 2, 11, 8), (2, 2, 11, 8)))]
    mask = rand((4, 9, 11), np.float64, seed=5)
    mask[:, :, 3] = -np.inf  # an excluded key: zero gradient there
    res = []
    for lib, fn in ((torch, lambda *a, **k: torch_sdpa(torch, *a, **k)), (nc, F.scaled_dot_product_attention)):
        ts = [lib.tensor(a, requires_grad=True) for a in arrays + [mask]]
        out = fn(*ts[:3], attn_mask=ts[3], enable_gqa=True)
        (out * out).sum().backward()
        res.append([t.grad.numpy() for t in ts])
    for n, t in zip(*res):
        assert_close(n, t, what="gradient", **TOL64)
    assert np.all(res[1][3][:, :, 3] == 0)


def test_mask_gradient_finite_differences():
    m = rand((2, 1, 5, 6), seed=4)
    gradcheck(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
              [rand((2, 3, 5, 4), seed=1), rand((2, 3, 6, 4), seed=2), rand((2, 3, 6, 3), seed=3), m])
    gradcheck(lambda q, m: F.scaled_dot_product_attention(q, q, q, attn_mask=m, dropout_p=0.0),
              [rand((3, 6, 4), seed=5), rand((6, 1), seed=6)])


def test_mask_gradient_does_not_depend_on_thread_count():
    arrays = [rand(s, np.float32, seed=i) for i, s in enumerate(((2, 4, 150, 32), (2, 4, 130, 32), (2, 4, 130, 32)))]
    before = nc.get_num_threads()
    results = []
    for mask_shape in ((150, 130), (2, 4, 150, 130), (4, 1, 130)):
        mask = rand(mask_shape, np.float32, seed=6)
        per_threads = []
        for threads in (1, 2):
            nc.set_num_threads(threads)
            nc.manual_seed(3)
            ts = [nc.tensor(a, requires_grad=True) for a in arrays + [mask]]
            out = F.scaled_dot_product_attention(*ts[:3], attn_mask=ts[3], dropout_p=0.1)
            out.backward(nc.tensor(rand(tuple(out.shape), np.float32, seed=9)))
            per_threads.append([out.detach().numpy()] + [t.grad.numpy() for t in ts])
        results.append(per_threads)
    nc.set_num_threads(before)
    for one, two in results:
        for a, b in zip(one, two):
            assert np.array_equal(a, b)


# ---- through the layers ----

@pytest.mark.torch
@pytest.mark.parametrize("causal", [False, True])
def test_multihead_attention_gradient_penalty(causal):
    torch = require_torch()
    E, H, L, N = 8, 2, 5, 3
    tm = torch.nn.MultiheadAttention(E, H, batch_first=True, dtype=torch.float64)
    nm = nn.MultiheadAttention(E, H, batch_first=True, dtype=nc.float64)
    nm.load_state_dict(tm.state_dict())
    x = rand((N, L, E), np.float64, seed=3)
    mask = np.triu(np.full((L, L), -np.inf), 1)
    res = []
    for lib, mod in ((torch, tm), (nc, nm)):
        xt = lib.tensor(x, requires_grad=True)
        kw = dict(attn_mask=lib.tensor(mask), is_causal=True) if causal else {}
        if lib is torch:
            with math_backend(torch):
                out, _ = mod(xt, xt, xt, need_weights=False, **kw)
        else:
            out, _ = mod(xt, xt, xt, need_weights=False, **kw)
        (gx,) = lib.autograd.grad(out.pow(2).sum(), [xt], create_graph=True)
        penalty = (gx * gx).sum()
        params = [p for _, p in mod.named_parameters()]
        grads = lib.autograd.grad(penalty, [xt] + params)
        res.append([gx.detach().numpy()] + [g.numpy() for g in grads])
    for n, t in zip(*res):
        assert_close(n, t, what="gradient", **TOL64)


@pytest.mark.torch
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layer_gradient_penalty(norm_first):
    torch = require_torch()
    kw = dict(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=norm_first,
              activation="gelu")
    tl = torch.nn.TransformerEncoderLayer(**kw, dtype=torch.float64)
    nl = nn.TransformerEncoderLayer(**kw, dtype=nc.float64)
    nl.load_state_dict(tl.state_dict())
    x = rand((2, 6, 8), np.float64, seed=4)
    res = []
    for lib, mod in ((torch, tl), (nc, nl)):
        xt = lib.tensor(x, requires_grad=True)
        if lib is torch:
            with math_backend(torch):
                out = mod(xt)
        else:
            out = mod(xt)
        (gx,) = lib.autograd.grad(out.sum() + (out * out).sum(), [xt], create_graph=True)
        params = [p for _, p in mod.named_parameters()]
        grads = lib.autograd.grad((gx * gx).sum(), [xt] + params)
        res.append([gx.detach().numpy()] + [g.numpy() for g in grads])
    for n, t in zip(*res):
        assert_close(n, t, what="gradient", **TOL64)


@pytest.mark.torch
@pytest.mark.parametrize("need_weights", [False, True])
def test_multihead_attention_float_mask_gradient(need_weights):
    """A learned additive attn_mask (L, S) gets PyTorch's gradient through both MHA paths."""
    torch = require_torch()
    E, H, L, S, N = 8, 2, 5, 6, 3
    tm = torch.nn.MultiheadAttention(E, H, dtype=torch.float64)
    nm = nn.MultiheadAttention(E, H, dtype=nc.float64)
    nm.load_state_dict(tm.state_dict())
    arrays = [rand((L, N, E), seed=1), rand((S, N, E), seed=2), rand((L, S), seed=3)]
    res = []
    for lib, mod in ((torch, tm), (nc, nm)):
        q, kv, m = (lib.tensor(a, requires_grad=True) for a in arrays)
        if lib is torch:
            with math_backend(torch):
                out, _ = mod(q, kv, kv, attn_mask=m, need_weights=need_weights)
        else:
            out, _ = mod(q, kv, kv, attn_mask=m, need_weights=need_weights)
        (out * out).sum().backward()
        res.append([out.detach().numpy()] + [t.grad.numpy() for t in (q, kv, m)])
    for n, t in zip(*res):
        assert_close(n, t, what="mha with a learned mask", **TOL64)
