"""conv_transpose2d / conv_transpose1d and the ConvTranspose layers against PyTorch: values and
gradients over strides, paddings, output paddings, dilations and groups; forward's output_size=;
finite differences; second order; thread-count independence; init, repr and state_dict; errors;
a small conv autoencoder trained step by step next to PyTorch."""
import numpy as np
import pytest

import neurocore as nc
import neurocore.nn as nn
import neurocore.nn.functional as F
from helpers import assert_close, check_op, gradcheck, rand, require_torch, results_by_thread_count

TOL32 = dict(rtol=1e-4, atol=1e-5)  # GEMM sums in a different order than PyTorch's
TOL64 = dict(rtol=1e-10, atol=1e-12)

# (input shape, weight shape (in, out/groups, kh, kw), stride, padding, output_padding, dilation, groups)
CASES = [
    ((2, 3, 5, 5), (3, 4, 3, 3), 1, 0, 0, 1, 1),
    ((2, 3, 4, 6), (3, 2, 3, 3), 2, 1, 1, 1, 1),
    ((3, 3, 4, 4), (3, 2, 4, 4), 2, 1, 0, 1, 1),                   # the DCGAN up-sampling layer
    ((1, 4, 5, 3), (4, 3, 3, 2), (3, 2), (1, 0), (2, 1), 1, 1),      # output_padding > padding: uncovered rows
    ((2, 4, 3, 4), (4, 2, 3, 3), 2, 0, 1, 1, 2),
    ((2, 4, 5, 5), (4, 1, 3, 3), 1, 1, 0, 1, 4),                   # depthwise-like (groups = in_channels)
    ((2, 4, 4, 5), (4, 1, 3, 3), 2, 1, 1, 1, 4),
    ((2, 2, 4, 5), (2, 3, 3, 3), 1, 1, 1, 2, 1),                   # output_padding >= stride, < dilation
    ((1, 2, 3, 4), (2, 3, 2, 3), (1, 3), (0, 1), (1, 2), (2, 1), 1),
    ((2, 3, 5, 6), (3, 4, 1, 1), 1, 0, 0, 1, 1),                   # 1x1: a GEMM on the input directly
    ((2, 6, 3, 3), (6, 2, 1, 1), 2, 0, 1, 1, 3),
    ((1, 2, 5, 5), (2, 2, 3, 3), 1, 3, 0, 1, 1),                   # padding shrinks the output to 1 x 1
    ((2, 1, 1, 1), (1, 2, 1, 1), 3, 1, 2, 1, 1),                   # no tap reaches the output: bias only
    ((2, 5, 3, 7), (5, 3, 2, 3), (2, 3), (1, 2), (1, 0), (3, 2), 1),
]


def _run(lib, x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1, nd=2):
    f = lib.nn.functional.conv_transpose2d if nd == 2 else lib.nn.functional.conv_transpose1d
    return f(x, w, b, stride, padding, output_padding, groups, dilation)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose2d_matches_torch(case, dtype, bias):
    xs, ws, stride, padding, output_padding, dilation, groups = case
    arrays = [rand(xs, dtype, 1), rand(ws, dtype, 2)] + ([rand((ws[1] * groups,), dtype, 3)] if bias else [])
    tol = TOL32 if dtype == np.float32 else TOL64
    args = (stride, padding, output_padding, dilation, groups)
    check_op(lambda t, *a: _run(t, *a, *args) if bias else _run(t, *a, None, *args),
             lambda n, *a: _run(n, *a, *args) if bias else _run(n, *a, None, *args), arrays, dtype=dtype, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [((2, 3, 7), (3, 4, 3), 1, 0, 0, 1, 1), ((1, 4, 6), (4, 2, 3), 2, 1, 1, 1, 2),
                                  ((2, 2, 5), (2, 3, 4), 3, 0, 2, 1, 1), ((2, 4, 5), (4, 1, 3), 1, 2, 1, 2, 4)])
def test_conv_transpose1d_matches_torch(case, dtype):
    xs, ws, *args = case
    tol = TOL32 if dtype == np.float32 else TOL64
    arrays = [rand(xs, dtype, 1), rand(ws, dtype, 2), rand((ws[1] * args[-1],), dtype, 3)]
    check_op(lambda t, x, w, b: _run(t, x, w, b, *args, nd=1), lambda n, x, w, b: _run(n, x, w, b, *args, nd=1),
             arrays, dtype=dtype, **tol)


def test_unbatched_input():
    check_op(lambda t, x, w, b: t.nn.functional.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
             lambda n, x, w, b: n.nn.functional.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
             [rand((3, 4, 5)), rand((3, 2, 3, 3), seed=2), rand((2,), seed=3)], dtype=np.float64, **TOL64)
    check_op(lambda t, x, w: t.nn.functional.conv_transpose1d(x, w, stride=2),
             lambda n, x, w: n.nn.functional.conv_transpose1d(x, w, stride=2),
             [rand((3, 6)), rand((3, 2, 3), seed=2)], dtype=np.float64, **TOL64)


def test_noncontiguous_input_and_empty_batch():
    torch = require_torch()
    f = lambda lib, x, w: lib.nn.functional.conv_transpose2d(x.permute(3, 2, 0, 1), w.transpose(2, 3), stride=(2, 1),
                                                             padding=1, output_padding=(1, 0))
    check_op(f, f, [rand((5, 4, 3, 2)), rand((3, 2, 2, 3), seed=2)], dtype=np.float64, **TOL64)
    w0 = rand((3, 2, 3, 3), seed=2)
    x, w = nc.zeros(0, 3, 4, 4, dtype=nc.float64, requires_grad=True), nc.tensor(w0, requires_grad=True)
    y = F.conv_transpose2d(x, w, stride=2)
    ty = torch.nn.functional.conv_transpose2d(torch.zeros(0, 3, 4, 4, dtype=torch.float64), torch.tensor(w0), stride=2)
    assert tuple(y.shape) == tuple(ty.shape) == (0, 2, 9, 9)
    y.sum().backward()
    assert tuple(x.grad.shape) == (0, 3, 4, 4) and not w.grad.numpy().any()


@pytest.mark.parametrize("case", [((1, 2, 3, 4), (2, 2, 3, 2), 2, 1, 1, 1, 1), ((2, 4, 3, 3), (4, 1, 2, 3), 1, 0, 1, 2, 2),
                                  ((1, 2, 2, 3), (2, 3, 3, 3), (3, 2), (0, 1), (2, 0), 1, 1)])
def test_conv_transpose2d_gradcheck(case):
    xs, ws, stride, padding, output_padding, dilation, groups = case
    gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation),
              [rand(xs, seed=1), rand(ws, seed=2), rand((ws[1] * groups,), seed=3)])


def test_conv_transpose1d_gradcheck():
    gradcheck(lambda x, w, b: F.conv_transpose1d(x, w, b, stride=2, padding=1, output_padding=1, groups=2),
              [rand((2, 4, 4), seed=1), rand((4, 2, 3), seed=2), rand((4,), seed=3)])


def test_second_order_matches_torch():
    # output_padding > padding, so the graph also holds the views of the uncovered rows/columns.
    torch = require_torch()
    x0, w0, b0 = rand((2, 4, 3, 4), seed=1), rand((4, 3, 3, 2), seed=2), rand((6,), seed=3)
    out = []
    for lib, mk in ((torch, torch.tensor), (nc, nc.tensor)):
        x, w, b = (mk(a, requires_grad=True) for a in (x0, w0, b0))
        y = lib.nn.functional.conv_transpose2d(x, w, b, stride=2, padding=(0, 1), output_padding=1, groups=2)
        gx, gw, gb = (torch.autograd.grad if lib is torch else nc.autograd.grad)((y * y).sum(), [x, w, b],
                                                                               create_graph=True)
        ((gx * gx).sum() + (gw ** 3).sum() + (gb * gb).sum()).backward()
        out.append((y, gx, gw, gb, x.grad, w.grad, b.grad))
    for i, (a, b) in enumerate(zip(out[1], out[0])):
        assert_close(a, b, what=str(i), **TOL64)


@pytest.mark.parametrize("n", [7, 1])
def test_thread_count_independent(n):
    x0, w0, b0 = rand((n, 8, 6, 6), np.float32, 1), rand((8, 16, 3, 3), np.float32, 2), rand((16,), np.float32, 3)
    results = results_by_thread_count(lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1), (x0, w0, b0))
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_module_matches_torch_with_output_size():
    torch = require_torch()
    torch.manual_seed(0)
    for nd, args, kw, xs, sizes in [
            (2, (4, 6, 3), dict(stride=2, padding=1, groups=2), (2, 4, 5, 4), [None, [9, 7], [10, 8], (2, 6, 10, 7)]),
            (2, (3, 2, (3, 2)), dict(stride=(3, 2), dilation=2, bias=False), (3, 4, 4), [None, [14, 9], (2, 16, 10)]),
            (1, (3, 4, 3), dict(stride=3, padding=1), (2, 3, 5), [None, [13], [15], (2, 4, 14)])]:
        tm = (torch.nn.ConvTranspose2d if nd == 2 else torch.nn.ConvTranspose1d)(*args, **kw).double()
        m = (nn.ConvTranspose2d if nd == 2 else nn.ConvTranspose1d)(*args, **kw, dtype=nc.float64)
        m.load_state_dict({k: nc.tensor(v.numpy()) for k, v in tm.state_dict().items()})
        x0 = rand(xs, np.float64, 4)
        for size in sizes:
            ty = tm(torch.tensor(x0), output_size=size)
            y = m(nc.tensor(x0), output_size=size)
            assert_close(y, ty, what=f"{args} {kw} output_size={size}", **TOL64)


def test_init_repr_and_state_dict_match_torch():
    torch = require_torch()
    for args, kw in [((3, 8, 3), {}),
                     ((4, 8, (3, 2)), dict(stride=2, padding=(1, 0), dilation=2, groups=2, bias=False)),
                     ((2, 4, 3), dict(stride=2, output_padding=1)),
                     ((4, 4, 2), dict(output_padding=(0, 1), stride=2, groups=4)),
                     ((2, 2, 3), dict(output_padding=1, dilation=2, padding=1))]:
        assert str(nn.ConvTranspose2d(*args, **kw)) == str(torch.nn.ConvTranspose2d(*args, **kw))
        if not isinstance(args[2], tuple) and not isinstance(kw.get("output_padding"), tuple):
            assert str(nn.ConvTranspose1d(*args, **kw)) == str(torch.nn.ConvTranspose1d(*args, **kw))
    assert str(nn.Sequential(nn.ConvTranspose2d(2, 3, 3), nn.ReLU())) == str(
        torch.nn.Sequential(torch.nn.ConvTranspose2d(2, 3, 3), torch.nn.ReLU()))
    for m, tm in [(nn.ConvTranspose2d(6, 8, (3, 2), groups=2), torch.nn.ConvTranspose2d(6, 8, (3, 2), groups=2)),
                  (nn.ConvTranspose1d(4, 6, 5, bias=False), torch.nn.ConvTranspose1d(4, 6, 5, bias=False))]:
        assert list(m.state_dict()) == list(tm.state_dict())
        for k, v in m.state_dict().items():
            assert tuple(v.shape) == tuple(tm.state_dict()[k].shape)
        assert m.transposed and m.output_padding == tm.output_padding and m.weight.dtype == nc.float32
    # kaiming_uniform(a=sqrt(5)) with PyTorch's fan_in of a transposed weight: weight.size(1) * kernel
    # elements = out/groups * kh * kw (not in_channels); the bias shares the bound 1/sqrt(fan_in).
    m, tm = nn.ConvTranspose2d(64, 48, 3, groups=2), torch.nn.ConvTranspose2d(64, 48, 3, groups=2)
    bound = 1 / np.sqrt(24 * 9)
    for w in (m.weight.detach().numpy(), tm.weight.detach().numpy()):
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
        assert abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound and abs(w.mean()) < 0.02 * bound
    b = m.bias.detach().numpy()
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.5 * bound
    m64 = nn.ConvTranspose1d(2, 3, 3, dtype=nc.float64)
    assert m64.weight.dtype == nc.float64 and m64.bias.dtype == nc.float64


def test_conv_transpose_errors():
    x = nc.zeros(2, 4, 5, 5)
    with pytest.raises(RuntimeError, match=r"\[conv_transpose2d\] expected input with 4 channels, got 5 \(input shape "
                                           r"\(2, 5, 5, 5\), weight shape \(4, 3, 3, 3\)\)"):
        F.conv_transpose2d(nc.zeros(2, 5, 5, 5), nc.zeros(4, 3, 3, 3))
    with pytest.raises(RuntimeError, match=r"\[ConvTranspose2d\] expected input with 3 channels, got 4"):
        nn.ConvTranspose2d(3, 2, 3)(x)
    with pytest.raises(RuntimeError, match=r"\[conv_transpose1d\] expected input with 3 channels, got 2 \(input shape "
                                           r"\(1, 2, 8\), weight shape \(3, 2, 3\)\)"):
        F.conv_transpose1d(nc.zeros(1, 2, 8), nc.zeros(3, 2, 3))
    with pytest.raises(RuntimeError, match=r"\[conv_transpose2d\] expected 3-D \(unbatched\) or 4-D .*got shape \(4, 5\)"):
        F.conv_transpose2d(nc.zeros(4, 5), nc.zeros(4, 3, 3, 3))
    with pytest.raises(RuntimeError, match=r"\[ConvTranspose2d\] expected 3-D .*got shape \(1, 2, 4, 5, 5\)"):
        nn.ConvTranspose2d(4, 3, 3)(nc.zeros(1, 2, 4, 5, 5))
    with pytest.raises(RuntimeError, match=r"\[conv_transpose1d\] expected a 3-D weight"):
        F.conv_transpose1d(nc.zeros(2, 4, 5), nc.zeros(4, 3, 3, 1))
    with pytest.raises(RuntimeError, match=r"\[conv_transpose2d\] output size \(-1, -1\) is not positive; input shape "
                                           r"\(2, 4, 5, 5\), weight shape \(4, 3, 3, 3\)"):
        F.conv_transpose2d(x, nc.zeros(4, 3, 3, 3), padding=4)
    with pytest.raises(RuntimeError, match=r"\[conv_transpose2d\] output_padding must be smaller than either stride or "
                                           r"dilation, got output_padding=\(2, 2\), stride=\(2, 2\), dilation=\(1, 1\)"):
        F.conv_transpose2d(x, nc.zeros(4, 3, 3, 3), stride=2, output_padding=2)
    with pytest.raises(RuntimeError, match=r"\[conv_transpose1d\] output_padding must be smaller .* got "
                                           r"output_padding=\(2,\), stride=\(2,\), dilation=\(1,\)"):
        F.conv_transpose1d(nc.zeros(2, 4, 5), nc.zeros(4, 3, 3), stride=2, output_padding=2)
    with pytest.raises(RuntimeError, match="output_padding must be smaller"):
        nn.ConvTranspose2d(4, 3, 3, output_padding=1)(x)  # stride 1, dilation 1
    with pytest.raises(RuntimeError, match=r"output_padding must be non-negative"):
        F.conv_transpose2d(x, nc.zeros(4, 3, 3, 3), output_padding=-1)
    with pytest.raises(RuntimeError, match=r"padding must be non-negative"):
        F.conv_transpose2d(x, nc.zeros(4, 3, 3, 3), padding=-1)
    with pytest.raises(RuntimeError, match=r"stride must be positive"):
        F.conv_transpose2d(x, nc.zeros(4, 3, 3, 3), stride=0)
    with pytest.raises(RuntimeError, match=r"\[conv_transpose2d\] weight's in_channels 4 is not divisible by groups 3"):
        F.conv_transpose2d(x, nc.zeros(4, 3, 3, 3), groups=3)
    with pytest.raises(RuntimeError, match=r"\[conv_transpose2d\] expected bias of shape \(3,\), got \(4,\)"):
        F.conv_transpose2d(x, nc.zeros(4, 3, 3, 3), nc.zeros(4))
    with pytest.raises(RuntimeError, match=r"zero-size spatial dim \(input shape \(2, 4, 0, 5\)\)"):
        F.conv_transpose2d(nc.zeros(2, 4, 0, 5), nc.zeros(4, 3, 3, 3))
    with pytest.raises(TypeError, match=r"\[conv_transpose2d\] expected input and weight of one float dtype"):
        F.conv_transpose2d(nc.zeros(2, 4, 5, 5, dtype=nc.float64), nc.zeros(4, 3, 3, 3))
    with pytest.raises(TypeError, match=r"\[conv_transpose2d\] padding must be an int or a tuple"):
        F.conv_transpose2d(x, nc.zeros(4, 3, 3, 3), padding="same")
    m = nn.ConvTranspose2d(4, 3, 3, stride=2)
    with pytest.raises(ValueError, match=r"\[ConvTranspose2d\] requested an output size of \[20, 20\], but valid sizes "
                                         r"range from \[11, 11\] to \[12, 12\] \(for an input of \(5, 5\)\)"):
        m(x, output_size=[20, 20])
    with pytest.raises(ValueError, match=r"ConvTranspose2D: for 4D input, output_size must have 2 or 4 elements \(got 1\)"):
        m(x, output_size=[12])
    with pytest.raises(ValueError, match=r"for 3D input, output_size must have 2 or 3 elements \(got 4\)"):
        m(nc.zeros(4, 5, 5), output_size=[2, 3, 12, 12])
    with pytest.raises(ValueError, match=r'\[ConvTranspose2d\] Only "zeros" padding mode is supported'):
        nn.ConvTranspose2d(4, 3, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r'\[ConvTranspose1d\] Only "zeros" padding mode is supported'):
        nn.ConvTranspose1d(4, 3, 3, padding_mode="circular")
    with pytest.raises(ValueError, match=r"\[ConvTranspose2d\] padding must be an int or a tuple"):
        nn.ConvTranspose2d(4, 3, 3, padding="same")
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        nn.ConvTranspose2d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.ConvTranspose2d(3, 4, 3, groups=2)


def test_conv_autoencoder_trains_like_torch():
    # Conv2d stride 2 -> ReLU -> ConvTranspose2d stride 2 back to the input size, plain SGD from the
    # same initial state_dict: losses and parameters follow PyTorch's step by step.
    torch = require_torch()
    torch.manual_seed(0)

    def model(lib):
        return lib.nn.Sequential(lib.nn.Conv2d(1, 6, 3, stride=2, padding=1), lib.nn.ReLU(),
                                 lib.nn.ConvTranspose2d(6, 1, 3, stride=2, padding=1, output_padding=1))

    tm, m = model(torch), model(nc)
    assert str(m) == str(tm)
    m.load_state_dict({k: nc.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    xs = rand((8, 1, 10, 10), np.float32, 7, 0.0, 1.0)
    t_opt, opt = torch.optim.SGD(tm.parameters(), lr=0.5), nc.optim.SGD(m.parameters(), lr=0.5)
    losses = []
    for step in range(40):
        t_opt.zero_grad()
        opt.zero_grad()
        t_loss = torch.nn.functional.mse_loss(tm(torch.tensor(xs)), torch.tensor(xs))
        loss = F.mse_loss(m(nc.tensor(xs)), nc.tensor(xs))
        t_loss.backward()
        loss.backward()
        t_opt.step()
        opt.step()
        losses.append(loss.item())
        if step < 5:
            assert abs(loss.item() - t_loss.item()) <= 1e-5 * t_loss.item()
            tparams = dict(tm.named_parameters())
            for name, p in m.named_parameters():
                assert_close(p, tparams[name], rtol=1e-4, atol=1e-6, what=f"step {step} {name}")
    assert losses[-1] < 0.5 * losses[0]
