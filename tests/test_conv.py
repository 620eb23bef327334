"""conv2d / conv1d and Conv layers against PyTorch: values and gradients over strides, paddings
(incl. 'same'), dilations and groups; finite differences; second order; thread-count
independence; the seed's SimpleCNN; error messages."""
import numpy as np
import pytest

import neurocore as nc
import neurocore.nn as nn
import neurocore.nn.functional as F
from helpers import check_op, gradcheck, rand, require_torch, assert_close, results_by_thread_count

pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
TOL32 = dict(rtol=1e-4, atol=1e-5)  # GEMM sums in a different order than PyTorch's
TOL64 = dict(rtol=1e-10, atol=1e-12)

# (input shape, weight shape, stride, padding, dilation, groups)
CASES = [
    ((2, 3, 7, 7), (4, 3, 3, 3), 1, 0, 1, 1),
    ((2, 3, 7, 9), (4, 3, 3, 3), 1, 1, 1, 1),
    ((1, 3, 8, 5), (5, 3, 3, 2), 2, 1, 1, 1),
    ((2, 4, 9, 8), (6, 2, 3, 3), (2, 1), (1, 0), 1, 2),
    ((2, 4, 9, 9), (4, 1, 3, 3), 1, 1, 1, 4),            # depthwise
    ((2, 2, 10, 11), (3, 2, 3, 3), 1, 2, 2, 1),           # dilation
    ((2, 3, 8, 8), (4, 3, 4, 4), 1, "same", 1, 1),        # 'same' with an even kernel (asymmetric)
    ((1, 3, 9, 7), (2, 3, 3, 2), 1, "same", (2, 1), 1),
    ((2, 3, 6, 6), (4, 3, 3, 3), 1, "valid", 1, 1),
    ((2, 6, 5, 5), (6, 3, 1, 1), 1, 0, 1, 2),             # 1x1 (GEMM directly on the input)
    ((3, 5, 5, 6), (7, 5, 1, 1), 2, 0, 1, 1),
    ((1, 1, 4, 4), (1, 1, 4, 4), 1, 0, 1, 1),             # kernel = input
    ((2, 3, 5, 7), (4, 3, 2, 3), (3, 2), (1, 2), (1, 2), 1),
    ((2, 3, 5, 5), (4, 3, 1, 1), 1, 1, 1, 1),             # padding past the kernel: col2im input gradient
    ((1, 24, 6, 7), (13, 24, 3, 3), 1, 1, 1, 1),          # several K blocks, a partial row panel
    ((1, 2, 23, 19), (3, 2, 3, 3), 1, 1, 1, 1),           # several column blocks, rows straddling panels
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_torch(case, dtype, bias):
    xs, ws, stride, padding, dilation, groups = case
    arrays = [rand(xs, dtype, 1), rand(ws, dtype, 2)] + ([rand((ws[0],), dtype, 3)] if bias else [])
    tol = TOL32 if dtype == np.float32 else TOL64

    def run(lib, x, w, b=None):
        f = lib.nn.functional.conv2d
        return f(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)

    check_op(lambda t, *a: run(t, *a), lambda n, *a: run(n, *a), arrays, dtype=dtype, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [((2, 3, 11), (4, 3, 3), 1, 1, 1, 1), ((1, 4, 10), (4, 2, 3), 2, 0, 2, 2),
                                  ((2, 2, 9), (2, 1, 4), 1, "same", 1, 2)])
def test_conv1d_matches_torch(case, dtype):
    xs, ws, stride, padding, dilation, groups = case
    tol = TOL32 if dtype == np.float32 else TOL64
    arrays = [rand(xs, dtype, 1), rand(ws, dtype, 2), rand((ws[0],), dtype, 3)]
    check_op(lambda t, x, w, b: t.nn.functional.conv1d(x, w, b, stride, padding, dilation, groups),
             lambda n, x, w, b: n.nn.functional.conv1d(x, w, b, stride, padding, dilation, groups),
             arrays, dtype=dtype, **tol)


def test_conv2d_unbatched_input():
    check_op(lambda t, x, w: t.nn.functional.conv2d(x, w, padding=1),
             lambda n, x, w: n.nn.functional.conv2d(x, w, padding=1),
             [rand((3, 5, 6)), rand((2, 3, 3, 3), seed=2)], dtype=np.float64, **TOL64)


@pytest.mark.parametrize("case", [((1, 2, 5, 4), (3, 2, 3, 2), 1, 1, 1, 1), ((2, 4, 5, 5), (2, 2, 2, 2), 2, 1, 1, 2),
                                  ((1, 2, 6, 6), (2, 1, 3, 3), 1, "same", 2, 2)])
def test_conv2d_gradcheck(case):
    xs, ws, stride, padding, dilation, groups = case
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups),
              [rand(xs, seed=1), rand(ws, seed=2), rand((ws[0],), seed=3)])


def test_conv2d_second_order_matches_torch():
    torch = require_torch()
    x0, w0 = rand((2, 4, 6, 5), seed=1), rand((4, 2, 3, 3), seed=2)
    out = []
    for lib, mk in ((torch, torch.tensor), (nc, nc.tensor)):
        x, w = mk(x0, requires_grad=True), mk(w0, requires_grad=True)
        y = lib.nn.functional.conv2d(x, w, stride=(1, 2), padding=1, groups=2)
        gx, gw = (lib.autograd.grad if lib is torch else nc.autograd.grad)((y * y).sum(), [x, w], create_graph=True)
        ((gx * gx).sum() + (gw ** 3).sum()).backward()
        out.append((gx, gw, x.grad, w.grad))
    for a, b in zip(out[1], out[0]):
        assert_close(a, b, **TOL64)


@pytest.mark.parametrize("n", [7, 1])
def test_thread_count_independent(n):
    # Batch 7: images split across threads, weight gradient from fixed chunks; batch 1: one image,
    # the GEMMs themselves run threaded.
    x0, w0, b0 = rand((n, 8, 12, 12), np.float32, 1), rand((16, 8, 3, 3), np.float32, 2), rand((16,), np.float32, 3)
    results = results_by_thread_count(lambda x, w, b: F.max_pool2d(F.conv2d(x, w, b, padding=1), 2), (x0, w0, b0))
    for a, b in zip(*results):
        assert np.array_equal(a, b)


class SimpleCNN(nn.Module):
    # The seed's model, verbatim but for the import.
    def __init__(self, num_classes=10):
        super(SimpleCNN, self).__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 8 * 8, 128),
            nn.ReLU(),
            nn.Linear(128, num_classes)
        )

    def forward(self, x):
        x = self.features(x)
        x = self.classifier(x)
        return x


def test_simple_cnn_matches_torch():
    torch = require_torch()
    tnn = torch.nn

    class SimpleCNN(tnn.Module):  # torch's twin, same class name so str() can be compared
        def __init__(self, num_classes=10):
            super().__init__()
            self.features = tnn.Sequential(tnn.Conv2d(3, 32, kernel_size=3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2, 2),
                                           tnn.Conv2d(32, 64, kernel_size=3, padding=1), tnn.ReLU(),
                                           tnn.MaxPool2d(2, 2))
            self.classifier = tnn.Sequential(tnn.Flatten(), tnn.Linear(64 * 8 * 8, 128), tnn.ReLU(),
                                             tnn.Linear(128, num_classes))

        def forward(self, x):
            return self.classifier(self.features(x))

    torch.manual_seed(0)
    tm, m = SimpleCNN(), globals()["SimpleCNN"]()
    assert str(m) == str(tm)
    m.load_state_dict({k: nc.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    x0 = rand((2, 3, 32, 32), np.float32, 5)
    target = np.array([3, 7])
    ty = tm(torch.tensor(x0))
    y = m(nc.tensor(x0))
    assert_close(y, ty, **TOL32)
    torch.nn.functional.cross_entropy(ty, torch.tensor(target)).backward()
    F.cross_entropy(y, nc.tensor(target)).backward()
    tparams = dict(tm.named_parameters())
    for name, p in m.named_parameters():
        assert_close(p.grad, tparams[name].grad, rtol=1e-4, atol=1e-6, what=name)


def test_conv_init_and_repr_match_torch():
    torch = require_torch()
    for args, kw in [((3, 8, 3), {}), ((4, 8, (3, 2)), dict(stride=2, padding=(1, 0), dilation=2, groups=2, bias=False)),
                     ((2, 2, 4), dict(padding="same")), ((2, 4, 3), dict(padding="valid", groups=2))]:
        assert str(nn.Conv2d(*args, **kw)) == str(torch.nn.Conv2d(*args, **kw))
        if not isinstance(args[2], tuple):
            assert str(nn.Conv1d(*args, **kw)) == str(torch.nn.Conv1d(*args, **kw))
    m = nn.Conv2d(6, 8, 3, groups=2)
    assert tuple(m.weight.shape) == (8, 3, 3, 3) and list(m.state_dict()) == ["weight", "bias"]
    bound = 1 / np.sqrt(27)  # kaiming_uniform(a=sqrt(5)) gives the same bound as the bias
    assert np.abs(m.weight.detach().numpy()).max() <= bound and np.abs(m.bias.detach().numpy()).max() <= bound
    assert np.abs(m.weight.detach().numpy()).max() > 0.8 * bound


def test_conv_errors():
    with pytest.raises(RuntimeError, match=r"\[Conv2d\] expected input with 3 channels, got 4 \(input shape \(2, 4, 8, 8\)"):
        nn.Conv2d(3, 5, 3)(nc.zeros(2, 4, 8, 8))
    with pytest.raises(RuntimeError, match=r"\[conv2d\] kernel size \(5 x 5.*larger than the padded input \(4 x 4\)"):
        F.conv2d(nc.zeros(1, 1, 4, 4), nc.zeros(1, 1, 5, 5))
    with pytest.raises(RuntimeError, match=r"\[Conv2d\] expected 3-D \(unbatched\) or 4-D .*got shape \(8, 8\)"):
        nn.Conv2d(3, 5, 3)(nc.zeros(8, 8))
    with pytest.raises(RuntimeError, match=r"\[Conv2d\] expected 3-D .*got shape \(1, 2, 3, 8, 8\)"):
        nn.Conv2d(3, 5, 3)(nc.zeros(1, 2, 3, 8, 8))
    with pytest.raises(RuntimeError, match=r"\[Conv1d\] expected input with 2 channels, got 3"):
        nn.Conv1d(2, 2, 3)(nc.zeros(1, 3, 8))
    with pytest.raises(RuntimeError, match=r"\[conv2d\] expected bias of shape \(2,\)"):
        F.conv2d(nc.zeros(1, 1, 4, 4), nc.zeros(2, 1, 3, 3), nc.zeros(3))
    with pytest.raises(ValueError, match="not supported for strided"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="invalid padding string"):
        nn.Conv2d(1, 1, 3, padding="full")
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(NotImplementedError, match=r"\[Conv2d\] padding_mode='reflect'"):
        nn.Conv2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(TypeError, match=r"\[conv2d\] expected input and weight of one float dtype"):
        F.conv2d(nc.zeros(1, 1, 4, 4, dtype=nc.float64), nc.zeros(1, 1, 3, 3))


def test_conv2d_noncontiguous_and_empty_batch():
    torch = require_torch()
    x0, w0 = rand((5, 5, 3, 2)), rand((4, 3, 2, 2), seed=2)
    f = lambda lib, x, w: lib.nn.functional.conv2d(x.permute(3, 2, 0, 1), w.transpose(2, 3), stride=(2, 1), padding=1)
    check_op(f, f, [x0, w0], dtype=np.float64, **TOL64)
    x, w = nc.zeros(0, 3, 5, 5, dtype=nc.float64, requires_grad=True), nc.tensor(w0, requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    assert tuple(y.shape) == tuple(torch.nn.functional.conv2d(torch.zeros(0, 3, 5, 5, dtype=torch.float64), torch.tensor(w0), padding=1).shape)
    y.sum().backward()
    assert tuple(x.grad.shape) == (0, 3, 5, 5) and not w.grad.numpy().any()


@pytest.mark.parametrize("dtype", [nc.float32, nc.float64])
def test_sequential_inference_fuses_conv_relu_exactly(dtype):
    # Under no_grad, Sequential runs Conv+ReLU as one kernel call; it must give the very same
    # bits as the two modules run one by one, and autograd-on results must be unaffected.
    nc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 13, 3, stride=2),
                          nn.ReLU(), nn.Dropout(0.3), nn.Flatten(), nn.Identity(), nn.Linear(13, 4)).to(dtype)
    model.eval()
    seq1d = nn.Sequential(nn.Conv1d(3, 5, 3, padding=2, dilation=2), nn.ReLU()).to(dtype)
    x = nc.randn(5, 3, 9, 9, dtype=dtype)
    x1 = nc.randn(2, 3, 11, dtype=dtype)
    with nc.no_grad():
        fused, fused1 = model(x), seq1d(x1)
        stepwise = x
        for m in model:
            stepwise = m(stepwise)
        stepwise1 = seq1d[1](seq1d[0](x1))
    assert np.array_equal(fused.numpy(), stepwise.numpy())
    assert np.array_equal(fused1.numpy(), stepwise1.numpy())
    assert np.array_equal(model(x).detach().numpy(), stepwise.numpy())
    assert (fused1.numpy() >= 0).all() and (fused1.numpy() == 0).any()


def test_sequential_fusion_keeps_hooks_and_training_dropout():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Dropout(0.5))
    seen = []
    model[1].register_forward_hook(lambda m, i, o: seen.append(o.min().item()))
    model[2].register_forward_hook(lambda m, i, o: seen.append("dropout"))
    model.eval()
    with nc.no_grad():
        y = model(nc.randn(1, 1, 5, 5))
    assert seen == [y.min().item(), "dropout"] and seen[0] >= 0
    model = nn.Sequential(nn.Dropout(0.5))  # training mode: dropout still runs under no_grad
    with nc.no_grad():
        y = model(nc.ones(1000))
    assert 300 < int((y == 0).sum().item()) < 700
