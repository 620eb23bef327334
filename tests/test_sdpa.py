"""F.scaled_dot_product_attention (fused kernel) against PyTorch: outputs and gradients over masks,
causal, odd and unequal lengths, head dims, GQA, scale, dtypes; finite differences; fully masked
rows; dropout (mask recovered exactly, forward/backward consistency, thread-count independence);
bad input; no L x S buffer in forward or backward."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neurocore as nc
from neurocore.nn import functional as F
from helpers import require_torch, rand, assert_close, gradcheck

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}


def parity(qs, ks, vs, dtype=np.float64, mask=None, seed=0, **kw):
    torch = require_torch()
    q, k, v = (rand(s, dtype, seed=seed + i) for i, s in enumerate((qs, ks, vs)))
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    nq, nk, nv = (nc.tensor(a, requires_grad=True) for a in (q, k, v))
    tm = None if mask is None else torch.tensor(mask)
    nm = None if mask is None else nc.tensor(mask)
    to = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm, **kw)
    no = F.scaled_dot_product_attention(nq, nk, nv, attn_mask=nm, **kw)
    tol = TOL[dtype]
    assert_close(no, to, what="output", **tol)
    g = rand(tuple(to.shape), dtype, seed=seed + 10)
    to.backward(torch.tensor(g))
    no.backward(nc.tensor(g))
    for name, n, t in (("query", nq, tq), ("key", nk, tk), ("value", nv, tv)):
        assert_close(n.grad, t.grad, what=f"grad of {name}", **tol)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("L,S", [(1, 1), (7, 7), (129, 129), (7, 129), (129, 7), (1, 70)])
@pytest.mark.parametrize("causal", [False, True])
def test_lengths_and_causal(dtype, L, S, causal):
    parity((2, 3, L, 16), (2, 3, S, 16), (2, 3, S, 16), dtype, is_causal=causal)


@pytest.mark.torch
@pytest.mark.parametrize("E,Ev", [(8, 8), (32, 24), (64, 64), (128, 128)])
def test_head_dims(E, Ev):
    parity((2, 2, 70, E), (2, 2, 90, E), (2, 2, 90, Ev), np.float32, is_causal=True)
    parity((1, 2, 33, E), (1, 2, 65, E), (1, 2, 65, Ev), np.float64)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mask_shape", [(129, 70), (2, 1, 129, 70), (2, 3, 1, 70), (1, 70), (2, 3, 129, 70)])
def test_masks_broadcast(dtype, mask_shape):
    rng = np.random.default_rng(5)
    bool_mask = rng.random(mask_shape) > 0.3
    parity((2, 3, 129, 16), (2, 3, 70, 16), (2, 3, 70, 8), dtype, mask=bool_mask)
    parity((2, 3, 129, 16), (2, 3, 70, 16), (2, 3, 70, 8), dtype, mask=rand(mask_shape, dtype, seed=9, low=-3, high=1))


@pytest.mark.torch
def test_leading_dims_scale_and_gqa():
    parity((40, 16), (50, 16), (50, 4), scale=0.3)  # no batch dims
    parity((2, 2, 3, 20, 8), (2, 2, 3, 30, 8), (2, 2, 3, 30, 8), is_causal=True)  # two batch dims
    parity((2, 6, 33, 16), (2, 2, 47, 16), (2, 2, 47, 16), enable_gqa=True)
    parity((2, 6, 33, 16), (2, 3, 47, 16), (2, 3, 47, 16), enable_gqa=True, is_causal=True, scale=0.5)


@pytest.mark.torch
def test_strided_inputs_need_no_copy_and_match():
    """Head-split views (last dim contiguous, other strides free) give the same result as copies."""
    x = nc.tensor(rand((9, 2, 3, 3, 8), np.float64))  # (L, N, 3, H, hd), as MultiheadAttention splits
    qkv = x.permute(2, 1, 3, 0, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    assert not q.is_contiguous()
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    ref = F.scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous(), is_causal=True)
    assert np.array_equal(out.numpy(), ref.numpy())


def test_gradcheck_float64():
    rng = np.random.default_rng(0)
    m = rng.random((5, 6)) > 0.3
    m[:, 0] = True
    mask = nc.tensor(m)
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
              [rand((2, 5, 4), seed=1), rand((2, 6, 4), seed=2), rand((2, 6, 3), seed=3)])
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.7),
              [rand((1, 2, 7, 3), seed=4), rand((1, 2, 5, 3), seed=5), rand((1, 2, 5, 2), seed=6)])


def test_fully_masked_rows_give_zero_output_and_gradient():
    """All keys masked out: the softmax is undefined; the output and gradients are 0, as in
    PyTorch's CPU kernel, and the other rows are unaffected."""
    q, k, v = (nc.tensor(rand(s, np.float64, seed=i), requires_grad=True) for i, s in enumerate([(1, 4, 8), (1, 6, 8), (1, 6, 8)]))
    mask = np.ones((4, 6), dtype=bool)
    mask[2] = False
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=nc.tensor(mask))
    add = np.zeros((4, 6))
    add[2] = -np.inf
    out_add = F.scaled_dot_product_attention(q, k, v, attn_mask=nc.tensor(add))
    assert np.all(out.detach().numpy()[0, 2] == 0) and np.all(out_add.detach().numpy()[0, 2] == 0)
    assert np.array_equal(out.detach().numpy(), out_add.detach().numpy())
    out.sum().backward()
    assert np.all(q.grad.numpy()[0, 2] == 0)
    assert np.all(np.isfinite(k.grad.numpy())) and np.all(np.isfinite(v.grad.numpy()))
    # the remaining rows equal the attention of those rows alone
    keep = [0, 1, 3]
    ref = F.scaled_dot_product_attention(q.detach()[:, keep], k.detach(), v.detach())
    np.testing.assert_allclose(out.detach().numpy()[:, keep], ref.numpy(), rtol=1e-12, atol=1e-14)


def test_dropout_mask_is_exact_and_backward_consistent():
    """q = 0 makes every weight 1/S; with v = identity the output is the dropout mask itself."""
    L = S = 70
    p = 0.3
    nc.manual_seed(1)
    eye = nc.tensor(np.broadcast_to(np.eye(S), (2, S, S)).copy())
    out = F.scaled_dot_product_attention(nc.zeros(2, L, 8, dtype=nc.float64), nc.zeros(2, S, 8, dtype=nc.float64),
                                         eye, dropout_p=p).numpy()
    kept = out != 0
    np.testing.assert_allclose(out[kept], 1.0 / ((1 - p) * S), rtol=1e-12)
    assert abs(1 - kept.mean() - p) < 0.02
    assert not np.array_equal(kept[0], kept[1])  # heads draw different words
    # Same seed, same mask: finite differences of the dropped attention match its gradient.
    q0, k0, v0 = rand((1, 6, 4), seed=1), rand((1, 7, 4), seed=2), rand((1, 7, 3), seed=3)

    def fn(q, k, v):
        nc.manual_seed(7)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.4, is_causal=True)
    gradcheck(fn, [q0, k0, v0])


def test_results_do_not_depend_on_thread_count():
    q, k, v = (nc.tensor(rand(s, np.float32, seed=i), requires_grad=True) for i, s in
               enumerate([(2, 4, 300, 32), (2, 4, 200, 32), (2, 4, 200, 32)]))
    results = []
    before = nc.get_num_threads()
    for threads in (1, 2, 3):
        nc.set_num_threads(threads)
        nc.manual_seed(3)
        for t in (q, k, v):
            t.grad = None
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.2)
        out.backward(nc.tensor(rand(tuple(out.shape), np.float32, seed=9)))
        results.append([out.detach().numpy().copy()] + [t.grad.numpy().copy() for t in (q, k, v)])
    nc.set_num_threads(before)
    for r in results[1:]:
        for a, b in zip(results[0], r):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("args,kw,kind,text", [
    (((2, 3, 5, 8), (2, 3, 6, 4), (2, 3, 6, 8)), {}, ValueError, "same embedding size"),
    (((2, 3, 5, 8), (2, 3, 6, 8), (2, 3, 7, 8)), {}, ValueError, "same sequence length"),
    (((2, 4, 5, 8), (2, 2, 6, 8), (2, 2, 6, 8)), {}, ValueError, "enable_gqa"),
    (((2, 3, 5, 8), (2, 2, 6, 8), (2, 2, 6, 8)), {"enable_gqa": True}, ValueError, "multiple"),
    (((2, 3, 5, 8), (2, 3, 6, 8)), {}, ValueError, "same number of dims"),
])
def test_bad_shapes(args, kw, kind, text):
    ts = [nc.zeros(*s) for s in args]
    if len(ts) == 2:
        ts.append(nc.zeros(2, 3, 6, 8, 1))
    with pytest.raises(kind, match=text) as e:
        F.scaled_dot_product_attention(*ts, **kw)
    assert "[scaled_dot_product_attention]" in str(e.value)


def test_bad_masks_and_dtypes():
    q, k, v = nc.zeros(2, 3, 5, 8), nc.zeros(2, 3, 6, 8), nc.zeros(2, 3, 6, 8)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(5, 5\) does not broadcast"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=nc.zeros(5, 5))
    with pytest.raises(TypeError, match="attn_mask must be bool"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=nc.zeros(5, 6, dtype=nc.int64))
    with pytest.raises(TypeError, match="attn_mask must be bool"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=nc.zeros(5, 6, dtype=nc.float64))
    with pytest.raises(ValueError, match="is_causal"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=nc.zeros(5, 6), is_causal=True)
    with pytest.raises(TypeError, match="same dtype"):
        F.scaled_dot_product_attention(q, k.double(), v)
    with pytest.raises(ValueError, match="dropout_p"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=1.5)


def test_no_sequence_squared_buffer():
    """Causal forward + backward at L = S = 8192 (one head of 16 dims): an L x S float32 matrix
    would need 256 MiB; the run's peak RSS must stay far below that."""
    code = textwrap.dedent("""
        import resource, numpy as np, neurocore as nc
        from neurocore.nn import functional as F
        nc.set_num_threads(2)
        L = 8192
        q, k, v = (nc.randn(1, 1, L, 16, requires_grad=True) for _ in range(3))
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out.sum().backward()
        assert np.isfinite(q.grad.numpy()).all()
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ))
    assert res.returncode == 0, res.stderr
    grew = int(res.stdout.strip().splitlines()[-1])
    assert grew < 32 * 2**20, f"peak RSS grew by {grew / 2**20:.1f} MiB (an 8192 x 8192 matrix is 256 MiB)"


@pytest.mark.torch
@pytest.mark.parametrize("E,Ev,L,S", [(20, 12, 131, 67), (72, 40, 70, 131)])
def test_float32_register_blocks_against_float64(E, Ev, L, S):
    """The float32 forward of the avx2/avx512 builds runs strips of 6 query rows against 64-key
    tiles with head dims in 8/16-lane vectors: rows, keys and dims here leave ragged strips, tiles
    and vectors (and dims past 64), under causal, bool and additive masks and dropout; forward and
    backward against PyTorch in float64 (dropout: against neurocore's float64, the same draws)."""
    torch = require_torch()
    q, k, v = (rand(s, np.float32, seed=i) * 2 for i, s in enumerate([(2, L, E), (2, S, E), (2, S, Ev)]))
    g = rand((2, L, Ev), np.float32, seed=5)
    bool_mask = np.random.default_rng(1).random((L, S)) > 0.2
    cases = [dict(is_causal=True), dict(attn_mask=bool_mask), dict(attn_mask=rand((L, S), np.float32, seed=6)),
             dict(dropout_p=0.3, is_causal=True)]
    for kw in cases:
        outs = {}
        for dt in (np.float32, np.float64):
            ts = [nc.tensor(a.astype(dt), requires_grad=True) for a in (q, k, v)]
            nkw = {key: nc.tensor(val.astype(dt) if val.dtype != bool else val) if key == "attn_mask" else val
                   for key, val in kw.items()}
            nc.manual_seed(4)
            out = F.scaled_dot_product_attention(*ts, **nkw)
            out.backward(nc.tensor(g.astype(dt)))
            outs[dt] = [out.detach().numpy()] + [t.grad.numpy() for t in ts]
        if "dropout_p" in kw:
            ref = outs[np.float64]
        else:
            tts = [torch.tensor(a.astype(np.float64), requires_grad=True) for a in (q, k, v)]
            tkw = {key: torch.tensor(val.astype(np.float64) if val.dtype != bool else val) if key == "attn_mask"
                   else val for key, val in kw.items()}
            tout = torch.nn.functional.scaled_dot_product_attention(*tts, **tkw)
            tout.backward(torch.tensor(g.astype(np.float64)))
            ref = [tout.detach().numpy()] + [t.grad.numpy() for t in tts]
        for what, a, b in zip(("output", "grad q", "grad k", "grad v"), outs[np.float32], ref):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5, err_msg=f"{what} {sorted(kw)}")


def test_float32_nan_stays_in_its_rows():
    """NaN in one query row: all of that row's scores are NaN, which the running max skips, so the
    row comes out as a fully masked one (0), as the GEMM path always gave; the rows that share its
    strip of the register-blocked forward are unaffected. NaN in one key reaches every row."""
    q, k, v = (rand(s, np.float32, seed=i) for i, s in enumerate([(1, 13, 20), (1, 70, 20), (1, 70, 12)]))
    ref = F.scaled_dot_product_attention(nc.tensor(q), nc.tensor(k), nc.tensor(v)).numpy()
    q[0, 7, 3] = np.nan
    out = F.scaled_dot_product_attention(nc.tensor(q), nc.tensor(k), nc.tensor(v)).numpy()
    assert np.all(out[0, 7] == 0)
    rows = [i for i in range(13) if i != 7]
    assert np.array_equal(out[0, rows], ref[0, rows])
    q[0, 7, 3] = 0.5
    k[0, 66, 1] = np.nan
    assert np.all(np.isnan(F.scaled_dot_product_attention(nc.tensor(q), nc.tensor(k), nc.tensor(v)).numpy()))
