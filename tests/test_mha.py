"""nn.MultiheadAttention against PyTorch with the same state_dict: outputs, attention weights and
the gradients of inputs and every parameter over masks (bool/float attn_mask 2-D/3-D, key padding,
causal), batch_first both ways, kdim/vdim, bias_k/bias_v, zero attention, unbatched input, both
paths (need_weights or the fused kernel); keys, repr, init; dropout; bad input."""
import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from helpers import require_torch, rand, assert_close, gradcheck

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}


def make_pair(torch, E, H, dtype, **kw):
    tm = torch.nn.MultiheadAttention(E, H, **kw).to(torch.float64 if dtype == np.float64 else torch.float32)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-zero biases so their gradients and effects are tested
        for p in tm.parameters():
            p.copy_((torch.rand(p.shape, generator=g, dtype=p.dtype) - 0.5) * (4 / p.shape[-1] ** 0.5))
    nm = nn.MultiheadAttention(E, H, dtype=nc.float64 if dtype == np.float64 else nc.float32, **kw)
    result = nm.load_state_dict(tm.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    return tm, nm


def run_pair(tm, nm, shapes, dtype, self_attn=False, masks=None, **fw):
    torch = require_torch()
    arrays = [rand(s, dtype, seed=20 + i) for i, s in enumerate(shapes)]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ns = [nc.tensor(a, requires_grad=True) for a in arrays]
    if self_attn:
        ts, ns = ts[:1] * 3, ns[:1] * 3
    tmask = {k: torch.tensor(v) for k, v in (masks or {}).items()}
    nmask = {k: nc.tensor(v) for k, v in (masks or {}).items()}
    to, tw = tm(*ts, **tmask, **fw)
    no, nw = nm(*ns, **nmask, **fw)
    tol = TOL[dtype]
    assert_close(no, to, what="output", **tol)
    if tw is None:
        assert nw is None
    else:
        assert_close(nw, tw, what="weights", **tol)
    g = rand(tuple(to.shape), dtype, seed=5)
    t_loss, n_loss = (to * torch.tensor(g)).sum(), (no * nc.tensor(g)).sum()
    if tw is not None:  # gradients through the returned weights too
        gw = rand(tuple(tw.shape), dtype, seed=6)
        t_loss, n_loss = t_loss + (tw * torch.tensor(gw)).sum(), n_loss + (nw * nc.tensor(gw)).sum()
    t_loss.backward()
    n_loss.backward()
    for i, (t, n) in enumerate(zip(ts, ns)):
        assert_close(n.grad, t.grad, what=f"grad of input {i}", **tol)
    tp, np_ = dict(tm.named_parameters()), dict(nm.named_parameters())
    assert tp.keys() == np_.keys()
    for name in tp:
        assert_close(np_[name].grad, tp[name].grad, what=f"grad of {name}", **tol)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("L,S", [(1, 1), (7, 7), (7, 129), (129, 7)])
def test_cross_attention_with_masks(dtype, need_weights, batch_first, L, S):
    torch = require_torch()
    tm, nm = make_pair(torch, 16, 2, dtype, batch_first=batch_first)
    N = 2
    rng = np.random.default_rng(L * 1000 + S)
    kpm = rng.random((N, S)) > 0.7
    kpm[:, 0] = False
    am = rng.random((L, S)) > 0.8
    am[:, 0] = False
    shp = (lambda n: (N, n, 16)) if batch_first else (lambda n: (n, N, 16))
    run_pair(tm, nm, [shp(L), shp(S), shp(S)], dtype, masks=dict(key_padding_mask=kpm, attn_mask=am),
             need_weights=need_weights)
    # float masks, 3-D attn_mask (N * H, L, S), per-head weights
    fam = rand((N * 2, L, S), dtype, seed=3, low=-2, high=0)
    fkpm = rand((N, S), dtype, seed=4, low=-1, high=0)
    run_pair(tm, nm, [shp(L), shp(S), shp(S)], dtype, masks=dict(key_padding_mask=fkpm, attn_mask=fam),
             need_weights=need_weights, average_attn_weights=False)


@pytest.mark.torch
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("kw", [dict(), dict(kdim=5, vdim=3), dict(add_bias_kv=True), dict(add_zero_attn=True),
                                dict(add_bias_kv=True, add_zero_attn=True, kdim=6, vdim=6), dict(bias=False)])
def test_options(kw, need_weights):
    torch = require_torch()
    tm, nm = make_pair(torch, 24, 3, np.float64, **kw)
    kdim, vdim = kw.get("kdim", 24), kw.get("vdim", 24)
    kpm = np.zeros((2, 9), dtype=bool)
    kpm[1, -3:] = True
    run_pair(tm, nm, [(7, 2, 24), (9, 2, kdim), (9, 2, vdim)], np.float64, masks=dict(key_padding_mask=kpm),
             need_weights=need_weights)
    # self-attention (the packed projection path) when the dims allow it
    if kdim == 24 and vdim == 24:
        run_pair(tm, nm, [(9, 2, 24)], np.float64, self_attn=True, masks=dict(key_padding_mask=kpm),
                 need_weights=need_weights)


@pytest.mark.torch
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
def test_self_attention_causal(need_weights, batch_first):
    torch = require_torch()
    tm, nm = make_pair(torch, 32, 4, np.float32, batch_first=batch_first)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(33).numpy()
    run_pair(tm, nm, [(3, 33, 32) if batch_first else (33, 3, 32)], np.float32, self_attn=True,
             masks=dict(attn_mask=causal), need_weights=need_weights, is_causal=True)


@pytest.mark.torch
@pytest.mark.parametrize("head_dim", [8, 64, 128])
def test_head_dims(head_dim):
    torch = require_torch()
    tm, nm = make_pair(torch, 2 * head_dim, 2, np.float32)
    run_pair(tm, nm, [(17, 2, 2 * head_dim)], np.float32, self_attn=True, need_weights=False)


@pytest.mark.torch
def test_unbatched():
    torch = require_torch()
    tm, nm = make_pair(torch, 8, 2, np.float64)
    kpm = np.array([False, True, False, False, False])
    run_pair(tm, nm, [(4, 8), (5, 8), (5, 8)], np.float64, masks=dict(key_padding_mask=kpm))
    run_pair(tm, nm, [(4, 8), (5, 8), (5, 8)], np.float64, need_weights=False,
             masks=dict(attn_mask=rand((2, 4, 5), np.float64, seed=2)))


@pytest.mark.torch
def test_state_dict_keys_repr_and_init():
    torch = require_torch()
    for kw in [dict(), dict(kdim=5, vdim=3), dict(add_bias_kv=True, bias=False)]:
        tm, nm = torch.nn.MultiheadAttention(8, 2, **kw), nn.MultiheadAttention(8, 2, **kw)
        assert list(nm.state_dict().keys()) == list(tm.state_dict().keys())
        assert [tuple(v.shape) for v in nm.state_dict().values()] == [tuple(v.shape) for v in tm.state_dict().values()]
        assert repr(nm) == repr(tm)
    m = nn.MultiheadAttention(64, 4)
    bound = np.sqrt(6 / (64 + 192))  # xavier_uniform_ on the (3E, E) in_proj_weight
    w = m.in_proj_weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.all(m.in_proj_bias.detach().numpy() == 0) and np.all(m.out_proj.bias.detach().numpy() == 0)


def test_gradcheck_float64():
    nc.manual_seed(0)
    m = nn.MultiheadAttention(6, 2, dtype=nc.float64, add_bias_kv=True)
    mask = nc.tensor(np.triu(np.ones((3, 4), dtype=bool), 2))
    for need in (True, False):
        gradcheck(lambda q, k, v: m(q, k, v, attn_mask=mask, need_weights=need)[0],
                  [rand((3, 2, 6), seed=1), rand((4, 2, 6), seed=2), rand((4, 2, 6), seed=3)])


def test_dropout_in_training_only_and_thread_independent():
    m = nn.MultiheadAttention(16, 2, dropout=0.5, batch_first=True)
    x = nc.tensor(rand((2, 40, 16), np.float32))
    m.eval()
    a, b = m(x, x, x, need_weights=False)[0], m(x, x, x, need_weights=False)[0]
    assert np.array_equal(a.detach().numpy(), b.detach().numpy())
    m.train()
    before = nc.get_num_threads()
    outs = []
    for threads in (1, 2):
        nc.set_num_threads(threads)
        nc.manual_seed(4)
        outs.append(m(x, x, x, need_weights=False)[0].detach().numpy())
    nc.set_num_threads(before)
    assert np.array_equal(outs[0], outs[1])
    assert not np.allclose(outs[0], a.detach().numpy())


def test_bad_input():
    with pytest.raises(ValueError, match=r"\[MultiheadAttention\] embed_dim 10 must be divisible by num_heads 3"):
        nn.MultiheadAttention(10, 3)
    m = nn.MultiheadAttention(8, 2)
    q = nc.zeros(4, 2, 8)
    with pytest.raises(ValueError, match=r"\[MultiheadAttention\] query has 7 features, expected embed_dim 8"):
        m(nc.zeros(4, 2, 7), q, q)
    with pytest.raises(ValueError, match=r"\[MultiheadAttention\] key and value must have the same sequence"):
        m(q, nc.zeros(5, 2, 8), nc.zeros(6, 2, 8))
    with pytest.raises(ValueError, match=r"expected attn_mask of shape \(4, 4\), got \(4, 5\)"):
        m(q, q, q, attn_mask=nc.zeros(4, 5))
    with pytest.raises(ValueError, match=r"expected attn_mask of shape \(4, 4, 4\)"):
        m(q, q, q, attn_mask=nc.zeros(3, 4, 4))
    with pytest.raises(ValueError, match=r"expected key_padding_mask of shape \(2, 4\)"):
        m(q, q, q, key_padding_mask=nc.zeros(2, 5, dtype=nc.bool))
    with pytest.raises(TypeError, match=r"only bool and floating types of attn_mask"):
        m(q, q, q, attn_mask=nc.zeros(4, 4, dtype=nc.int64))
    with pytest.raises(ValueError, match=r"key and value must be 3-D"):
        m(q, nc.zeros(4, 8), q)
    with pytest.raises(RuntimeError, match="need attn_mask"):
        m(q, q, q, is_causal=True)
