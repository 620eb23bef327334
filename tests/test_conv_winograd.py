"""Winograd convolution (cpp/kernels/conv_winograd*.{h,cpp}): float32 3x3, stride-1, dilation-1 layers
with at least kWinogradMinChannels (cpp/kernels/conv.h) input and output channels per group, the
input gradient of such layers (a convolution of the output gradient with the flipped weights,
padding 2 - p, or, where the output takes fewer tiles, as on the Keras CNN's 13x13 -> 11x11 layer,
the forward's adjoint transforms on the forward's tiles) and their weight gradient (the adjoint
transforms). Float64 keeps the
direct/implicit-GEMM paths, so neurocore's own float64 result is an independent reference.

Winograd rounds differently from direct summation (the transforms add and subtract terms of
different sizes), so results are compared with an error bound per output, normalised by the sum of
|products| that output adds (conv(|x|, |w|)): |y - y_ref| <= TOL * conv(|x|, |w|) (+ the bias and
the float32 rounding of a direct sum). Measured with F(4x4, 3x3) on the points 0, +-1, +-2 on
normally distributed data, 12..256 channels, 5..33 pixels, batch 1..8: the largest normalised
error was 3.4e-6 forward, 4.0e-6 for the input gradient and 4.8e-6 for the weight gradient (F(4x4,
3x3)'s adjoint; the implicit GEMM's before it: 2.9e-7; torch's float32 convolution: 3e-7, so
about 10x). TOL = 2e-5 leaves a margin of about 4x; an
error in a transform matrix, a tile edge or a channel offset gives errors of order 1 in these units.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import neurocore as nc
from helpers import require_torch, weight_update_cases, with_threads
from neurocore import nn
from neurocore import _core as C
from neurocore.nn import functional as F


TOL = 2e-5
MIN_CH = 16  # kWinogradMinChannels


def rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def check_bound(got, want64, scale64, what):
    """got (float32) against the float64 value want64 with |error| <= TOL * scale64."""
    err = np.abs(got.astype(np.float64) - want64)
    ratio = err / (scale64 + 1e-30)
    assert np.isfinite(got).all(), what
    assert ratio.max() <= TOL, f"{what}: max normalised error {ratio.max():.3g} > {TOL}"


def torch_conv(x, w, b, pad, groups):
    torch = require_torch()
    tb = None if b is None else torch.tensor(b, dtype=torch.float64)
    return torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64), tb,
                                      padding=pad, groups=groups).numpy()


# (batch, in channels, out channels, height, width, padding, groups, bias)
GEOMS = [
    (7, 32, 64, 16, 16, 1, 1, True),      # the seed CNN's second layer
    (1, 32, 64, 16, 16, 1, 1, True),      # batch 1
    (3, 32, 64, 13, 13, 0, 1, False),     # the Keras CNN's second layer (valid)
    (2, MIN_CH, MIN_CH, 5, 5, 2, 1, True),  # at the thresholds; padding 2 (the input gradient's)
    (2, MIN_CH - 1, 40, 9, 11, 1, 1, True),  # below: implicit GEMM, same tolerance holds
    (1, 40, MIN_CH - 1, 9, 7, 1, 1, False),
    (2, 17, 23, 33, 19, 1, 1, True),      # odd channel counts: partial micro-kernel rows
    (1, 24, 30, 31, 6, 0, 1, True),       # partial tiles along both axes
    (2, 64, 48, 7, 29, 2, 1, False),
    (2, 64, 64, 12, 10, 1, 2, True),      # groups (32 channels each)
    (2, 64, 48, 9, 9, 0, 2, False),       # groups, input gradient on the forward's tiles
    (1, 96, 96, 8, 8, 1, 3, True),
    (1, 128, 256, 6, 6, 1, 1, True),
]


@pytest.mark.parametrize("geom", GEOMS, ids=lambda g: "n{}_c{}_o{}_{}x{}_p{}_g{}_b{}".format(*g))
def test_forward_and_input_grad_against_float64(geom):
    torch = require_torch()
    n, c, o, h, w, pad, groups, has_bias = geom
    x0, w0 = rand((n, c, h, w), 1), rand((o, c // groups, 3, 3), 2) * np.float32(1 / np.sqrt(9 * c / groups))
    b0 = rand((o,), 3) if has_bias else None
    x = nc.tensor(x0, requires_grad=True)
    wt = nc.tensor(w0, requires_grad=True)
    bt = nc.tensor(b0) if has_bias else None
    y = F.conv2d(x, wt, bt, padding=pad, groups=groups)
    want = torch_conv(x0, w0, b0, pad, groups)
    scale = torch_conv(np.abs(x0), np.abs(w0), None if b0 is None else np.abs(b0), pad, groups)
    check_bound(y.detach().numpy(), want, scale, "forward")
    # neurocore's float64 path (no Winograd) agrees with torch's float64 result
    y64 = F.conv2d(nc.tensor(x0.astype(np.float64)), nc.tensor(w0.astype(np.float64)),
                   None if b0 is None else nc.tensor(b0.astype(np.float64)), padding=pad, groups=groups)
    np.testing.assert_allclose(y64.numpy(), want, rtol=1e-12, atol=1e-12)

    gy0 = rand(y.shape, 4)
    y.backward(nc.tensor(gy0))
    tx = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.conv2d(tx, torch.tensor(w0, dtype=torch.float64), padding=pad,
                               groups=groups).backward(torch.tensor(gy0, dtype=torch.float64))
    ax = torch.tensor(np.abs(x0), dtype=torch.float64, requires_grad=True)
    torch.nn.functional.conv2d(ax, torch.tensor(np.abs(w0), dtype=torch.float64), padding=pad,
                               groups=groups).backward(torch.tensor(np.abs(gy0), dtype=torch.float64))
    check_bound(x.grad.numpy(), tx.grad.numpy(), ax.grad.numpy(), "input gradient")
    tw = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.conv2d(torch.tensor(x0, dtype=torch.float64), tw, padding=pad,
                               groups=groups).backward(torch.tensor(gy0, dtype=torch.float64))
    aw = torch.tensor(np.abs(w0), dtype=torch.float64, requires_grad=True)
    torch.nn.functional.conv2d(torch.tensor(np.abs(x0), dtype=torch.float64), aw, padding=pad,
                               groups=groups).backward(torch.tensor(np.abs(gy0), dtype=torch.float64))
    check_bound(wt.grad.numpy(), tw.grad.numpy(), aw.grad.numpy(), "weight gradient")


def test_against_torch_float32():
    torch = require_torch()
    # torch's own float32 result is within the same bound of the float64 one as ours.
    x0, w0, b0 = rand((5, 32, 17, 17), 5), rand((64, 32, 3, 3), 6) * np.float32(1 / 17), rand((64,), 7)
    got = F.conv2d(nc.tensor(x0), nc.tensor(w0), nc.tensor(b0), padding=1).numpy()
    t32 = torch.nn.functional.conv2d(torch.tensor(x0), torch.tensor(w0), torch.tensor(b0), padding=1).numpy()
    scale = torch_conv(np.abs(x0), np.abs(w0), np.abs(b0), 1, 1)
    check_bound(got, t32.astype(np.float64), scale, "against torch float32")


def test_fused_relu_and_non_contiguous_input():
    torch = require_torch()
    nc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(32, 48, 3, padding=1), nn.ReLU(), nn.Conv2d(48, 32, 3), nn.ReLU())
    a = rand((3, 14, 15, 32), 8)  # channels-last storage, a permuted (non-contiguous) view
    x = nc.tensor(a).permute(0, 3, 1, 2)
    with nc.no_grad():
        fused = model(x).numpy()
        stepwise = x
        for m in model:
            stepwise = m(stepwise)
    assert np.array_equal(fused, stepwise.numpy())
    assert np.array_equal(fused, model(nc.tensor(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))).detach().numpy())
    tm = torch.nn.Sequential(torch.nn.Conv2d(32, 48, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(48, 32, 3),
                             torch.nn.ReLU()).double()
    with torch.no_grad():
        for tp, p in zip(tm.parameters(), model.parameters()):
            tp.copy_(torch.tensor(p.detach().numpy(), dtype=torch.float64))
        want = tm(torch.tensor(a.transpose(0, 3, 1, 2), dtype=torch.float64)).numpy()
    assert (fused == 0).any() and (fused >= 0).all()
    np.testing.assert_allclose(fused, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("batch", [1, 7])
def test_same_bits_for_any_thread_count(batch):
    x0, w0, b0 = rand((batch, 32, 16, 16), 9), rand((64, 32, 3, 3), 10), rand((64,), 11)
    gy0 = rand((batch, 64, 16, 16), 12)
    nc.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(32, 64, 3, padding=2, groups=2), nn.ReLU())

    def run():
        x, w = nc.tensor(x0, requires_grad=True), nc.tensor(w0, requires_grad=True)
        y = F.conv2d(x, w, nc.tensor(b0), padding=1)
        y.backward(nc.tensor(gy0))
        with nc.no_grad():
            fused = model(nc.tensor(x0))  # Conv+ReLU in one kernel call, padding 2, groups 2
        # no padding: the input gradient on the forward's tiles, 17 images in two runs of 16 and 1
        xv = nc.tensor(x0[:1, :16, :13, :13].repeat(17, axis=0) * np.arange(1, 18, dtype=np.float32)[:, None, None, None],
                       requires_grad=True)
        F.conv2d(xv, nc.tensor(w0[:16, :16]), padding=0).backward(nc.tensor(gy0[:1, :16, :11, :11].repeat(17, axis=0)))
        return [y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), fused.numpy(), xv.grad.numpy()]

    results = [with_threads(t, run) for t in (1, 2, 3)]
    for r in results[1:]:
        for a, b in zip(results[0], r):
            assert np.array_equal(a, b)


def test_exported_runtime_matches_eager(tmp_path):
    nc.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(64, 32, 3), nn.Flatten(), nn.Linear(32 * 6 * 6, 10)).eval()
    x = rand((2, 3, 16, 16), 13)
    path = tmp_path / "m.ncm"
    nc.export.save(model, path, (x,))
    session = nc.export.load(path)
    for b in (1, 2, 5):
        xb = rand((b, 3, 16, 16), 14 + b)
        with nc.no_grad():
            want = model(nc.tensor(xb)).numpy()
        got = session(xb)
        got = got.numpy() if isinstance(got, nc.Tensor) else np.asarray(got)
        assert np.array_equal(got, want)


def test_inf_and_nan_inputs_give_the_mathematical_result():
    # A NaN or inf reaches exactly the outputs whose 3x3 window holds it (the Winograd transforms
    # would spread it over the whole 4x4 tile, inf - inf: such inputs take the other paths).
    x0, w0 = rand((1, 32, 12, 12), 15), rand((32, 32, 3, 3), 16)
    window = np.zeros((1, 32, 12, 12), bool)
    window[:, :, 4:7, 5:8] = True
    for bad in (np.nan, np.inf):
        x = x0.copy()
        x[0, 3, 5, 6] = bad
        y = F.conv2d(nc.tensor(x), nc.tensor(w0), padding=1).numpy()
        assert np.array_equal(~np.isfinite(y), window)
        if bad == np.inf:  # w * inf, the sign of the weight that meets it
            want = np.sign(w0[:, 3, ::-1, ::-1])[None] * np.inf
            assert np.array_equal(y[:, :, 4:7, 5:8], want)
    w = w0.copy()
    w[2, 1, 0, 0] = np.nan
    y = F.conv2d(nc.tensor(x0), nc.tensor(w), padding=1).numpy()
    assert np.isnan(y[:, 2]).all() and np.isfinite(np.delete(y, 2, axis=1)).all()


def test_input_grad_of_inf_and_nan_gives_the_mathematical_result():
    # gx[c] sums gy[o] shifted by the taps times w[o, c]: an inf or NaN in gy reaches the 3x3 block
    # of inputs under its output (the transforms would spread it over the tiles' windows: such runs
    # of images take the other path). 17 images of 13x13 -> 11x11 (the path on the forward's tiles)
    # are two runs, 16 and 1: the run without it keeps the same bits. A NaN centre tap w[o, c, 1, 1]
    # reaches the inputs of channel c under an output (the other path, a convolution of gy padded
    # by 2, also multiplies it by the padding on the border: not asserted), no other channel.
    x0, w0, gy0 = rand((17, 16, 13, 13), 21), rand((16, 16, 3, 3), 22), rand((17, 16, 11, 11), 23)

    def input_grad(gy, w):
        x = nc.tensor(x0, requires_grad=True)
        F.conv2d(x, nc.tensor(w)).backward(nc.tensor(gy))
        return x.grad.numpy()

    clean = input_grad(gy0, w0)
    block = np.zeros((17, 16, 13, 13), bool)
    block[16, :, 4:7, 2:5] = True
    for bad in (np.nan, np.inf):
        gy = gy0.copy()
        gy[16, 5, 4, 2] = bad
        g = input_grad(gy, w0)
        assert np.array_equal(~np.isfinite(g), block)
        assert np.array_equal(g[:16], clean[:16])
        if bad == np.inf:  # gx[c, 4 + i, 2 + j] meets it through w[5, c, i, j]
            assert np.array_equal(g[16, :, 4:7, 2:5], np.sign(w0[5]) * np.inf)
    w = w0.copy()
    w[3, 7, 1, 1] = np.nan
    g = input_grad(gy0, w)
    assert np.isnan(g[:, 7, 1:12, 1:12]).all() and np.isfinite(np.delete(g, 7, axis=1)).all()


def test_weight_grad_of_inf_and_nan_gives_the_mathematical_result():
    # gw[o, c, i, j] sums gy[o] times x[c] shifted by the tap: an inf or NaN in x reaches the taps of
    # its channel whose shift meets it, one in gy those of its out channel (the transforms would
    # spread it over the whole tile: such chunks of images take the implicit GEMM).
    x0, gy0 = rand((2, 16, 8, 8), 17), rand((2, 16, 8, 8), 18)
    w = nc.tensor(rand((16, 16, 3, 3), 19), requires_grad=True)
    for bad in (np.nan, np.inf):
        x = x0.copy()
        x[1, 3, 0, 7] = bad  # top-right corner: with padding 1 only taps i <= 1, j >= 1 meet it
        w.grad = None
        F.conv2d(nc.tensor(x), w, padding=1).backward(nc.tensor(gy0))
        reach = np.zeros((16, 16, 3, 3), bool)
        reach[:, 3, :2, 1:] = True
        assert np.array_equal(~np.isfinite(w.grad.numpy()), reach)
        if bad == np.inf:  # inf times the one gy value that meets it (output row 1 - i, column 8 - j)
            i, j = np.meshgrid([0, 1], [1, 2], indexing="ij")
            want = np.sign(gy0[1][:, 1 - i, 8 - j]) * np.inf
            assert np.array_equal(w.grad.numpy()[:, 3, :2, 1:], want)
        gy = gy0.copy()
        gy[0, 5, 4, 4] = bad  # an interior output: every tap of out channel 5 meets it
        w.grad = None
        F.conv2d(nc.tensor(x0), w, padding=1).backward(nc.tensor(gy))
        g = w.grad.numpy()
        assert (np.isnan(g[5]).all() if bad != bad else np.array_equal(g[5], np.sign(x0[0, :, 3:6, 3:6]) * np.inf))
        assert np.isfinite(np.delete(g, 5, axis=0)).all()


# The avx2 and avx512 builds run the same transforms in the same order and the same chain of FMAs
# per output (16 tiles per panel in both), forward and gradients: their results are the same
# bits. A digest per build, each in a fresh process (NEUROCORE_CPU is read at import): edge tiles,
# padding 2, a partial micro-kernel panel, the fused ReLU and the batch-1 split of out channels.
_ISA_DIGEST = r"""
import hashlib, numpy as np, neurocore as nc
from neurocore.nn import functional as F
rng = np.random.default_rng(0)
h = hashlib.sha256()
for n, c, o, hw, p in ((3, 32, 64, 13, 0), (2, 64, 32, 11, 2), (1, 17, 23, 9, 1)):
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    w = (rng.standard_normal((o, c, 3, 3)) * 0.1).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    with nc.no_grad():
        h.update(F.relu(F.conv2d(nc.tensor(x), nc.tensor(w), nc.tensor(b), padding=p)).numpy().tobytes())
    xt, wt = nc.tensor(x, requires_grad=True), nc.tensor(w, requires_grad=True)
    y = F.conv2d(xt, wt, padding=p)
    y.backward(nc.tensor(rng.standard_normal(y.shape).astype(np.float32)))
    h.update(wt.grad.numpy().tobytes())
    h.update(xt.grad.numpy().tobytes())
print(nc.cpu_capability(), h.hexdigest())
"""


def test_same_bits_in_the_avx2_and_avx512_builds():
    if not (C.cpu_supports_avx2() and C._cpu_supports("avx512")):
        pytest.skip("needs a CPU with AVX-512")
    out = {}
    for isa in ("avx2", "avx512"):
        r = subprocess.run([sys.executable, "-c", _ISA_DIGEST], env=dict(os.environ, NEUROCORE_CPU=isa),
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        got_isa, out[isa] = r.stdout.split()
        assert got_isa == isa
    assert out["avx2"] == out["avx512"]

# ---- the weight transform kept between calls (core/derived_copy.h) ------------------------------
# A forward whose weight has no autograd history (no_grad, eval, a frozen layer) keeps the
# weight's Winograd transform on its storage; the exported runtime makes it at load. The transform
# is the same computation either way, so cached, uncached and runtime results are bit-identical:
# the uncached result (a forward with weight history) is the oracle, and so is the float64 bound.

def _layer(seed=0, cin=32, cout=48):
    nc.manual_seed(seed)
    return nn.Conv2d(cin, cout, 3, padding=1)


def _uncached(conv, x):
    return conv(x).detach().numpy()  # the weight requires grad and grad is on: transformed per call


@pytest.mark.parametrize("batch", [1, 5])
def test_eval_forward_keeps_the_weight_transform(batch):
    conv = _layer()
    x = nc.tensor(rand((batch, 32, 11, 9), 20))
    assert not C._has_winograd_weight(conv.weight)
    with nc.no_grad():
        y1 = conv(x).numpy()
    assert C._has_winograd_weight(conv.weight)
    with nc.no_grad():
        y2 = conv(x).numpy()
    assert np.array_equal(y1, y2) and np.array_equal(y1, _uncached(conv, x))
    w64, b64 = np.array(conv.weight.tolist()), np.array(conv.bias.tolist())
    x64 = x.numpy().astype(np.float64)
    check_bound(y1, torch_conv(x64, w64, b64, 1, 1), torch_conv(np.abs(x64), np.abs(w64), None, 1, 1) + np.abs(b64)[:, None, None],
                "cached forward")
    frozen = _layer(seed=1).requires_grad_(False)  # a frozen layer in a model being trained: x has history
    xg = nc.tensor(rand((batch, 32, 11, 9), 21), requires_grad=True)
    y = frozen(xg)
    assert C._has_winograd_weight(frozen.weight)
    y.sum().backward()
    assert xg.grad is not None and np.isfinite(xg.grad.numpy()).all()


@pytest.mark.parametrize("geom", [(3, 32, 64, 13, 0, 1), (5, 64, 48, 7, 1, 2)], ids=["keras_conv2", "groups2"])
def test_weight_grad_from_the_forwards_input_transform(geom):
    # A forward whose weight needs a gradient keeps its transform of x for the weight gradient; the
    # weight gradient as the input gradient's own derivative (double backward) makes it from x. The
    # tiles, transforms and sums are the same: the same bits.
    n, c, o, hw, p, groups = geom
    x0, w0 = rand((n, c, hw, hw), 31), rand((o, c // groups, 3, 3), 32)
    out = hw + 2 * p - 2
    gy0 = rand((n, o, out, out), 33)
    w = nc.tensor(w0, requires_grad=True)
    F.conv2d(nc.tensor(x0), w, padding=p, groups=groups).backward(nc.tensor(gy0))
    kept = w.grad.numpy()
    w2, xg = nc.tensor(w0, requires_grad=True), nc.tensor(rand((n, c, hw, hw), 34), requires_grad=True)
    (gx,) = nc.autograd.grad(F.conv2d(xg, w2, padding=p, groups=groups), xg, nc.tensor(gy0), create_graph=True)
    gx.backward(nc.tensor(x0))  # d<gx, x0>/dw: the weight gradient of x0 and gy0
    assert np.array_equal(w2.grad.numpy(), kept)


def test_training_forward_keeps_nothing():
    conv = _layer()
    conv(nc.tensor(rand((2, 32, 8, 8), 22))).sum().backward()
    assert not C._has_winograd_weight(conv.weight)
    small = nn.Conv2d(8, 8, 3, padding=1)  # not a Winograd geometry: nothing to keep
    with nc.no_grad():
        small(nc.randn(1, 8, 6, 6))
    assert not C._has_winograd_weight(small.weight)


@pytest.mark.parametrize("update", weight_update_cases(lambda conv: nc.randn(2, 32, 6, 6), lambda conv: _layer(seed=9)),
                         ids=lambda f: f.__name__)
def test_weight_updates_drop_the_transform(update):
    conv = _layer()
    model = nn.Sequential(conv, nn.ReLU()).eval()  # Conv + ReLU fused under no_grad
    x = nc.tensor(rand((1, 32, 10, 10), 23))
    with nc.no_grad():
        before = model(x).numpy()
    assert C._has_winograd_weight(conv.weight)
    update(conv)
    assert not C._has_winograd_weight(conv.weight)  # the version moved on: the copy no longer matches
    with nc.no_grad():
        after = model(x).numpy()
    assert C._has_winograd_weight(conv.weight)  # transformed again from the new values
    assert not np.allclose(after, before)
    assert np.array_equal(after, np.maximum(_uncached(conv, x), 0))


def test_numpy_view_turns_the_transform_cache_off():
    conv = _layer()
    x = nc.tensor(rand((1, 32, 8, 8), 24))
    view = conv.weight.detach().numpy()  # NumPy writes bump no version counter
    for value in (0.5, 0.25):
        view[...] = value
        with nc.no_grad():
            y = conv(x).numpy()
        assert not C._has_winograd_weight(conv.weight)
        want = F.conv2d(x, nc.full(tuple(conv.weight.shape), value, requires_grad=True), conv.bias, padding=1)
        assert np.array_equal(y, want.detach().numpy())


def test_cached_transform_with_inf_and_nan():
    # An inf in x with a cached transform: the exact paths, the mathematical result (see the test
    # above); a NaN in the weight: nothing is cached and the exact paths run.
    conv = _layer(cin=32, cout=32)
    x0 = rand((1, 32, 12, 12), 25)
    with nc.no_grad():
        conv(nc.tensor(x0))
        assert C._has_winograd_weight(conv.weight)
        x = x0.copy()
        x[0, 3, 5, 6] = np.inf
        y = conv(nc.tensor(x)).numpy()
    window = np.zeros(y.shape, bool)
    window[:, :, 4:7, 5:8] = True
    assert np.array_equal(~np.isfinite(y), window)
    w0 = np.array(conv.weight.tolist(), dtype=np.float32)
    assert np.array_equal(y[:, :, 4:7, 5:8], np.sign(w0[:, 3, ::-1, ::-1])[None] * np.inf)
    with nc.no_grad():
        conv.weight[2, 1, 0, 0] = float("nan")
        y = conv(nc.tensor(x0)).numpy()
    assert not C._has_winograd_weight(conv.weight)
    assert np.isnan(y[:, 2]).all() and np.isfinite(np.delete(y, 2, axis=1)).all()


def test_runtime_with_inf_input_gives_the_mathematical_result(tmp_path):
    # The runtime transforms the weights at load; an inf in the input takes the exact paths there too.
    conv = _layer(cin=32, cout=32).eval()
    path = tmp_path / "c.ncm"
    x0 = rand((1, 32, 12, 12), 26)
    nc.export.save(conv, path, (x0,))
    session = nc.export.load(path)
    x = x0.copy()
    x[0, 7, 0, 11] = -np.inf
    got = np.asarray(session(x))
    with nc.no_grad():
        want = conv(nc.tensor(x)).numpy()
    assert np.array_equal(np.isfinite(got), np.isfinite(want)) and (~np.isfinite(got)).sum() == 32 * 4
    assert np.array_equal(got[np.isfinite(got)], want[np.isfinite(want)])
    assert np.array_equal(np.asarray(session(x0)), _uncached(conv, nc.tensor(x0)))
