"""state_dict / load_state_dict: PyTorch's keys, layouts and errors, weights moving both ways."""
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from helpers import require_torch, rand, assert_close
from test_nn import build, build_tower, _keras_mlp, _mlp


def _cnn_classifier(lib):
    """The classifier half of the guide's SimpleCNN (the part made of Linear/activation layers)."""
    return lib.nn.Sequential(lib.nn.Flatten(), lib.nn.Linear(64, 32), lib.nn.ReLU(), lib.nn.Linear(32, 10))


MODELS = [build, _mlp, _cnn_classifier]


@pytest.mark.torch
@pytest.mark.parametrize("factory", MODELS)
def test_state_dict_keys_and_shapes_match_torch(factory):
    torch = require_torch()
    ours, theirs = factory(nc), factory(torch)
    sd_n, sd_t = ours.state_dict(), theirs.state_dict()
    assert isinstance(sd_n, OrderedDict)
    assert list(sd_n) == list(sd_t)
    for k in sd_t:
        assert tuple(sd_n[k].shape) == tuple(sd_t[k].shape), k
        assert not sd_n[k].requires_grad and not isinstance(sd_n[k], nn.Parameter)


def test_state_dict_values_share_memory_and_keep_vars():
    lin = nn.Linear(3, 2)
    sd = lin.state_dict()
    with nc.no_grad():
        lin.weight.fill_(1.5)
    np.testing.assert_array_equal(sd["weight"].numpy(), 1.5)
    kept = lin.state_dict(keep_vars=True)
    assert kept["weight"] is lin.weight and kept["weight"].requires_grad
    prefixed = lin.state_dict(prefix="enc.")
    assert list(prefixed) == ["enc.weight", "enc.bias"]


@pytest.mark.torch
@pytest.mark.parametrize("factory,in_shape", [(build, (5, 4)), (_mlp, (8, 784)), (_cnn_classifier, (3, 4, 4, 4))])
def test_weights_move_torch_to_neurocore_and_back(factory, in_shape):
    torch = require_torch()
    ours, theirs = factory(nc), factory(torch)
    with torch.no_grad():  # non-trivial buffers too
        for b in theirs.buffers():
            b.uniform_(-1, 1)
    result = ours.load_state_dict(theirs.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    ours.eval()
    theirs.eval()
    x = rand(in_shape, np.float32, seed=2)
    assert_close(ours(nc.tensor(x)), theirs(torch.tensor(x)), what="torch -> nc", rtol=1e-5, atol=1e-6)

    # Back: perturb ours, load into a fresh torch model (tensors converted by the caller).
    with nc.no_grad():
        for p in ours.parameters():
            p.mul_(0.5)
    fresh = factory(torch)
    fresh.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    fresh.eval()
    assert_close(ours(nc.tensor(x)), fresh(torch.tensor(x)), what="nc -> torch", rtol=1e-5, atol=1e-6)


def test_load_copies_in_place_so_parameter_identity_is_kept():
    lin = nn.Linear(3, 2)
    w_before = lin.weight
    new = {"weight": np.arange(6, dtype=np.float32).reshape(2, 3), "bias": nc.tensor([1.0, -1.0])}
    lin.load_state_dict(new)
    assert lin.weight is w_before and lin.weight.requires_grad and lin.weight.is_leaf
    np.testing.assert_array_equal(lin.weight.detach().numpy(), new["weight"])
    np.testing.assert_array_equal(lin.bias.detach().numpy(), [1.0, -1.0])
    # The loaded weights are used by forward and backward still reaches the same parameter.
    lin(nc.ones(1, 3)).sum().backward()
    np.testing.assert_array_equal(w_before.grad.numpy(), np.ones((2, 3), np.float32))


def test_load_converts_dtype_and_accepts_float64_arrays():
    lin = nn.Linear(2, 2)
    lin.load_state_dict({"weight": np.eye(2), "bias": np.zeros(2)})
    assert lin.weight.dtype == nc.float32
    np.testing.assert_array_equal(lin.weight.detach().numpy(), np.eye(2, dtype=np.float32))


def test_strict_errors_list_missing_unexpected_and_size_mismatches():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    sd = model.state_dict()
    bad = OrderedDict(sd)
    del bad["2.bias"]
    bad["2.extra"] = nc.zeros(1)
    bad["5.weight"] = nc.zeros(1)
    with pytest.raises(RuntimeError) as err:
        model.load_state_dict(bad)
    msg = str(err.value)
    assert msg.startswith("Error(s) in loading state_dict for Sequential:\n\t")
    assert 'Missing key(s) in state_dict: "2.bias". ' in msg
    assert 'Unexpected key(s) in state_dict: "5.weight", "2.extra". ' in msg
    result = model.load_state_dict(bad, strict=False)
    # The root module reports its own unexpected keys before its children's, as PyTorch does.
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == ["5.weight", "2.extra"]
    assert repr(result) == "_IncompatibleKeys(missing_keys=['2.bias'], unexpected_keys=['5.weight', '2.extra'])"

    wrong = OrderedDict(sd)
    wrong["0.weight"] = nc.zeros(2, 4)
    with pytest.raises(RuntimeError, match=r"size mismatch for 0\.weight: copying a param with shape "
                                           r"neurocore\.Size\(\[2, 4\]\) from checkpoint, the shape in current "
                                           r"model is neurocore\.Size\(\[2, 3\]\)\."):
        model.load_state_dict(wrong, strict=False)
    with pytest.raises(RuntimeError, match="expected a Tensor"):
        model.load_state_dict({**sd, "0.bias": "nope"})
    with pytest.raises(TypeError, match="dict-like"):
        model.load_state_dict([1, 2])


@pytest.mark.torch
def test_error_messages_match_torch():
    torch = require_torch()
    ours, theirs = build(nc), build(torch)
    sd_t = theirs.state_dict()
    del sd_t["head.out.weight"]
    sd_t["blocks.0.fc.extra"] = torch.zeros(1)
    sd_t["stem.weight"] = torch.zeros(5, 3)
    with pytest.raises(RuntimeError) as err_t:
        theirs.load_state_dict(sd_t)
    with pytest.raises(RuntimeError) as err_n:
        ours.load_state_dict(sd_t)
    assert str(err_n.value) == str(err_t.value).replace("torch.Size", "neurocore.Size")


def test_non_persistent_buffers_and_none_entries_are_skipped():
    m = nn.Module()
    m.register_buffer("keep", nc.ones(2))
    m.register_buffer("temp", nc.ones(2), persistent=False)
    m.register_buffer("unset", None)
    m.register_parameter("bias", None)
    assert list(m.state_dict()) == ["keep"]
    m.load_state_dict({"keep": nc.zeros(2)})
    np.testing.assert_array_equal(m.keep.numpy(), 0.0)
    with pytest.raises(RuntimeError, match='Unexpected key.*"temp"'):
        m.load_state_dict({"keep": nc.zeros(2), "temp": nc.zeros(2)})


def test_assign_replaces_parameters():
    lin = nn.Linear(2, 2)
    old = lin.weight
    lin.load_state_dict({"weight": nc.ones(2, 2), "bias": nc.zeros(2)}, assign=True)
    assert lin.weight is not old and isinstance(lin.weight, nn.Parameter) and lin.weight.requires_grad
    np.testing.assert_array_equal(lin.weight.detach().numpy(), 1.0)


def test_custom_load_from_state_dict_override_is_used():
    class Renamed(nn.Linear):
        def _load_from_state_dict(self, state_dict, prefix, *args):
            if prefix + "w" in state_dict:  # accept an old key name
                state_dict[prefix + "weight"] = state_dict.pop(prefix + "w")
            super()._load_from_state_dict(state_dict, prefix, *args)

    model = nn.Sequential(Renamed(2, 2))
    model.load_state_dict({"0.w": nc.ones(2, 2), "0.bias": nc.zeros(2)})
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), 1.0)


def test_state_dict_round_trip_after_double():
    model = build(nc).double()
    fresh = build(nc)
    fresh.load_state_dict(model.state_dict())
    for (k, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, err_msg=k)
        assert b.dtype == nc.float32


def test_pickle_state_dict_and_parameters():
    lin = nn.Linear(3, 2)
    p = pickle.loads(pickle.dumps(lin.weight))
    assert isinstance(p, nn.Parameter) and p.requires_grad
    np.testing.assert_array_equal(p.detach().numpy(), lin.weight.detach().numpy())


# --- brief coverage ---------------------------------------------------------------------------------

@pytest.mark.torch
@pytest.mark.parametrize("factory", [build_tower, _keras_mlp])
def test_state_dict_interop_both_ways_identical_outputs(factory):
    torch = require_torch()
    theirs, ours = factory(torch), factory(nc)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    ours.eval()
    theirs.eval()
    x = rand((6, 4 if factory is build_tower else 784), np.float32, seed=81)
    assert_close(ours(nc.tensor(x)), theirs(torch.tensor(x)), what="torch -> nc", rtol=1e-5, atol=1e-6)

    nc.manual_seed(3)
    other = factory(nc)  # fresh weights, exported to a fresh torch model
    other.eval()
    back = factory(torch)
    result = back.load_state_dict({k: torch.tensor(v.numpy()) for k, v in other.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    back.eval()
    assert_close(other(nc.tensor(x)), back(torch.tensor(x)), what="nc -> torch", rtol=1e-5, atol=1e-6)
    for k, v in back.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), other.state_dict()[k].numpy(), err_msg=k)


def test_strict_missing_keys_error():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    sd = model.state_dict()
    del sd["0.bias"]
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "0\.bias"'):
        model.load_state_dict(sd)
    with pytest.raises(RuntimeError, match=r"Missing key\(s\)"):
        model.load_state_dict({}, strict=True)


def test_strict_unexpected_keys_error():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    sd = OrderedDict(model.state_dict())
    sd["1.weight"] = nc.zeros(2)
    sd["extra"] = nc.zeros(1)
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\) in state_dict: .*\"1\.weight\"") as err:
        model.load_state_dict(sd)
    assert '"extra"' in str(err.value) and "Missing" not in str(err.value)


def test_size_mismatch_raises_even_when_not_strict():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    sd = model.state_dict()
    sd["1.bias"] = nc.zeros(2)
    for strict in (True, False):
        with pytest.raises(RuntimeError, match="size mismatch"):
            model.load_state_dict(sd, strict=strict)


@pytest.mark.torch
def test_size_mismatch_from_torch_checkpoint():
    torch = require_torch()
    ours = nn.Linear(4, 3)
    with pytest.raises(RuntimeError, match=r"size mismatch for weight"):
        ours.load_state_dict(torch.nn.Linear(5, 3).state_dict())


def test_non_strict_returns_missing_and_unexpected():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    before = model[2].weight.detach().numpy().copy()
    sd = {"0.weight": nc.ones(2, 3), "2.scale": nc.zeros(1), "9.bias": nc.zeros(1)}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert sorted(missing) == ["0.bias", "2.bias", "2.weight"]
    assert sorted(unexpected) == ["2.scale", "9.bias"]
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), 1.0)  # present keys are still loaded
    np.testing.assert_array_equal(model[2].weight.detach().numpy(), before)
    result = model.load_state_dict(model.state_dict(), strict=False)
    assert tuple(result) == ([], [])


@pytest.mark.torch
def test_optimizer_built_before_load_updates_loaded_parameters():
    torch = require_torch()
    from neurocore import optim
    theirs = _keras_mlp(torch).eval()
    ours = _keras_mlp(nc).eval()
    params_before = list(ours.parameters())
    opt = optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    t_opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    ours.load_state_dict(theirs.state_dict())
    assert all(a is b for a, b in zip(params_before, ours.parameters()))
    assert all(p.requires_grad and p.is_leaf for p in ours.parameters())
    x = rand((8, 784), np.float32, seed=91)
    y = np.random.default_rng(92).integers(0, 10, size=8)
    for _ in range(2):
        opt.zero_grad()
        t_opt.zero_grad()
        nn.CrossEntropyLoss()(ours(nc.tensor(x)), nc.tensor(y)).backward()
        torch.nn.CrossEntropyLoss()(theirs(torch.tensor(x)), torch.tensor(y)).backward()
        opt.step()
        t_opt.step()
    for (name, pn), (_, pt) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert_close(pn, pt, what=name, rtol=1e-5, atol=1e-6)


def test_save_load_state_dict_round_trip(tmp_path):
    model = build_tower(nc)
    nn.init.uniform_(model.mean, -1.0, 1.0)  # a non-trivial buffer
    path = tmp_path / "model.pt"
    nc.save(model.state_dict(), path)
    loaded = nc.load(path)
    assert isinstance(loaded, OrderedDict) and list(loaded) == list(model.state_dict())
    for k, v in model.state_dict().items():
        assert isinstance(loaded[k], nc.Tensor) and loaded[k].dtype == v.dtype
        np.testing.assert_array_equal(loaded[k].numpy(), v.numpy(), err_msg=k)
    fresh = build_tower(nc)
    fresh.load_state_dict(loaded)
    model.eval()
    fresh.eval()
    x = nc.randn(3, 4)
    np.testing.assert_array_equal(fresh(x).detach().numpy(), model(x).detach().numpy())
    nc.save(model.state_dict(), str(tmp_path / "again.pt"))  # str paths and file objects work too
    with open(tmp_path / "again.pt", "rb") as fh:
        assert list(nc.load(fh)) == list(loaded)


@pytest.mark.torch
def test_saved_state_dict_loads_into_torch(tmp_path):
    torch = require_torch()
    ours = _keras_mlp(nc).eval()
    nc.save(ours.state_dict(), tmp_path / "w.pt")
    theirs = _keras_mlp(torch).eval()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in nc.load(tmp_path / "w.pt").items()})
    x = rand((4, 784), np.float32, seed=93)
    assert_close(ours(nc.tensor(x)), theirs(torch.tensor(x)), rtol=1e-5, atol=1e-6)
