"""The compiled no_grad path of Sequential (nn/_fusion.py) and the memoised conv/pool geometry:
the same values as the plain module-by-module path (bit for bit) and as PyTorch, and a model
changed after its first call (attributes reassigned, layers replaced, weights reloaded or
converted, hooks added, training mode, autograd on) behaving as a fresh one would."""
import copy
import pickle
import sys

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from neurocore.nn import _fusion
from neurocore.nn import functional as F
from helpers import require_torch, rand, assert_close


def build(spec, dtype=np.float32, seed=0):
    """(neurocore Sequential, PyTorch Sequential or None) of the same layers and weights."""
    nc.manual_seed(seed)
    layers = [getattr(nn, name)(*args, **kwargs) for name, args, kwargs in spec]
    model = nn.Sequential(*layers)
    if dtype == np.float64:
        model = model.double()
    return model


def torch_twin(model):
    """A PyTorch Sequential with the layers (and their current attributes) and weights of `model`."""
    torch = require_torch()
    tlayers = []
    for m in model:
        name = type(m).__name__
        if name in ("Conv2d", "Conv1d"):
            t = getattr(torch.nn, name)(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride,
                                        padding=m.padding, dilation=m.dilation, groups=m.groups,
                                        bias=m.bias is not None)
        elif name == "Linear":
            t = torch.nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
        elif name in ("MaxPool2d", "MaxPool1d"):
            t = getattr(torch.nn, name)(m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode)
        elif name == "AvgPool2d":
            t = torch.nn.AvgPool2d(m.kernel_size, m.stride, m.padding)
        elif name == "Flatten":
            t = torch.nn.Flatten(m.start_dim, m.end_dim)
        elif name == "Dropout":
            t = torch.nn.Dropout(m.p)
        elif name == "ReLU":
            t = torch.nn.ReLU()
        else:
            raise AssertionError(name)
        with torch.no_grad():
            for pname, p in m._parameters.items():
                if p is not None:
                    getattr(t, pname).copy_(torch.from_numpy(p.detach().numpy().copy()))
        tlayers.append(t)
    tmodel = torch.nn.Sequential(*tlayers).eval()
    if any(p.dtype == nc.float64 for p in model.parameters()):
        tmodel = tmodel.double()
    return tmodel


def plain(model, x):
    """The module-by-module path (what Sequential ran before plans), under no_grad."""
    with nc.no_grad():
        return _fusion._run_modules(tuple(model), x).numpy()


def fast(model, x):
    with nc.no_grad():
        return model(x).numpy()


def vs_torch(model, x, rtol=1e-4, atol=1e-5):
    torch = require_torch()
    with torch.no_grad():
        expected = torch_twin(model)(torch.from_numpy(x.numpy().copy())).numpy()
    assert_close(fast(model, x), expected, rtol, atol)


def check(model, x, torch=True):
    out = fast(model, x)
    assert np.array_equal(out, plain(model, x))
    assert np.array_equal(out, fast(model, x))  # the second call runs the cached plan
    if torch:
        vs_torch(model, x, *((1e-10, 1e-12) if out.dtype == np.float64 else (1e-4, 1e-5)))


CNN = [("Conv2d", (3, 8, 3), {"padding": 1}), ("ReLU", (), {}), ("MaxPool2d", (2, 2), {}),
       ("Conv2d", (8, 16, 3), {"padding": 1}), ("ReLU", (), {}), ("MaxPool2d", (2, 2), {}),
       ("Flatten", (), {}), ("Linear", (16 * 4 * 4, 32), {}), ("ReLU", (), {}), ("Linear", (32, 10), {})]
MLP = [("Linear", (20, 16), {}), ("ReLU", (), {}), ("Dropout", (0.2,), {}), ("Linear", (16, 12), {}),
       ("ReLU", (), {}), ("Dropout", (0.2,), {}), ("Linear", (12, 5), {})]


def cnn_input(batch, dtype=np.float32, channels=3, size=16, seed=1):
    shape = (channels, size, size) if batch is None else (batch, channels, size, size)
    return nc.tensor(rand(shape, dtype, seed=seed, low=-2, high=2))


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 3])
def test_cnn_and_mlp_equal_plain_path_and_torch(dtype, batch):
    check(build(CNN, dtype).eval(), cnn_input(batch, dtype))
    check(build(MLP, dtype).eval(), nc.tensor(rand((batch, 20), dtype, seed=2)))


@pytest.mark.torch
@pytest.mark.parametrize("spec,shape", [
    # strides, dilation, groups, 'valid' padding, odd channel counts, no bias, ceil_mode
    ([("Conv2d", (5, 6, 3), {"stride": 2, "padding": (1, 2), "dilation": (1, 2)}), ("ReLU", (), {}),
      ("MaxPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}),
      ("Conv2d", (6, 9, 2), {"groups": 3, "padding": "valid", "bias": False}), ("Flatten", (), {})], (2, 5, 17, 15)),
    # 'same' padding and AvgPool2d run through their modules inside the plan
    ([("Conv2d", (1, 4, (3, 5)), {"padding": "same"}), ("ReLU", (), {}), ("AvgPool2d", (2,), {}),
      ("Flatten", (1, 2), {}), ("ReLU", (), {})], (1, 1, 8, 10)),
    # Conv1d and MaxPool1d (not compiled) beside compiled layers
    ([("Conv1d", (3, 4, 3), {"padding": 1}), ("ReLU", (), {}), ("MaxPool1d", (2,), {}), ("Flatten", (), {}),
      ("Linear", (4 * 6, 5), {"bias": False}), ("ReLU", (), {}), ("Linear", (5, 3), {"bias": False})], (2, 3, 12)),
])
def test_other_layers_equal_plain_path_and_torch(spec, shape):
    check(build(spec).eval(), nc.tensor(rand(shape, np.float32, seed=3)))


@pytest.mark.torch
def test_unbatched_image_runs_the_modules():
    model = build(CNN[:6]).eval()
    check(model, cnn_input(None))
    check(model, cnn_input(2))  # the same model, now batched: a plan for rank 4


def test_python_calls_per_forward_stay_few():
    """The compiled path runs the SimpleCNN with a handful of Python frames (70 before plans)."""
    model = build(CNN).eval()
    x = cnn_input(1)
    calls = []

    def profile(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)
    with nc.no_grad():
        model(x)
        sys.setprofile(profile)
        try:
            model(x)
        finally:
            sys.setprofile(None)
    assert "forward" in calls and len(calls) <= 8, calls  # Sequential.forward, not its layers'
    assert calls.count("forward") == 1, calls


# ---- changes after the first call ---------------------------------------------------------------

@pytest.mark.torch
@pytest.mark.parametrize("change", [
    lambda m: setattr(m[0], "stride", 2),
    lambda m: setattr(m[0], "stride", (2, 1)),
    lambda m: setattr(m[0], "padding", 0),
    lambda m: setattr(m[0], "dilation", 2),
    lambda m: setattr(m[2], "kernel_size", 3),
    lambda m: setattr(m[2], "stride", 1),
    lambda m: setattr(m[2], "padding", 1),
    lambda m: setattr(m[2], "ceil_mode", True),
    lambda m: setattr(m[6], "start_dim", 0),
])
def test_attribute_assigned_after_first_call(change):
    model = build(CNN[:7]).eval()
    x = cnn_input(2, size=15)  # odd: ceil_mode changes the pooled size
    before = fast(model, x)
    change(model)
    after = fast(model, x)
    assert after.shape != before.shape or not np.array_equal(after, before)
    check(model, x)


@pytest.mark.torch
def test_direct_module_calls_follow_reassigned_geometry():
    torch = require_torch()
    conv, pool = nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2)
    x = cnn_input(1)
    conv(x), pool(x)
    conv.stride, pool.kernel_size, pool.stride = 2, 3, 1
    tconv = torch.nn.Conv2d(3, 4, 3, padding=1, stride=2)
    with torch.no_grad():
        tconv.weight.copy_(torch.from_numpy(conv.weight.detach().numpy()))
        tconv.bias.copy_(torch.from_numpy(conv.bias.detach().numpy()))
        tx = torch.from_numpy(x.numpy())
        assert_close(conv(x).detach().numpy(), tconv(tx).numpy(), 1e-4, 1e-5)
        assert np.array_equal(pool(x).numpy(), torch.nn.functional.max_pool2d(tx, 3, 1).numpy())


def test_memoised_geometry_keeps_refusing_floats():
    """1.0 == 1 and hash alike: the memo must not hand a float the answer cached for the int."""
    x, w = cnn_input(1), nc.tensor(rand((2, 3, 3, 3), np.float32))
    F.conv2d(x, w, stride=1), F.max_pool2d(x, 2)
    with pytest.raises(TypeError, match=r"\[conv2d\] stride must be an int"):
        F.conv2d(x, w, stride=1.0)
    with pytest.raises(TypeError, match=r"\[max_pool2d\] kernel_size must be an int"):
        F.max_pool2d(x, 2.0)
    model = build(CNN[:3]).eval()
    fast(model, x)
    model[2].kernel_size = 2.0
    with pytest.raises(TypeError, match=r"\[MaxPool2d\] kernel_size must be an int"), nc.no_grad():
        model(x)


def test_list_geometry_mutated_in_place_is_seen():
    model = build(CNN[:3]).eval()
    model[2].kernel_size = [2, 2]
    model[2].stride = [2, 2]
    x = cnn_input(1)
    assert fast(model, x).shape == (1, 8, 8, 8)
    model[2].kernel_size[0] = 4  # no assignment: only a layer resolved on every call sees this
    model[2].stride[1] = 1
    out = fast(model, x)
    assert out.shape == (1, 8, 7, 15)
    assert np.array_equal(out, plain(model, x))
    with nc.no_grad():
        assert np.array_equal(out, F.max_pool2d(F.relu(model[0](x)), [4, 2], [2, 1]).numpy())


@pytest.mark.torch
def test_layers_replaced_added_and_removed():
    model = build(CNN).eval()
    x = cnn_input(1)
    fast(model, x)
    model[3] = nn.Conv2d(8, 16, 3, padding=1, stride=1)
    check(model, x)
    model[4] = nn.Identity()  # no ReLU after the second convolution any more
    out = fast(model, x)
    assert np.array_equal(out, plain(model, x))
    relu, head = nn.ReLU(), nn.Linear(32, 10)  # built before the next call: adding them assigns no attribute
    fast(model, x)
    del model[4]
    check(model, x)
    model.append(relu)
    check(model, x)
    assert (fast(model, x) >= 0).all()
    model._modules["8"] = head  # the registry edited directly
    check(model, x)


@pytest.mark.torch
def test_weights_reloaded_reassigned_and_converted():
    model = build(CNN).eval()
    x = cnn_input(1)
    fast(model, x)
    other = build(CNN, seed=7)
    model.load_state_dict(other.state_dict())  # in place
    check(model, x)
    model.load_state_dict(build(CNN, seed=8).state_dict(), assign=True)  # new Parameter objects
    check(model, x)
    model[0].weight = nn.Parameter(nc.tensor(rand((8, 3, 3, 3), np.float32, seed=9)))
    check(model, x)
    with nc.no_grad():
        model[7].bias.fill_(0.5)
    check(model, x)
    model.double()
    check(model, nc.tensor(x.numpy().astype(np.float64)))


def test_requires_grad_toggled_and_autograd_still_works():
    model = build(CNN).eval()
    x = cnn_input(2)
    expected = fast(model, x)
    model.requires_grad_(False)
    assert np.array_equal(fast(model, x), expected)
    model.requires_grad_(True)
    out = model(x)  # grad enabled: every module runs, the graph is recorded
    assert out.requires_grad
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert np.array_equal(out.detach().numpy(), expected)


@pytest.mark.torch
def test_autograd_matches_torch_after_a_no_grad_call():
    torch = require_torch()
    model = build(CNN).eval()
    x = cnn_input(2, np.float64)
    model.double()
    fast(model, x)
    tmodel = torch_twin(model)
    xn = nc.tensor(x.numpy(), requires_grad=True)
    xt = torch.from_numpy(x.numpy().copy()).requires_grad_(True)
    model(xn).square().sum().backward()
    tmodel(xt).square().sum().backward()
    assert_close(xn.grad.numpy(), xt.grad.numpy(), 1e-10, 1e-12)
    for p, tp in zip(model.parameters(), tmodel.parameters()):
        assert_close(p.grad.numpy(), tp.grad.numpy(), 1e-10, 1e-12)


def test_training_mode_after_eval_calls():
    model = build(MLP).eval()
    x = nc.tensor(rand((4, 20), np.float32, seed=2))
    evaluated = fast(model, x)
    model.train()
    nc.manual_seed(3)
    dropped = fast(model, x)
    nc.manual_seed(3)
    assert np.array_equal(dropped, plain(model, x))
    assert not np.array_equal(dropped, evaluated)
    model.eval()
    assert np.array_equal(fast(model, x), evaluated)


@pytest.mark.parametrize("kind", ["forward", "pre", "relu"])
def test_hooks_added_after_first_call_fire(kind):
    model = build(CNN).eval()
    x = cnn_input(1)
    expected = fast(model, x)
    seen = []
    if kind == "forward":
        handle = model[3].register_forward_hook(lambda m, args, out: seen.append(out.shape) or out * 2)
    elif kind == "pre":
        handle = model[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].shape) or (args[0] * 0,))
    else:  # a hooked ReLU must not be fused away into the layer before it
        handle = model[8].register_forward_hook(lambda m, args, out: seen.append(out.shape))
    out = fast(model, x)
    assert len(seen) == 1
    assert np.array_equal(out, plain(model, x))  # plain() fires the hook too
    assert len(seen) == 2
    if kind != "relu":
        assert not np.array_equal(out, expected)
    handle.remove()
    assert np.array_equal(fast(model, x), expected)
    assert len(seen) == 2


def test_hooks_added_to_layers_the_plan_does_not_compile():
    """Conv1d + ReLU runs as one fused call inside the plan; a hook added later still fires."""
    model = nn.Sequential(nn.Conv1d(2, 3, 3), nn.ReLU(), nn.Flatten()).eval()
    x = nc.tensor(rand((1, 2, 8), np.float32, seed=5))
    expected = fast(model, x)
    seen = []
    model[0].register_forward_hook(lambda m, args, out: seen.append("conv"))
    model[1].register_forward_pre_hook(lambda m, args: seen.append("relu"))
    assert np.array_equal(fast(model, x), expected)
    assert seen == ["conv", "relu"]


def test_hooks_on_the_sequential_and_inplace_relu():
    model = build(CNN).eval()
    x = cnn_input(1)
    expected = fast(model, x)
    calls = []
    model.register_forward_hook(lambda m, args, out: calls.append(1))
    assert np.array_equal(fast(model, x), expected) and calls == [1]
    model[8].inplace = True
    assert np.array_equal(fast(model, x), expected)
    model.insert(0, nn.ReLU(inplace=True))  # rectifies the caller's tensor in place, as PyTorch does
    y = cnn_input(1)
    out = fast(model, y)
    assert (y.numpy() >= 0).all()
    assert np.array_equal(out, plain(model, y))


class Residual(nn.Sequential):
    def forward(self, x):
        return super().forward(x) + x


class Plain(nn.Sequential):
    pass


def test_sequential_subclasses():
    layers = [nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6)]
    x = nc.tensor(rand((2, 6), np.float32, seed=4))
    for cls in (Residual, Plain):
        model = cls(*layers).eval()
        with nc.no_grad():
            ref = _fusion._run_modules(tuple(layers), x)
            expected = (ref + x if cls is Residual else ref).numpy()
        assert np.array_equal(fast(model, x), expected)
        assert np.array_equal(fast(model, x), expected)


def test_errors_name_the_layer_and_shapes():
    model = build(CNN).eval()
    fast(model, cnn_input(1))
    for x, words in ((cnn_input(1, channels=4), ["Conv2d", "4"]), (cnn_input(1, size=12), ["Linear", "144"]),
                     (nc.tensor(rand((2, 3), np.float32)), ["Conv2d", "(2, 3)"])):
        with pytest.raises(Exception) as fast_error, nc.no_grad():
            model(x)
        with pytest.raises(Exception) as plain_error:
            plain(model, x)
        assert str(fast_error.value) == str(plain_error.value)
        for w in words:
            assert w.lower() in str(fast_error.value).lower(), str(fast_error.value)


def test_copy_and_pickle_after_a_compiled_call():
    model = build(CNN).eval()
    x = cnn_input(1)
    expected = fast(model, x)
    clone = copy.deepcopy(model)
    with nc.no_grad():
        clone[0].weight.zero_()
    assert np.array_equal(fast(model, x), expected)
    assert not np.array_equal(fast(clone, x), expected)
    restored = pickle.loads(pickle.dumps(model))
    assert np.array_equal(fast(restored, x), expected)


class Counting(nn.Module):
    """Assigns an attribute in every forward (moves the attribute version on every call)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x


def test_model_assigning_attributes_in_forward_stays_correct():
    model = build(CNN).eval()
    model.insert(3, Counting())
    x = cnn_input(1)
    expected = plain(model, x)
    for i in range(_fusion._PLAIN_CALLS * 2 + 5):
        assert np.array_equal(fast(model, x), expected)
        if i == _fusion._PLAIN_CALLS:
            # seen whether the next call is compiled or plain
            model[0].weight = nn.Parameter(nc.tensor(rand((8, 3, 3, 3), np.float32, seed=9)))
            expected = plain(model, x)
    assert model[3].calls == _fusion._PLAIN_CALLS * 2 + 5 + 2
    entry = _fusion._PLANS[id(model)]
    assert entry[1].misses >= _fusion._UNSTABLE - 1  # it noticed the plans were used once each


def _output_and_grads(model, x, one_by_one):
    """Output and gradients (input first, then parameters) of the square-sum of the model's output,
    the model called (Sequential's path) or its modules called one by one."""
    xi = nc.tensor(x, requires_grad=True)
    out = xi
    for m in (model,) if not one_by_one else model:
        out = m(out)
    out.square().sum().backward()
    grads = [xi.grad.numpy()] + [p.grad.numpy() for p in model.parameters()]
    model.zero_grad()
    return out.detach().numpy(), grads


@pytest.mark.torch
@pytest.mark.parametrize("spec,shape", [
    (CNN, (2, 3, 16, 16)),
    # padding, ceil_mode, dilation, an inplace ReLU, MaxPool1d
    ([("Conv2d", (2, 3, 3), {}), ("ReLU", (True,), {}),
      ("MaxPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True, "dilation": 1}), ("Flatten", (), {})],
     (2, 2, 9, 11)),
    ([("Conv1d", (3, 4, 3), {"padding": 1}), ("ReLU", (), {}), ("MaxPool1d", (2,), {}), ("Flatten", (), {})],
     (2, 3, 12)),
])
def test_training_relu_before_max_pool_runs_after_it(spec, shape):
    # With autograd on, Sequential pools before the ReLU (on a quarter of the elements): the output
    # and every gradient equal the module-by-module path, including windows whose values are all
    # <= 0 and a NaN, and match PyTorch.
    torch = require_torch()
    model = build(spec, np.float64)
    x = rand(shape, np.float64, seed=4, low=-2, high=1)
    x.reshape(-1)[::7] = -1.0  # windows with several equal values
    out, got = _output_and_grads(model, x, False)
    ref_out, ref = _output_and_grads(model, x, True)
    assert np.array_equal(out, ref_out)
    assert all(np.array_equal(a, b) for a, b in zip(got, ref))
    tmodel = torch_twin(model).train()
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    tmodel(tx).square().sum().backward()
    assert_close(got[0], tx.grad.numpy(), 1e-10, 1e-12)
    for g, tp in zip(got[1:], tmodel.parameters()):
        assert_close(g, tp.grad.numpy(), 1e-10, 1e-12)
    # A NaN reaches the output and the gradients the same way on both paths.
    x[0, 0, 1] = np.nan
    out, got = _output_and_grads(model, x, False)
    ref_out, ref = _output_and_grads(model, x, True)
    assert np.isnan(out).any()
    assert np.array_equal(out, ref_out, equal_nan=True)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(got, ref))


def test_training_swap_keeps_hooks_and_indices():
    # A hooked ReLU or pool, or a pool returning indices, runs in the written order.
    model = build(CNN[:3])
    seen = []
    model[1].register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
    model(cnn_input(2))
    assert seen == [(2, 8, 16, 16)]  # the ReLU saw the convolution's output, not the pooled one
    assert not _fusion._pool_first(nn.ReLU(), nn.MaxPool2d(2, return_indices=True))
    assert _fusion._pool_first(nn.ReLU(), nn.MaxPool2d(2))


def test_plan_step_given_a_non_tensor_raises_a_type_error_naming_the_layer():
    # A module the plan does not model may return anything; the compiled step after it (run in C++)
    # refuses a non-Tensor as the layer's own call would, naming the layer.
    class ToList(nn.Module):
        def forward(self, x):
            return x.tolist()

    model = nn.Sequential(nn.Linear(4, 3), ToList(), nn.Linear(3, 2))
    with nc.no_grad(), pytest.raises(TypeError, match=r"\[Linear\] expected a Tensor input, got list"):
        model(nc.randn(2, 4))
