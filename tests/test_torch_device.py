"""Device plumbing against PyTorch: nc.device, device= on factories, .to/.cpu/.cuda on tensors and
modules, nc.cuda / nc.backends / nc.accelerator, nc.amp (autocast, GradScaler) and map_location."""
import pickle
import warnings

import numpy as np
import pytest

import neurocore as nc
from helpers import require_torch

CPU_ONLY = r"is not available: neurocore runs on the CPU only"


# --- nc.device ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [("cpu",), ("cpu:0",), ("cpu", 0), ("cpu", 3), ("cuda",), ("cuda:1",), ("mps",),
                                  ("meta",), ("xpu", 2)])
def test_device_matches_torch(args):
    torch = require_torch()
    t, n = torch.device(*args), nc.device(*args)
    assert (n.type, n.index, str(n), repr(n)) == (t.type, t.index, str(t), repr(t))
    assert nc.device(n) == n and hash(nc.device(str(t))) == hash(n)
    assert pickle.loads(pickle.dumps(n)) == n


def test_device_equality_as_torch():
    torch = require_torch()
    pairs = [("cpu", "cpu"), ("cpu", "cpu:0"), ("cpu:0", "cpu:0"), ("cpu", "cuda"), ("cuda:0", "cuda:1")]
    for a, b in pairs:
        assert (nc.device(a) == nc.device(b)) == (torch.device(a) == torch.device(b))
    assert (nc.device("cpu") == "cpu") == (torch.device("cpu") == "cpu")


@pytest.mark.parametrize("args", [("foo",), ("cpu:x",), ("cuda:-1",), ("cpu", -1), ("cpu:0", 1)])
def test_bad_device_strings_raise_like_torch(args):
    torch = require_torch()
    with pytest.raises(RuntimeError) as expected:
        torch.device(*args)
    with pytest.raises(RuntimeError) as got:
        nc.device(*args)
    if args != ("cpu:0", 1):  # PyTorch words this one differently; both refuse it
        assert str(got.value) == str(expected.value)


def test_device_context_and_default_device():
    with nc.device("cpu"):
        assert nc.zeros(2).device == nc.device("cpu")
    with pytest.raises(RuntimeError, match=CPU_ONLY):
        with nc.device("cuda"):
            pass
    nc.set_default_device("cpu")
    nc.set_default_device(None)
    assert nc.get_default_device() == nc.device("cpu")
    with pytest.raises(RuntimeError, match=CPU_ONLY):
        nc.set_default_device("cuda")


# --- factories, tensors ------------------------------------------------------------------------------

x0 = nc.zeros(2, 3)
FACTORIES = {
    "zeros": lambda d: nc.zeros(2, device=d), "ones": lambda d: nc.ones(2, device=d),
    "empty": lambda d: nc.empty(2, device=d), "full": lambda d: nc.full((2,), 1.5, device=d),
    "rand": lambda d: nc.rand(2, device=d), "randn": lambda d: nc.randn(2, device=d),
    "randint": lambda d: nc.randint(0, 5, (2,), device=d), "arange": lambda d: nc.arange(3, device=d),
    "linspace": lambda d: nc.linspace(0, 1, 3, device=d), "eye": lambda d: nc.eye(2, device=d),
    "normal": lambda d: nc.normal(0.0, 1.0, (2,), device=d), "tensor": lambda d: nc.tensor([1.0], device=d),
    "as_tensor": lambda d: nc.as_tensor([1.0], device=d), "scalar_tensor": lambda d: nc.scalar_tensor(1.0, device=d),
    "zeros_like": lambda d: nc.zeros_like(x0, device=d), "ones_like": lambda d: nc.ones_like(x0, device=d),
    "full_like": lambda d: nc.full_like(x0, 2.0, device=d), "empty_like": lambda d: nc.empty_like(x0, device=d),
    "rand_like": lambda d: nc.rand_like(x0, device=d), "randn_like": lambda d: nc.randn_like(x0, device=d),
    "randint_like": lambda d: nc.randint_like(x0, 4, device=d),
    "new_zeros": lambda d: x0.new_zeros(2, device=d), "new_ones": lambda d: x0.new_ones(2, device=d),
    "new_full": lambda d: x0.new_full((2,), 3.0, device=d), "new_empty": lambda d: x0.new_empty(2, device=d),
    "new_tensor": lambda d: x0.new_tensor([1.0], device=d),
    "Linear": lambda d: nc.nn.Linear(2, 2, device=d).weight,
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_factory_device_keyword(name):
    make = FACTORIES[name]
    for dev in (None, "cpu", "cpu:0", nc.device("cpu"), nc.device("cpu", 0)):
        assert make(dev).device == nc.device("cpu")
    for dev in ("cuda", "cuda:0", nc.device("cuda"), "mps", 0):
        with pytest.raises(RuntimeError, match=CPU_ONLY):
            make(dev)
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
        make("gpu")


def test_tensor_device_attributes_match_torch():
    torch = require_torch()
    t, n = torch.zeros(2), nc.zeros(2)
    for attr in ("is_cpu", "is_cuda", "is_xpu", "is_mps", "is_meta"):
        assert getattr(n, attr) == getattr(t, attr), attr
    assert n.device == nc.device("cpu") and repr(n.device) == repr(t.device) and str(n.device) == "cpu"
    assert n.get_device() == t.get_device() == -1
    assert n.is_pinned() is False and n.pin_memory()._is_same(n)


def test_tensor_to_forms():
    x = nc.tensor([1.0, 2.0])
    other = nc.zeros(1, dtype=nc.float64)
    for same in (x.to("cpu"), x.to(nc.device("cpu")), x.to(device="cpu"), x.cpu(), x.to(nc.float32),
                 x.to("cpu", nc.float32), x.to(x), x.to("cpu", non_blocking=True)):
        assert same._is_same(x)  # PyTorch returns self when nothing changes
    for y in (x.to(nc.float64), x.to("cpu", nc.float64), x.to(dtype=nc.float64), x.to(other),
              x.to(device="cpu", dtype=nc.float64), x.to(np.float64)):
        assert y.dtype == nc.float64 and y.tolist() == [1.0, 2.0]
    c = x.to("cpu", copy=True)
    assert not c._is_same(x) and c.tolist() == x.tolist()
    for call in (lambda: x.to("cuda"), lambda: x.to(nc.device("cuda", 0)), lambda: x.to("cuda", nc.float64),
                 lambda: x.cuda(), lambda: x.cuda(1), lambda: x.to(device="mps")):
        with pytest.raises(RuntimeError, match=CPU_ONLY):
            call()
    with pytest.raises(TypeError, match=r"\[to\] unexpected keyword"):
        x.to(devcie="cpu")


def test_module_to_and_cpu():
    torch = require_torch()
    m = nc.nn.Sequential(nc.nn.Linear(3, 2), nc.nn.BatchNorm1d(2))
    assert m.to("cpu") is m and m.cpu() is m and m.to(nc.device("cpu")) is m
    m.to("cpu", nc.float64)
    assert all(p.dtype == nc.float64 for p in m.parameters())
    m.to(nc.zeros(1))
    assert all(p.dtype == nc.float32 for p in m.parameters())
    m.to(device="cpu", dtype=nc.float64, non_blocking=True)
    assert m[1].running_mean.dtype == nc.float64 and m[1].num_batches_tracked.dtype == nc.int64
    for call in (lambda: m.to("cuda"), lambda: m.cuda(), lambda: m.to(nc.device("mps"))):
        with pytest.raises(RuntimeError, match=CPU_ONLY):
            call()
    with pytest.raises(TypeError, match="nn.Module.to only accepts floating point"):
        torch.nn.Linear(2, 2).to(torch.int64)
    with pytest.raises(TypeError, match="nn.Module.to only accepts floating point .*dtype=neurocore.int64"):
        nc.nn.Linear(2, 2).to(nc.int64)


# --- nc.cuda, nc.backends, nc.accelerator ------------------------------------------------------------

def test_cuda_module_as_torch_without_cuda():
    torch = require_torch()
    assert nc.cuda.is_available() is torch.cuda.is_available() is False
    assert nc.cuda.device_count() == torch.cuda.device_count() == 0
    nc.manual_seed(3)
    a = nc.rand(3).tolist()
    nc.manual_seed(3)
    nc.cuda.manual_seed(7)  # seeds no CUDA generator: the CPU stream is untouched, as in PyTorch
    nc.cuda.manual_seed_all(7)
    nc.cuda.synchronize()
    nc.cuda.empty_cache()
    assert nc.rand(3).tolist() == a
    for fn in (nc.cuda.current_device, nc.cuda.get_device_name, lambda: nc.cuda.set_device(0)):
        with pytest.raises(RuntimeError, match=r"\[cuda\.\w+\] CUDA is not available"):
            fn()


def test_backends_and_accelerator_as_torch():
    torch = require_torch()
    import neurocore.backends.cudnn as cudnn
    assert nc.backends.mps.is_available() is torch.backends.mps.is_available() is False
    assert nc.backends.mps.is_built() is False and nc.backends.cuda.is_built() is False
    assert cudnn.is_available() is False and cudnn.enabled is True
    assert (cudnn.benchmark, cudnn.deterministic) == (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    cudnn.benchmark, cudnn.deterministic = True, True  # code sets these; they change nothing
    nc.backends.cuda.matmul.allow_tf32 = True
    cudnn.benchmark, cudnn.deterministic = False, False
    assert nc.accelerator.is_available() is torch.accelerator.is_available() is False
    assert nc.accelerator.current_accelerator() is None and nc.accelerator.device_count() == 0
    dev = nc.device("cuda" if nc.cuda.is_available() else "mps" if nc.backends.mps.is_available() else "cpu")
    assert nc.ones(1, device=dev).device == nc.device("cpu")


# --- nc.amp ------------------------------------------------------------------------------------------

def _count_warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in caught]


def test_autocast_keeps_float32_and_disables_cuda():
    lin = nc.nn.Linear(3, 2)
    x = nc.randn(4, 3)
    with nc.autocast("cpu", dtype=nc.float32):
        assert lin(x).dtype == nc.float32
    with nc.amp.autocast("cpu", enabled=False):
        assert lin(x).dtype == nc.float32
    ctx, msgs = _count_warnings(lambda: nc.amp.autocast("cuda"))
    assert ctx._enabled is False and any("Disabling autocast" in m for m in msgs)
    _, msgs = _count_warnings(lambda: nc.cuda.amp.autocast(enabled=False))
    assert msgs == []

    @nc.autocast("cpu")
    def f(t):
        return lin(t)
    assert f(x).dtype == nc.float32 and nc.is_autocast_enabled() is False
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
        nc.autocast("gpu")


def test_cuda_grad_scaler_disables_itself_like_torch():
    torch = require_torch()
    t, t_msgs = _count_warnings(lambda: torch.amp.GradScaler("cuda"))
    n, n_msgs = _count_warnings(lambda: nc.cuda.amp.GradScaler())
    assert t.is_enabled() is n.is_enabled() is False and any("Disabling" in m for m in n_msgs)
    _, msgs = _count_warnings(lambda: nc.cuda.amp.GradScaler(enabled=False))
    assert msgs == []
    p = nc.nn.Parameter(nc.ones(3))
    opt = nc.optim.SGD([p], lr=0.1)
    loss = (p * 2).sum()
    assert n.scale(loss)._is_same(loss) and n.get_scale() == 1.0 and n.state_dict() == {}
    n.scale(loss).backward()
    n.step(opt)
    n.update()
    np.testing.assert_allclose(p.detach().numpy(), [0.8] * 3, rtol=1e-6)


def test_cpu_grad_scaler_matches_torch():
    torch = require_torch()
    w = np.array([1.0, -2.0, 0.5], np.float32)
    grads = [np.array([1.0, 2.0, 3.0], np.float32), np.array([np.inf, 1.0, 1.0], np.float32),
             np.array([0.5, 0.5, 0.5], np.float32), np.array([1.0, np.nan, 0.0], np.float32),
             np.array([2.0, 1.0, 1.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32)]
    runs = []
    for lib in (torch, nc):
        p = lib.nn.Parameter(lib.tensor(w.copy()))
        opt = lib.optim.SGD([p], lr=0.1, momentum=0.9)
        scaler = lib.amp.GradScaler("cpu", init_scale=8.0, growth_interval=2)
        trace = []
        for g in grads:
            opt.zero_grad()
            out = scaler.scale((p * lib.tensor(g)).sum())
            trace.append(float(out.item()) if np.isfinite(g).all() else None)
            out.backward()
            scaler.unscale_(opt)
            trace.append(p.grad.detach().numpy().copy())
            scaler.step(opt)
            scaler.update()
            trace += [scaler.get_scale(), p.detach().numpy().copy()]
        runs.append((trace, scaler.state_dict()))
    (t_trace, t_sd), (n_trace, n_sd) = runs
    assert t_sd == n_sd
    for a, b in zip(n_trace, t_trace):
        if a is None or b is None:
            continue
        np.testing.assert_allclose(a, b, rtol=1e-6)
    scaler = nc.amp.GradScaler("cpu")
    scaler.load_state_dict(t_sd)
    assert scaler.state_dict() == t_sd
    with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called"):
        p = nc.nn.Parameter(nc.ones(1))
        opt = nc.optim.SGD([p], lr=0.1)
        scaler.scale(p.sum()).backward()
        scaler.unscale_(opt)
        scaler.unscale_(opt)


# --- nc.load with map_location / weights_only --------------------------------------------------------

def test_load_map_location_devices(tmp_path):
    torch = require_torch()
    sd = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2, dtype=torch.float64)}
    path = tmp_path / "ckpt.pt"
    torch.save(sd, path)
    for loc in (None, "cpu", nc.device("cpu"), torch.device("cpu"), {"cpu": "cpu"}, lambda s, l: s):
        got = nc.load(path, map_location=loc, weights_only=True)
        assert got["w"].tolist() == sd["w"].tolist() and got["b"].dtype == nc.float64
    for loc in ("cuda", nc.device("cuda", 0), torch.device("mps")):
        with pytest.raises(RuntimeError, match=r"\[load\] map_location .* CPU only"):
            nc.load(path, map_location=loc)
    nc.save({"w": nc.ones(2)}, tmp_path / "n.pt")
    assert nc.load(tmp_path / "n.pt", map_location=nc.device("cpu"))["w"].tolist() == [1.0, 1.0]


# --- module paths code imports -----------------------------------------------------------------------

def test_nn_modules_paths_match_torch():
    torch = require_torch()
    import importlib
    import neurocore.nn.modules as ncm
    subs = ["activation", "batchnorm", "container", "conv", "distance", "dropout", "flatten", "linear", "loss",
            "module", "normalization", "pooling", "rnn", "sparse", "transformer", "instancenorm", "padding",
            "pixelshuffle", "upsampling"]
    for sub in subs:
        mine = importlib.import_module(f"neurocore.nn.modules.{sub}")
        theirs = importlib.import_module(f"torch.nn.modules.{sub}")
        for name in mine.__all__:
            assert hasattr(theirs, name), f"torch.nn.modules.{sub} has no {name}"
            assert getattr(mine, name) is getattr(nc.nn, name) is getattr(ncm, name)
    from neurocore.nn.modules.loss import _Loss, _WeightedLoss  # noqa: F401 - base classes custom losses use
    from neurocore.nn.modules.batchnorm import _BatchNorm  # noqa: F401
    from neurocore.nn.parallel import DataParallel, DistributedDataParallel  # noqa: F401
    from neurocore.utils.data.dataloader import DataLoader, default_collate  # noqa: F401
    from neurocore.utils.data.distributed import DistributedSampler  # noqa: F401
    import neurocore.onnx  # noqa: F401


def test_data_parallel_is_a_pass_through():
    torch = require_torch()
    lin = nc.nn.Linear(3, 2)
    dp = nc.nn.DataParallel(lin)
    x = nc.randn(4, 3)
    assert dp(x).tolist() == lin(x).tolist() == nc.nn.parallel.data_parallel(lin, x, [-1]).tolist()
    t = torch.nn.DataParallel(torch.nn.Linear(3, 2))
    assert list(dp.state_dict()) == list(t.state_dict()) == ["module.weight", "module.bias"]
    with pytest.raises(RuntimeError, match="CPU only"):
        nc.nn.parallel.DataParallel(lin, device_ids=[0])
