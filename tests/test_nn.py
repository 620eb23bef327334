"""nn.Module machinery, containers, layers, activations, losses and init against PyTorch."""
import copy
import math
from collections import OrderedDict

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from neurocore.nn import functional as F
from helpers import require_torch, rand, assert_close

TOL32 = dict(rtol=1e-5, atol=1e-6)


def build(lib):
    """The same nested model in neurocore and in PyTorch (`lib` is neurocore or torch)."""
    class Block(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = lib.nn.Linear(5, 6)
            self.act = lib.nn.Tanh()
            self.register_buffer("running", lib.zeros(6))
            self.register_buffer("scratch", lib.ones(2), persistent=False)

        def forward(self, x):
            return self.act(self.fc(x)) + self.running

    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = lib.nn.Linear(4, 5, bias=False)
            self.blocks = lib.nn.ModuleList([Block(), Block()])
            self.head = lib.nn.Sequential(OrderedDict([("drop", lib.nn.Dropout(0.1)),
                                                       ("out", lib.nn.Linear(6, 3))]))
            self.scale = lib.nn.Parameter(lib.ones(3))

        def forward(self, x):
            x = self.stem(x)
            x = self.blocks[0](x)
            return self.head(x) * self.scale

    return Net()


# --- Parameter -------------------------------------------------------------------------------------

def test_parameter_is_a_leaf_tensor_that_accumulates_grad():
    p = nn.Parameter(nc.tensor([1.0, 2.0, 3.0]))
    assert isinstance(p, nc.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf
    y = p * 2
    assert type(y) is nc.Tensor
    y.sum().backward()
    (p * p).sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), [4.0, 6.0, 8.0])
    assert not nn.Parameter(nc.zeros(2), requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)


def test_parameter_shares_storage_with_its_data():
    t = nc.zeros(3)
    p = nn.Parameter(t)
    with nc.no_grad():
        p.add_(1.0)
    np.testing.assert_allclose(t.numpy(), [1.0, 1.0, 1.0])


def test_parameter_repr_matches_torch():
    torch = require_torch()
    p = nn.Parameter(nc.tensor([[1.5, -2.0], [0.25, 3.0]]))
    expected = repr(torch.nn.Parameter(torch.tensor([[1.5, -2.0], [0.25, 3.0]])))
    assert repr(p) == expected


def test_parameter_rejects_non_tensors_and_integer_grad():
    with pytest.raises(TypeError, match=r"\[Parameter\]"):
        nn.Parameter([1.0, 2.0])
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(nc.tensor([1, 2]))
    assert not nn.Parameter(nc.tensor([1, 2]), requires_grad=False).requires_grad


def test_parameter_deepcopy_is_independent():
    p = nn.Parameter(nc.tensor([1.0, 2.0]))
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q.requires_grad
    with nc.no_grad():
        q.mul_(3.0)
    np.testing.assert_allclose(p.detach().numpy(), [1.0, 2.0])


# --- registration and traversal ------------------------------------------------------------------

@pytest.mark.torch
def test_named_parameters_buffers_modules_match_torch():
    torch = require_torch()
    ours, theirs = build(nc), build(torch)

    def shapes(items):
        return [(n, tuple(t.shape)) for n, t in items]

    assert shapes(ours.named_parameters()) == shapes(theirs.named_parameters())
    assert shapes(ours.named_buffers()) == shapes(theirs.named_buffers())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert shapes(ours.named_parameters(prefix="model", recurse=True)) == \
        shapes(theirs.named_parameters(prefix="model"))
    assert shapes(ours.named_parameters(recurse=False)) == shapes(theirs.named_parameters(recurse=False))
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))
    assert len(list(ours.modules())) == len(list(theirs.modules()))


def test_shared_parameters_and_modules_appear_once():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(model.named_parameters(remove_duplicate=False))) == 4
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_setattr_registers_and_reassignment_moves_between_kinds():
    m = nn.Module()
    m.w = nn.Parameter(nc.zeros(2))
    m.sub = nn.Linear(2, 2)
    m.plain = nc.zeros(1)  # a plain tensor attribute is not registered (as in PyTorch)
    m.register_buffer("buf", nc.ones(2))
    assert list(m._parameters) == ["w"] and list(m._modules) == ["sub"] and list(m._buffers) == ["buf"]
    assert "plain" not in m.state_dict()
    m.buf = nc.zeros(2)  # assigning a tensor to a buffer name replaces the buffer
    np.testing.assert_allclose(m.buf.numpy(), [0.0, 0.0])
    m.w = None
    assert m.w is None and "w" not in m.state_dict()
    with pytest.raises(TypeError, match="cannot assign"):
        m.sub = nc.zeros(2)
    with pytest.raises(TypeError, match="cannot assign"):
        m.w = nc.zeros(2)
    m.b2 = nn.Buffer(nc.ones(3), persistent=False)
    assert "b2" in m._buffers and "b2" not in m.state_dict() and type(m.b2) is nc.Tensor
    del m.sub
    assert "sub" not in m._modules
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        m.missing


def test_registration_errors():
    m = nn.Module()
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", nn.Parameter(nc.zeros(1)))
    with pytest.raises(KeyError, match="empty"):
        m.register_buffer("", nc.zeros(1))
    with pytest.raises(TypeError, match="parameter 'p'"):
        m.register_parameter("p", nc.zeros(1))
    with pytest.raises(TypeError, match="buffer 'b'"):
        m.register_buffer("b", [1.0])
    m.x = 1
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("x", nc.zeros(1))
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("c", 3)

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(nc.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


def test_get_submodule_and_parameter():
    model = build(nc)
    assert model.get_submodule("blocks.1.fc") is model.blocks[1].fc
    assert model.get_parameter("head.out.bias") is model.head.out.bias
    with pytest.raises(AttributeError):
        model.get_submodule("blocks.7")


def test_train_eval_propagate_and_dropout_eval_is_identity():
    model = build(nc)
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    x = nc.randn(8, 6)
    drop = model.head.drop
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())
    model.train()
    assert all(m.training for m in model.modules())
    nc.manual_seed(0)
    y = nn.Dropout(0.5)(nc.ones(1000)).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 300 < (y == 0).sum() < 700
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="boolean"):
        model.train("yes")


def test_zero_grad_and_requires_grad():
    model = nn.Linear(3, 2)
    model(nc.randn(4, 3)).sum().backward()
    assert model.weight.grad is not None
    model.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(model.weight.grad.numpy(), np.zeros((2, 3), np.float32))
    model.zero_grad()
    assert model.weight.grad is None and model.bias.grad is None
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())


def test_apply_and_hooks():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)))
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "Linear", "Sequential", "Sequential"]

    def double_output(module, args, output):
        return output * 2

    x = nc.randn(3, 2)
    base = model(x).detach().numpy()
    handle = model.register_forward_hook(double_output)
    np.testing.assert_allclose(model(x).detach().numpy(), 2 * base, rtol=1e-6)
    handle.remove()
    pre = model.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    np.testing.assert_allclose(model(x).detach().numpy(), model(nc.zeros(3, 2)).detach().numpy())
    pre.remove()
    np.testing.assert_allclose(model(x).detach().numpy(), base)


def test_dtype_conversion():
    model = build(nc)
    model.double()
    assert all(p.dtype == nc.float64 for p in model.parameters())
    assert all(isinstance(p, nn.Parameter) for p in model.parameters())
    assert all(b.dtype == nc.float64 for b in model.buffers())
    assert model(nc.randn(2, 4, dtype=nc.float64)).dtype == nc.float64
    assert model.to(nc.float32) is model and model.stem.weight.dtype == nc.float32
    assert model.to("cpu") is model and model.cpu() is model
    model.to(nc.zeros(1, dtype=nc.float64))
    assert model.stem.weight.dtype == nc.float64
    model.float()
    assert model.stem.weight.dtype == nc.float32
    with pytest.raises(TypeError, match="floating point"):
        model.to(nc.int64)
    with pytest.raises(RuntimeError, match="CPU"):
        model.to("cuda")
    lin = nn.Linear(2, 3, dtype=nc.float64)
    assert lin.weight.dtype == nc.float64 and lin.bias.dtype == nc.float64


def test_module_deepcopy():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    clone = copy.deepcopy(model)
    with nc.no_grad():
        clone[0].weight.fill_(0.0)
    assert np.abs(model[0].weight.detach().numpy()).sum() > 0
    assert clone[0].weight is not model[0].weight and isinstance(clone[0].weight, nn.Parameter)


# --- containers ----------------------------------------------------------------------------------

def test_sequential_indexing_slicing_and_mutation():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and list(seq) == layers
    assert seq[0] is layers[0] and seq[-1] is layers[2]
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == layers[1:] and list(sub._modules) == ["1", "2"]
    with pytest.raises(IndexError):
        seq[3]
    seq.append(nn.Sigmoid())
    assert list(seq._modules) == ["0", "1", "2", "3"]
    del seq[1]
    assert list(seq._modules) == ["0", "1", "2"] and seq[1] is layers[2]
    seq.insert(1, nn.Tanh())
    assert isinstance(seq[1], nn.Tanh) and len(seq) == 4
    seq[0] = nn.Linear(2, 3)
    assert seq[0] is not layers[0]
    named = nn.Sequential(OrderedDict([("a", nn.Linear(2, 2)), ("b", nn.ReLU())]))
    assert list(named._modules) == ["a", "b"] and named.a is named[0]
    assert len(nn.Sequential(nn.ReLU()) + nn.Sequential(nn.Tanh())) == 2


def test_module_list_and_dict():
    ml = nn.ModuleList([nn.Linear(1, 1)])
    ml.append(nn.ReLU())
    ml.extend([nn.Tanh(), nn.Sigmoid()])
    ml.insert(0, nn.Identity())
    assert [type(m).__name__ for m in ml] == ["Identity", "Linear", "ReLU", "Tanh", "Sigmoid"]
    assert len(ml) == 5 and isinstance(ml[-1], nn.Sigmoid) and len(ml[1:3]) == 2
    del ml[0]
    assert list(ml._modules) == ["0", "1", "2", "3"] and isinstance(ml[0], nn.Linear)
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias"]
    with pytest.raises(IndexError):
        ml[10]
    popped = ml.pop(1)
    assert isinstance(popped, nn.ReLU) and list(ml._modules) == ["0", "1", "2"]
    both = ml + nn.ModuleList([nn.ReLU()])
    assert isinstance(both, nn.ModuleList) and len(both) == 4
    with pytest.raises(TypeError, match="iterable"):
        ml.extend(nn.ReLU())
    md = nn.ModuleDict({"enc": nn.Linear(2, 2), "act": nn.ReLU()})
    md["dec"] = nn.Linear(2, 1)
    assert list(md.keys()) == ["enc", "act", "dec"] and "act" in md and len(md) == 3
    assert [n for n, _ in md.named_parameters()] == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    md.pop("act")
    assert list(md) == ["enc", "dec"]
    pl = nn.ParameterList([nn.Parameter(nc.zeros(2)), nc.ones(3)])
    assert len(pl) == 2 and all(isinstance(p, nn.Parameter) for p in pl)
    assert [n for n, _ in pl.named_parameters()] == ["0", "1"]


# --- repr ----------------------------------------------------------------------------------------

def _torch_models(lib):
    nn_ = lib.nn
    return [
        nn_.Sequential(nn_.Linear(784, 128), nn_.ReLU(), nn_.Dropout(0.2), nn_.Linear(128, 64), nn_.ReLU(),
                       nn_.Dropout(0.2), nn_.Linear(64, 10), nn_.Softmax(dim=1)),
        nn_.Sequential(nn_.Flatten(), nn_.Linear(12, 8, bias=False), nn_.LeakyReLU(0.2, inplace=True),
                       nn_.ELU(alpha=0.5), nn_.GELU(approximate="tanh"), nn_.GELU(), nn_.SELU(), nn_.SiLU(),
                       nn_.Softplus(beta=2.0), nn_.Hardtanh(-2.0, 2.0), nn_.ReLU6(), nn_.ReLU(inplace=True),
                       nn_.Sigmoid(), nn_.Tanh(), nn_.LogSoftmax(dim=-1), nn_.Identity(),
                       nn_.Unflatten(1, (2, 4)), nn_.Dropout(p=0.5, inplace=True)),
        nn_.ModuleList([nn_.Linear(3, 3), nn_.Linear(3, 3), nn_.ReLU(), nn_.Linear(3, 3)]),
        nn_.ModuleDict({"a": nn_.Sequential(nn_.Linear(2, 2), nn_.ModuleList([nn_.Tanh(), nn_.Tanh()]))}),
        nn_.Sequential(nn_.MSELoss(), nn_.L1Loss(), nn_.CrossEntropyLoss(label_smoothing=0.1), nn_.NLLLoss(),
                       nn_.BCELoss(), nn_.BCEWithLogitsLoss(), nn_.HuberLoss(), nn_.SmoothL1Loss()),
        build(lib),
    ]


@pytest.mark.torch
def test_repr_matches_torch():
    torch = require_torch()
    for ours, theirs in zip(_torch_models(nc), _torch_models(torch)):
        expected = str(theirs)
        assert "torch" not in expected
        assert str(ours) == expected
        assert repr(ours) == expected


# --- layers --------------------------------------------------------------------------------------

def test_linear_default_init_bounds_and_distribution():
    nc.manual_seed(1)
    lin = nn.Linear(400, 300)
    w = lin.weight.detach().numpy()
    b = lin.bias.detach().numpy()
    bound = 1 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert w.shape == (300, 400) and b.shape == (300,)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert abs(w.mean()) < 0.01 * bound
    assert lin.extra_repr() == "in_features=400, out_features=300, bias=True"
    assert nn.Linear(3, 2, bias=False).bias is None


def test_linear_init_is_seeded():
    nc.manual_seed(7)
    a = nn.Linear(5, 4).weight.detach().numpy()
    nc.manual_seed(7)
    b = nn.Linear(5, 4).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 5), (2, 3, 5), (5,), (0, 5)])
def test_linear_forward_backward_vs_torch(dtype, shape):
    torch = require_torch()
    ndt = nc.float32 if dtype == np.float32 else nc.float64
    ours = nn.Linear(5, 3, dtype=ndt)
    theirs = torch.nn.Linear(5, 3, dtype=torch.float32 if dtype == np.float32 else torch.float64)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    x = rand(shape, dtype, seed=3)
    xn, xt = nc.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yn, yt = ours(xn), theirs(xt)
    tol = TOL32 if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    assert_close(yn, yt, what="output", **tol)
    g = rand(tuple(yt.shape), dtype, seed=4)
    (yn * nc.tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    assert_close(xn.grad, xt.grad, what="input grad", **tol)
    assert_close(ours.weight.grad, theirs.weight.grad, what="weight grad", **tol)
    assert_close(ours.bias.grad, theirs.bias.grad, what="bias grad", **tol)


def test_linear_bad_input():
    with pytest.raises(ValueError, match=r"\[linear\]"):
        nn.Linear(4, 2)(nc.zeros(3, 5))


@pytest.mark.torch
def test_flatten_unflatten_identity_vs_torch():
    torch = require_torch()
    x = rand((2, 3, 4, 5), np.float32)
    for args in [(), (0,), (1, 2), (2, -1), (0, -2)]:
        assert_close(nn.Flatten(*args)(nc.tensor(x)), torch.nn.Flatten(*args)(torch.tensor(x)), **TOL32)
    y = rand((2, 12, 5), np.float32)
    assert_close(nn.Unflatten(1, (3, 4))(nc.tensor(y)), torch.nn.Unflatten(1, (3, 4))(torch.tensor(y)), **TOL32)
    t = nc.tensor(x)
    assert nn.Identity(3, foo=1)(t) is t


ACTIVATIONS = [
    ("ReLU", (), {}), ("LeakyReLU", (0.2,), {}), ("ELU", (), {"alpha": 0.7}), ("GELU", (), {}),
    ("GELU", (), {"approximate": "tanh"}), ("SELU", (), {}), ("SiLU", (), {}), ("Softplus", (), {"beta": 2.0}),
    ("Hardtanh", (-0.5, 0.5), {}), ("ReLU6", (), {}), ("Sigmoid", (), {}), ("Tanh", (), {}),
    ("Softmax", (), {"dim": 1}), ("LogSoftmax", (), {"dim": -1}),
]


@pytest.mark.torch
@pytest.mark.parametrize("name,args,kwargs", ACTIVATIONS)
def test_activation_modules_vs_torch(name, args, kwargs):
    torch = require_torch()
    x = rand((4, 6), np.float32, low=-4, high=8)  # reaches ReLU6's upper clip
    xn, xt = nc.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yn, yt = getattr(nn, name)(*args, **kwargs)(xn), getattr(torch.nn, name)(*args, **kwargs)(xt)
    assert_close(yn, yt, what=name, **TOL32)
    g = rand(x.shape, np.float32, seed=9)
    (yn * nc.tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    assert_close(xn.grad, xt.grad, what=name + " grad", rtol=1e-5, atol=1e-5)


@pytest.mark.torch
@pytest.mark.parametrize("name", ["ReLU", "LeakyReLU", "ELU", "SELU", "SiLU", "Hardtanh", "ReLU6"])
def test_inplace_activation_modules(name):
    torch = require_torch()
    x = rand((3, 4), np.float32, low=-3, high=8)
    xn, xt = nc.tensor(x), torch.tensor(x)
    yn = getattr(nn, name)(inplace=True)(xn)
    getattr(torch.nn, name)(inplace=True)(xt)
    assert_close(xn, xt, what=name, **TOL32)
    assert_close(yn, xt, what=name, **TOL32)


def test_functional_namespace():
    for name in ["relu", "leaky_relu", "elu", "gelu", "selu", "silu", "softplus", "hardtanh", "relu6", "dropout",
                 "sigmoid", "tanh", "softmax", "log_softmax", "cross_entropy", "nll_loss", "mse_loss", "l1_loss",
                 "huber_loss", "smooth_l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                 "linear"]:
        assert callable(getattr(F, name)), name
    x, w, b = nc.randn(3, 4), nc.randn(2, 4), nc.randn(2)
    np.testing.assert_allclose(F.linear(x, w, b).numpy(), x.numpy() @ w.numpy().T + b.numpy(), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(F.linear(x, w).numpy(), x.numpy() @ w.numpy().T, rtol=1e-5, atol=1e-6)
    y = F.dropout(x, 0.5, training=False)
    np.testing.assert_array_equal(y.numpy(), x.numpy())


# --- losses --------------------------------------------------------------------------------------

def _loss_cases(lib, np_rng):
    logits = np_rng.normal(size=(6, 4)).astype(np.float32)
    classes = np_rng.integers(0, 4, size=6)
    classes[2] = 1
    probs = 1 / (1 + np.exp(-np_rng.normal(size=(6, 4)).astype(np.float32)))
    targets01 = (np_rng.uniform(size=(6, 4)) > 0.5).astype(np.float32)
    reg_y = np_rng.normal(size=(6, 4)).astype(np.float32) * 2
    weight = np.array([0.5, 1.0, 2.0, 1.5], np.float32)
    t = lib.tensor
    return [
        (lib.nn.MSELoss(), logits, t(reg_y)),
        (lib.nn.MSELoss(reduction="sum"), logits, t(reg_y)),
        (lib.nn.L1Loss(reduction="none"), logits, t(reg_y)),
        (lib.nn.HuberLoss(delta=0.5), logits, t(reg_y)),
        (lib.nn.SmoothL1Loss(beta=0.3), logits, t(reg_y)),
        (lib.nn.CrossEntropyLoss(), logits, t(classes)),
        (lib.nn.CrossEntropyLoss(weight=t(weight), ignore_index=1, label_smoothing=0.1), logits, t(classes)),
        (lib.nn.CrossEntropyLoss(reduction="sum"), logits, t(probs / probs.sum(1, keepdims=True))),
        (lib.nn.NLLLoss(weight=t(weight)), logits, t(classes)),
        (lib.nn.BCELoss(), probs, t(targets01)),
        (lib.nn.BCELoss(weight=t(weight)), probs, t(targets01)),
        (lib.nn.BCEWithLogitsLoss(), logits, t(targets01)),
        (lib.nn.BCEWithLogitsLoss(pos_weight=t(weight), reduction="none"), logits, t(targets01)),
    ]


@pytest.mark.torch
def test_loss_modules_vs_torch():
    torch = require_torch()
    ours = _loss_cases(nc, np.random.default_rng(0))
    theirs = _loss_cases(torch, np.random.default_rng(0))
    for (ln, x, yn), (lt, _, yt) in zip(ours, theirs):
        what = repr(lt)
        xn, xt = nc.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out_n, out_t = ln(xn, yn), lt(xt, yt)
        assert_close(out_n, out_t, what=what, rtol=1e-5, atol=1e-6)
        out_n.sum().backward()
        out_t.sum().backward()
        assert_close(xn.grad, xt.grad, what=what + " grad", rtol=1e-5, atol=1e-6)
        assert [n for n, _ in ln.named_buffers()] == [n for n, _ in lt.named_buffers()], what
        assert list(ln.state_dict()) == list(lt.state_dict()), what


# --- init ----------------------------------------------------------------------------------------

@pytest.mark.torch
def test_calculate_gain_and_fans_vs_torch():
    torch = require_torch()
    for nl, param in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                      ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)]:
        assert nn.init.calculate_gain(nl, param) == pytest.approx(torch.nn.init.calculate_gain(nl, param))
    for shape in [(3, 5), (4, 2, 3, 3), (6, 7, 2)]:
        assert nn.init._calculate_fan_in_and_fan_out(nc.zeros(*shape)) == \
            torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(*shape))
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        nn.init.calculate_gain("bogus")
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(nc.zeros(5))


def _check_uniform(arr, bound):
    assert np.abs(arr).max() <= bound * (1 + 1e-6) and np.abs(arr).max() > 0.99 * bound
    assert abs(arr.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert abs(arr.mean()) < 0.02 * bound


def _check_normal(arr, std):
    assert abs(arr.std() - std) < 0.02 * std
    assert abs(arr.mean()) < 0.02 * std


def test_init_distributions():
    nc.manual_seed(3)
    fan_in, fan_out = 500, 200
    t = nc.empty(fan_out, fan_in)
    assert nn.init.xavier_uniform_(t, gain=2.0) is t
    _check_uniform(t.numpy(), 2.0 * math.sqrt(6 / (fan_in + fan_out)))
    _check_normal(nn.init.xavier_normal_(t).numpy(), math.sqrt(2 / (fan_in + fan_out)))
    _check_uniform(nn.init.kaiming_uniform_(t, nonlinearity="relu").numpy(), math.sqrt(6 / fan_in))
    _check_uniform(nn.init.kaiming_uniform_(t, a=0.1, mode="fan_out").numpy(),
                   math.sqrt(3) * math.sqrt(2 / (1 + 0.01)) / math.sqrt(fan_out))
    _check_normal(nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu").numpy(), math.sqrt(2 / fan_out))
    _check_normal(nn.init.kaiming_normal_(t).numpy(), math.sqrt(2 / (1 + 0.0)) / math.sqrt(fan_in))
    _check_normal(nn.init.normal_(t, 0.0, 0.3).numpy(), 0.3)
    _check_uniform(nn.init.uniform_(t, -0.2, 0.2).numpy(), 0.2)
    np.testing.assert_array_equal(nn.init.constant_(t, 0.5).numpy(), np.full((fan_out, fan_in), 0.5, np.float32))
    np.testing.assert_array_equal(nn.init.zeros_(t).numpy(), 0.0)
    np.testing.assert_array_equal(nn.init.ones_(t).numpy(), 1.0)
    e = nc.empty(3, 4)
    np.testing.assert_array_equal(nn.init.eye_(e).numpy(), np.eye(3, 4, dtype=np.float32))
    with pytest.raises(ValueError, match="Mode"):
        nn.init.kaiming_uniform_(t, mode="fan_avg")


def test_init_on_parameters_records_no_history():
    lin = nn.Linear(4, 3)
    w = lin.weight
    assert nn.init.normal_(w) is w and nn.init.zeros_(lin.bias) is lin.bias
    assert w.is_leaf and w.grad_fn is None and w.requires_grad
    lin(nc.randn(2, 4)).sum().backward()
    assert w.grad is not None


# --- the seed's models -----------------------------------------------------------------------------

def _mlp(lib):
    """The guide's 784-128-64-10 classifier (its Keras sample), written as a PyTorch Module."""
    class MLP(lib.nn.Module):
        def __init__(self):
            super(MLP, self).__init__()
            self.net = lib.nn.Sequential(
                lib.nn.Linear(784, 128), lib.nn.ReLU(), lib.nn.Dropout(0.2),
                lib.nn.Linear(128, 64), lib.nn.ReLU(), lib.nn.Dropout(0.2),
                lib.nn.Linear(64, 10))

        def forward(self, x):
            return self.net(x)
    return MLP()


def _feed_forward(lib, d_model=16, d_ff=32):
    """The feed-forward half of the guide's TransformerBlock."""
    return lib.nn.Sequential(lib.nn.Linear(d_model, d_ff), lib.nn.ReLU(), lib.nn.Linear(d_ff, d_model))


@pytest.mark.torch
@pytest.mark.parametrize("factory,in_shape", [(_mlp, (32, 784)), (_feed_forward, (4, 5, 16))])
def test_seed_models_forward_backward_match_torch(factory, in_shape):
    torch = require_torch()
    ours, theirs = factory(nc), factory(torch)
    ours.load_state_dict(theirs.state_dict())
    ours.eval()
    theirs.eval()
    x = rand(in_shape, np.float32, seed=5)
    y_n, y_t = ours(nc.tensor(x)), theirs(torch.tensor(x))
    assert_close(y_n, y_t, what="logits", rtol=1e-5, atol=1e-5)
    labels = np.random.default_rng(1).integers(0, y_t.shape[-1], size=in_shape[0])
    if len(in_shape) == 2:
        loss_n = nn.CrossEntropyLoss()(y_n, nc.tensor(labels))
        loss_t = torch.nn.CrossEntropyLoss()(y_t, torch.tensor(labels))
    else:
        loss_n, loss_t = (y_n * y_n).mean(), (y_t * y_t).mean()
    assert_close(loss_n, loss_t, what="loss", rtol=1e-5, atol=1e-6)
    loss_n.backward()
    loss_t.backward()
    for (name, p_n), (_, p_t) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert_close(p_n.grad, p_t.grad, what=name, rtol=1e-4, atol=1e-6)


def test_trunc_normal_matches_truncated_normal_moments():
    nc.manual_seed(4)
    mu, s, a, b = 0.5, 1.0, -1.0, 2.0
    t = nc.empty(300, 400)
    assert nn.init.trunc_normal_(t, mu, s, a, b) is t
    arr = t.numpy()
    assert arr.min() >= a and arr.max() <= b
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: (1 + math.erf(z / math.sqrt(2))) / 2  # noqa: E731
    al, be = (a - mu) / s, (b - mu) / s
    z = cdf(be) - cdf(al)
    mean = mu + s * (pdf(al) - pdf(be)) / z
    std = s * math.sqrt(1 + (al * pdf(al) - be * pdf(be)) / z - ((pdf(al) - pdf(be)) / z) ** 2)
    assert abs(arr.mean() - mean) < 0.01 and abs(arr.std() - std) < 0.01
    with pytest.raises(ValueError, match="a < b"):
        nn.init.trunc_normal_(t, a=1.0, b=0.0)


@pytest.mark.parametrize("shape", [(30, 50), (50, 30), (12, 3, 2, 2)])
def test_orthogonal_(shape):
    t = nc.empty(*shape)
    assert nn.init.orthogonal_(t, gain=2.0) is t
    m = t.numpy().reshape(shape[0], -1)
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    np.testing.assert_allclose(gram, 4 * np.eye(gram.shape[0]), atol=1e-5)
    with pytest.raises(ValueError, match="2 or more"):
        nn.init.orthogonal_(nc.empty(3))
