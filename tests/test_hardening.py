"""Bad input that used to crash, hang or give a silently wrong result (issue 8): every case now
raises a clear error naming the op, or returns PyTorch's (or the mathematical) answer.

Cases that could crash the interpreter run in a subprocess, so a regression fails one test with
its output instead of killing pytest.
"""
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neurocore as nc
import neurocore.nn.functional as F
from helpers import require_torch


def run_isolated(code, timeout=60):
    """Runs `code` in a fresh interpreter; returns (exit code, output). A crash is a negative code."""
    r = subprocess.run([sys.executable, "-c", "import numpy as np, neurocore as nc\n" + textwrap.dedent(code)],
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


# --- sizes whose element or byte count overflows, or that can't be allocated ------------------

@pytest.mark.parametrize("code, kind, match", [
    ("nc.zeros(2**62)", RuntimeError, r"\[full\].*bytes"),
    ("nc.zeros(2**32, 2**32)", RuntimeError, r"\[full\].*64-bit"),
    ("nc.empty(2**31, 2**31, 4)", RuntimeError, r"\[empty\]"),
    ("nc.ones(3, -1)", ValueError, r"negative dimension"),
    ("nc.nn.Linear(2**40, 2**40)", RuntimeError, r"\[empty\]"),
    ("F.one_hot(nc.tensor([0, 1]), 2**62)", RuntimeError, r"64-bit"),
    ("F.adaptive_avg_pool2d(nc.zeros(1, 1, 4, 4), (2**40, 2**40))", RuntimeError, r"64-bit"),
    ("nc.zeros(2, 3).repeat(2**62, 2**62)", RuntimeError, r"\[view\].*64-bit"),
    ("nc.zeros(2, 3).expand(2**62, 4, 2, 3)", RuntimeError, r"64-bit"),
    ("nc.zeros(0).view(2**40, 2**40, 0)", ValueError, r"\[view\]"),
])
def test_overflowing_sizes_raise(code, kind, match):
    with pytest.raises(kind, match=match):
        eval(code)


def test_unallocatable_size_is_memory_error():
    # Valid counts, far more memory than any machine has: MemoryError, not a crash.
    with pytest.raises(MemoryError, match=r"\[full\] can't allocate memory"):
        nc.zeros(2**58)
    with pytest.raises(MemoryError):
        F.one_hot(nc.tensor([0]), 2**58)
    with pytest.raises(MemoryError):
        nc.zeros(2, 3).repeat(2**28, 2**28)


def test_overflow_cases_do_not_crash_the_process():
    rc, out = run_isolated("""
        import neurocore.nn.functional as F
        for code in ["nc.zeros(2**62)", "nc.nn.Linear(2**40, 2**40)", "F.one_hot(nc.tensor([0]), 2**62)",
                     "F.adaptive_avg_pool2d(nc.zeros(1, 1, 4, 4), (2**40, 2**40))", "nc.zeros(2, 3).repeat(2**62, 2**62)",
                     "nc.zeros(2**58)"]:
            try:
                eval(code)
                print("NO ERROR", code)
            except (RuntimeError, ValueError, MemoryError) as e:
                print(type(e).__name__)
        print("done")
    """)
    assert rc == 0 and "done" in out and "NO ERROR" not in out, out


# --- NumPy buffers --------------------------------------------------------------------------------

def _unaligned_float64(n):
    raw = np.zeros(n * 8 + 1, np.uint8)
    a = raw[1:].view(np.float64)
    a[:] = np.arange(n)
    return a


@pytest.mark.parametrize("make", [
    lambda: np.arange(12.0).reshape(3, 4)[::-1, ::-2],           # negative strides
    lambda: np.arange(6, dtype=">f4"),                          # big-endian
    lambda: np.arange(6, dtype=">i8").reshape(2, 3),            # big-endian int
    lambda: np.arange(6, dtype=np.float64).astype(">f8")[::-1],  # both
    lambda: _unaligned_float64(5),                              # unaligned data
    lambda: np.arange(12.0, dtype=np.float32)[::3],             # positive non-unit strides
    lambda: np.zeros((0, 3))[::-1],                             # empty, negative stride
    lambda: np.array(7.5, dtype=">f8"),                         # 0-d big-endian
])
def test_tensor_of_any_numpy_layout_copies_the_values(make):
    a = make()
    t = nc.tensor(a)
    assert t.shape == a.shape
    np.testing.assert_array_equal(t.numpy(), a.astype(a.dtype.newbyteorder("=")))
    np.testing.assert_array_equal((t * 1).numpy(), a)  # usable in ops: no null storage


def test_tensor_of_a_read_only_array():
    a = np.arange(6.0)
    a.flags.writeable = False
    for t in (nc.tensor(a), nc.as_tensor(a), nc.from_numpy(a)):
        np.testing.assert_array_equal(t.numpy(), a)
        t.add_(1)  # writes into our own copy, never into read-only memory
    np.testing.assert_array_equal(a, np.arange(6.0))
    b = np.frombuffer(np.arange(4.0).tobytes(), dtype=np.float64)  # truly read-only memory
    t = nc.from_numpy(b)
    t.mul_(2)
    np.testing.assert_array_equal(t.numpy(), [0, 2, 4, 6])


def test_from_numpy_refuses_layouts_it_cannot_share():
    with pytest.raises(ValueError, match=r"\[from_numpy\].*negative"):
        nc.from_numpy(np.arange(6.0)[::-1])
    with pytest.raises(ValueError, match=r"\[from_numpy\].*byte order"):
        nc.from_numpy(np.arange(3, dtype=">f4"))
    a = _unaligned_float64(4)
    t = nc.from_numpy(a)  # unaligned: a copy
    np.testing.assert_array_equal(t.numpy(), a)
    shared = np.arange(4.0)
    nc.from_numpy(shared).add_(1)  # the normal case still shares
    np.testing.assert_array_equal(shared, [1, 2, 3, 4])


@pytest.mark.parametrize("shape, dims", [((), ()), ((), 0), ((), (-1,)), ((0, 3), (0,)), ((2, 0), (1, 0)),
                                         ((2, 3), ()), ((2, 3), (-1, 0)), ((1,), 0), ((2, 1, 3), (1, 2))])
def test_flip_matches_numpy(shape, dims):
    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    t = nc.flip(nc.tensor(a), dims)
    expected = a if a.ndim == 0 else np.flip(a, dims)
    assert t.shape == expected.shape
    np.testing.assert_array_equal((t + 0).numpy(), expected)


def test_flip_bad_dims():
    with pytest.raises(IndexError, match=r"\[flip\]"):
        nc.flip(nc.zeros(2, 3), (2,))
    with pytest.raises(RuntimeError, match=r"\[flip\].*more than once"):
        nc.flip(nc.zeros(2, 3), (0, -2))


# --- pooling / conv arguments ---------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: nc.nn.Conv2d(1, 1, 0), r"\[Conv2d\] kernel_size must be positive"),
    (lambda: nc.nn.Conv2d(1, 1, 3, stride=0), r"stride must be positive"),
    (lambda: nc.nn.Conv2d(1, 1, 3, padding=-1), r"padding must be non-negative"),
    (lambda: nc.nn.Conv2d(1, 1, 3, dilation=0), r"dilation must be positive"),
    (lambda: F.max_pool2d(nc.zeros(1, 1, 4, 4), 0), r"kernel_size must be positive"),
    (lambda: F.max_pool2d(nc.zeros(1, 1, 4, 4), 2, stride=-1), r"stride must be positive"),
    (lambda: F.avg_pool2d(nc.zeros(1, 1, 4, 4), 2, padding=2), r"pad should be at most half"),
    (lambda: F.max_pool2d(nc.zeros(1, 1, 4, 4), 8), r"output size is too small"),
    (lambda: F.max_pool1d(nc.zeros(1, 1, 4), 2, dilation=0), r"dilation must be positive"),
    (lambda: F.max_pool2d(nc.zeros(1, 1, 4, 4), 2**40, padding=2**39), r"must be at most 2147483647"),
    (lambda: F.avg_pool2d(nc.zeros(1, 1, 4, 4), 2**31, padding=2**30), r"must be at most 2147483647"),
    (lambda: F.max_pool2d(nc.zeros(1, 1, 4, 4), 3, stride=2**62), r"must be at most 2147483647"),
])
def test_pool_and_conv_arguments_are_checked(call, match):
    with pytest.raises(RuntimeError, match=match):
        call()


def test_absurd_pool_sizes_return_quickly():
    rc, out = run_isolated("""
        import neurocore.nn.functional as F
        for call in [lambda: F.max_pool2d(nc.zeros(1, 1, 4, 4), 2**30, padding=2**29),
                     lambda: F.max_pool2d(nc.zeros(1, 1, 4, 4), 2**40, padding=2**39),
                     lambda: F.max_pool2d(nc.zeros(1, 1, 4, 4), 2**31 - 1, padding=2**30 - 1),
                     lambda: F.avg_pool2d(nc.zeros(1, 1, 4, 4), (2**20, 3), padding=(2**19, 1)),
                     lambda: F.adaptive_avg_pool2d(nc.zeros(1, 1, 4, 4), (2**20, 2**20))]:
            try:
                call()
            except (RuntimeError, ValueError, MemoryError) as e:
                print(type(e).__name__, str(e)[:60])
        print("done")
    """, timeout=30)
    assert rc == 0 and "done" in out, out


# --- in-place writes and autograd ------------------------------------------------------------------

@pytest.mark.parametrize("op", [lambda t: t.add_(1), lambda t: t.mul_(nc.ones(3, 3)), lambda t: t.copy_(nc.ones(3, 3)),
                                lambda t: t.relu_(), lambda t: t.exp_(), lambda t: t.__setitem__(0, 5.0)])
def test_inplace_into_expanded_tensor_raises(op):
    t = nc.zeros(1, 3).expand(3, 3)
    with pytest.raises(RuntimeError, match=r"more than one element of the written-to tensor"):
        op(t)


def test_writing_one_value_into_expanded_tensor_is_allowed():
    # Every location gets the same value however often it is written (PyTorch allows these too).
    base = nc.zeros(1, 3)
    base.expand(3, 3).fill_(2.0)
    np.testing.assert_array_equal(base.numpy(), [[2, 2, 2]])
    base.expand(3, 3).copy_(nc.tensor(5.0))
    np.testing.assert_array_equal(base.numpy(), [[5, 5, 5]])
    base.expand(3, 3).zero_()
    np.testing.assert_array_equal(base.numpy(), [[0, 0, 0]])


def test_inplace_from_overlapping_source_reads_the_old_values():
    # PyTorch refuses these; neurocore reads the source as it was before the write.
    base = np.arange(6.0)
    a = nc.tensor(base)
    a[1:].copy_(a[:-1])
    np.testing.assert_array_equal(a.numpy(), [0, 0, 1, 2, 3, 4])
    a = nc.tensor(base)
    a[1:].add_(a[:-1])
    np.testing.assert_array_equal(a.numpy(), [0, 1, 3, 5, 7, 9])
    a = nc.tensor(base.reshape(2, 3))
    a[:, 1:].copy_(a[:, :-1])  # strided, overlapping
    np.testing.assert_array_equal(a.numpy(), [[0, 0, 1], [3, 3, 4]])
    m = np.arange(9.0).reshape(3, 3)
    a = nc.tensor(m)
    a.copy_(a.t())
    np.testing.assert_array_equal(a.numpy(), m.T)
    a = nc.tensor(m)
    a.add_(a.t())
    np.testing.assert_array_equal(a.numpy(), m + m.T)
    a.add_(a)  # the same elements
    a[0] = a[1]  # disjoint elements of one storage
    np.testing.assert_array_equal(a.numpy()[0], a.numpy()[1])


def test_gradient_through_view_taken_before_inplace_on_base():
    torch = require_torch()
    a = nc.ones(3, requires_grad=True)
    b = a * 1
    v = b[0:2]
    b.mul_(2)
    with pytest.raises(RuntimeError, match=r"view .* before an in-place operation"):
        v.sum().backward()
    with pytest.raises(RuntimeError, match=r"view .* before an in-place operation"):
        (v * 3).sum()
    # Taken again after the in-place op, the view gives PyTorch's gradient.
    v = b[0:2]
    v.sum().backward()
    ta = torch.ones(3, requires_grad=True)
    tb = ta * 1
    tb.mul_(2)
    tb[0:2].sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())
    # A view of a base modified under no_grad (an optimizer step) stays usable, as in PyTorch.
    w = nc.ones(3, requires_grad=True)
    wt = w[0:2]
    with nc.no_grad():
        w.mul_(2)
    (wt * 1).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1, 1, 0])


# --- indices -----------------------------------------------------------------------------------------

def test_one_hot_and_gather_reject_bad_indices():
    with pytest.raises(RuntimeError, match=r"\[one_hot\] class values must be non-negative, got -1"):
        F.one_hot(nc.tensor([-1, 0]), 3)
    with pytest.raises(RuntimeError, match=r"\[one_hot\] class values must be smaller than num_classes \(3\), got 5"):
        F.one_hot(nc.tensor([5, 0]), 3)
    with pytest.raises(ValueError, match=r"\[one_hot\] num_classes"):
        F.one_hot(nc.tensor([0]), -2)
    np.testing.assert_array_equal(F.one_hot(nc.tensor([2, 0]), -1).numpy(), [[0, 0, 1], [1, 0, 0]])
    for idx in ([-1], [3]):
        with pytest.raises(IndexError, match=rf"\[gather\] index {idx[0]} is out of bounds"):
            nc.gather(nc.arange(3.0), 0, nc.tensor(idx))
        with pytest.raises(IndexError, match=r"\[scatter_add\]"):
            nc.scatter_add(nc.zeros(3), 0, nc.tensor(idx), nc.ones(1))


def test_index_select_and_chunk_shapes_match_torch():
    torch = require_torch()
    cases = [((), [0]), ((), 0), ((0, 3), []), ((2, 3), []), ((4,), [3, 0, 3])]
    for shape, idx in cases:
        x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
        ours = nc.index_select(nc.tensor(x), 0 if len(shape) != 2 or idx else 1, nc.tensor(idx, dtype=nc.int64))
        ref = torch.index_select(torch.tensor(x), 0 if len(shape) != 2 or idx else 1, torch.tensor(idx, dtype=torch.long))
        assert tuple(ours.shape) == tuple(ref.shape), (shape, idx)
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    with pytest.raises(IndexError, match=r"\[index_select\] index -1"):
        nc.index_select(nc.arange(3.0), 0, nc.tensor([-1]))
    for shape, chunks, dim in [((0, 2), 3, 0), ((2, 0), 3, 1), ((5,), 3, 0), ((6,), 4, 0), ((1,), 4, 0)]:
        ours = nc.chunk(nc.zeros(*shape), chunks, dim)
        ref = torch.chunk(torch.zeros(*shape), chunks, dim)
        assert [tuple(c.shape) for c in ours] == [tuple(c.shape) for c in ref], (shape, chunks)
    with pytest.raises(RuntimeError, match=r"\[chunk\].*1-dimensional"):
        nc.chunk(nc.tensor(1.0), 2)


# --- dtypes of in-place results ------------------------------------------------------------------------

@pytest.mark.parametrize("op", [lambda t: t.sqrt_(), lambda t: t.div_(2), lambda t: t.mul_(1.5),
                                lambda t: t.exp_(), lambda t: t.clamp_(min=1.5), lambda t: t.sigmoid_()])
def test_float_inplace_on_int64_raises(op):
    t = nc.tensor([4, 9])
    with pytest.raises((RuntimeError, TypeError), match=r"result type .*float32 can't be cast to the .*int64"):
        op(t)
    np.testing.assert_array_equal(t.numpy(), [4, 9])  # untouched


def test_fill_int64_with_unrepresentable_value_raises():
    for v in (float("nan"), float("inf"), -float("inf"), 1e19):
        with pytest.raises(RuntimeError, match=r"\[fill_\] value .* cannot be converted to type int64"):
            nc.tensor([4, 9]).fill_(v)
        with pytest.raises(RuntimeError, match=r"\[full\]"):
            nc.full((2,), v, dtype=nc.int64)
    np.testing.assert_array_equal(nc.tensor([4, 9]).fill_(2.5).numpy(), [2, 2])  # PyTorch truncates finite values


def test_masked_fill_keeps_dtype():
    torch = require_torch()
    for values, fill in [([True, False], False), ([True, False], 1), ([4, 9], 2.5), ([1.5, 2.5], 7)]:
        ours = nc.tensor(values).masked_fill(nc.tensor([True, False]), fill)
        ref = torch.tensor(values).masked_fill(torch.tensor([True, False]), fill)
        assert str(ours.dtype).split(".")[1] == str(ref.dtype).split(".")[1].replace("long", "int64")
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    with pytest.raises(RuntimeError, match=r"\[masked_fill\] only supports a 0-dimensional value"):
        nc.zeros(2).masked_fill(nc.tensor([True, False]), nc.ones(2))


# --- losses, clamp, linspace, norms, optimizers, devices ------------------------------------------------

def test_bce_rejects_targets_and_inputs_outside_unit_interval():
    for x, y, what in [([0.5], [2.0], "target"), ([0.5], [-0.1], "target"), ([1.5], [1.0], "input"),
                       ([0.5], [float("nan")], "target")]:
        with pytest.raises(ValueError, match=rf"\[binary_cross_entropy\] all {what} values must be in \[0, 1\]"):
            nc.nn.BCELoss()(nc.tensor(x), nc.tensor(y))


@pytest.mark.parametrize("loss", [nc.nn.HuberLoss(), nc.nn.HuberLoss(delta=0.5), nc.nn.SmoothL1Loss(),
                                  nc.nn.SmoothL1Loss(beta=2.0)])
def test_huber_smooth_l1_gradient_at_infinite_inputs(loss):
    x = nc.tensor([math.inf, -math.inf, 0.25, 3.0], dtype=nc.float64, requires_grad=True)
    loss(x, nc.zeros(4, dtype=nc.float64)).backward()
    delta = getattr(loss, "delta", None) or getattr(loss, "beta")
    slope = 1.0 if isinstance(loss, nc.nn.SmoothL1Loss) else delta
    quad = 0.25 / (delta if isinstance(loss, nc.nn.SmoothL1Loss) else 1.0)
    lin3 = slope if 3.0 >= delta else 3.0 / (delta if isinstance(loss, nc.nn.SmoothL1Loss) else 1.0)
    # d/dx of the mean: the linear branch's slope (sign of x) at +-inf, the quadratic's at 0.25.
    np.testing.assert_allclose(x.grad.numpy(), np.array([slope, -slope, quad, lin3]) / 4)


def test_clamp_nan_bound_propagates():
    x = nc.tensor([1.0, 2.0])
    for kw in ({"min": math.nan}, {"max": math.nan}, {"min": 0.0, "max": math.nan}):
        assert np.isnan(nc.clamp(x, **kw).numpy()).all(), kw
    assert np.isnan(nc.clamp(x, min=nc.tensor(math.nan)).numpy()).all()


def test_linspace_single_step_is_start():
    for end in (math.inf, -math.inf, math.nan, 5.0):
        np.testing.assert_array_equal(nc.linspace(1, end, 1).numpy(), [1.0])
    assert nc.linspace(1, 2, 0).shape == (0,)


def test_batchnorm_negative_eps_raises():
    bn = nc.nn.BatchNorm1d(2, eps=-1)
    with pytest.raises(ValueError, match=r"\[batch_norm\] eps must be positive during training, but got -1"):
        bn(nc.zeros(3, 2))
    bn.eval()
    with pytest.raises(ValueError, match=r"\[batch_norm\] eps must be non-negative"):
        bn(nc.zeros(3, 2))


@pytest.mark.parametrize("step", [-1, -1.0, 1.5, math.inf, math.nan])
def test_optimizer_load_state_dict_rejects_bad_step(step):
    p = nc.nn.Parameter(nc.zeros(2))
    opt = nc.optim.Adam([p])
    p.grad = nc.ones(2)
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["step"] = nc.tensor(float(step))
    with pytest.raises(ValueError, match=r"\[load_state_dict\] optimizer state 'step' must be a non-negative integer"):
        nc.optim.Adam([p]).load_state_dict(sd)


def test_cuda_device_raises_and_cpu_is_accepted():
    for call in [lambda: nc.zeros(2, device="cuda"), lambda: nc.tensor([1.0], device="cuda:0"),
                 lambda: nc.zeros(2).to("cuda"), lambda: nc.zeros(2).to(device="cuda"), lambda: nc.zeros(2).cuda(),
                 lambda: nc.randn(2, device="mps"), lambda: nc.nn.Linear(2, 2, device="cuda"),
                 lambda: nc.arange(3, device="cuda"), lambda: nc.zeros_like(nc.zeros(2), device="cuda")]:
        with pytest.raises(RuntimeError, match=r"device '.*' is not available: neurocore runs on the CPU only"):
            call()

    class FakeDevice:  # torch.device-like
        type = "cpu"

    for dev in ("cpu", "cpu:0", FakeDevice(), None):
        assert nc.zeros(2, device=dev).shape == (2,)
        assert nc.zeros(2).to(dev).shape == (2,)
    assert nc.zeros(2).to("cpu", nc.float64).dtype == nc.float64


# --- anomaly detection -------------------------------------------------------------------------------

class _Sqrt(nc.nn.Module):
    def forward(self, x):
        return x.sqrt()


class _Net(nc.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nc.nn.Sequential(nc.nn.Linear(3, 3), _Sqrt())
        self.head = nc.nn.Linear(3, 1)

    def forward(self, x):
        return self.head(self.body(x)).log()


def test_anomaly_mode_api():
    assert not nc.autograd.is_anomaly_enabled()
    with nc.autograd.detect_anomaly():
        assert nc.autograd.is_anomaly_enabled()
    assert not nc.autograd.is_anomaly_enabled()
    nc.autograd.set_detect_anomaly(True)
    try:
        assert nc.autograd.is_anomaly_enabled()
    finally:
        nc.autograd.set_detect_anomaly(False)
    assert not nc.autograd.is_anomaly_enabled()


def test_anomaly_reports_forward_op_and_module():
    nc.manual_seed(0)
    net = _Net()
    x = nc.ones(2, 3)
    with nc.no_grad():
        net.body[0].bias.fill_(100.0)
        net.head.bias.fill_(-100.0)  # log of a negative number: NaN in the top-level forward
    assert np.isnan(net(x).detach().numpy()).all()  # off: NaN flows silently
    with nc.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match=r"\[anomaly\] Function 'log' produced nan values in its 0th output "
                                               r"\(called from module '_Net \(_Net\)'\)"):
            net(x)
        with nc.no_grad():
            net.body[0].bias.fill_(-100.0)  # now sqrt of a negative number inside a submodule
        with pytest.raises(RuntimeError, match=r"Function 'sqrt' produced nan values in its 0th output "
                                               r"\(called from module '_Net\.body\.1 \(_Sqrt\)'\)"):
            net(x)
    assert not nc.autograd.is_anomaly_enabled()


def test_anomaly_reports_backward_function():
    x = nc.tensor([0.0, 1.0], requires_grad=True)
    y = x.sqrt()  # finite forward; the gradient 1 / (2 sqrt(0)) is inf
    with nc.autograd.detect_anomaly():
        z = nc.tensor([0.0, 2.0]) / nc.tensor([1.0, 1.0])
        y = (x * z).sqrt()
        with pytest.raises(RuntimeError, match=r"\[anomaly\] Function 'SqrtBackward' returned inf values in its 0th output"):
            y.sum().backward()
        a = nc.tensor([0.0], requires_grad=True)
        b = a / a.detach().clamp_min(1.0)  # fine forward; division gradient fine
        b.sum().backward()
    # Off again: the same backward just produces a non-finite gradient.
    x.grad = None
    (x * nc.tensor([0.0, 2.0])).sqrt().sum().backward()
    assert not np.isfinite(x.grad.numpy()[0])

