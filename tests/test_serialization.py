"""nc.save / nc.load: round trips, the file format (safetensors-compatible, checksummed, atomic),
PyTorch interop, refusal of code in files, detection of corruption, and pickling of tensors.
The loader fuzz test is in test_serialization_fuzz.py."""
import collections
import copy
import io
import json
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from helpers import require_torch


# --- helpers ---------------------------------------------------------------------------------------

def assert_same(a, b, path="obj"):
    """Deep equality with types: containers, key order and key types, tensors (dtype, shape, values
    with NaN == NaN, requires_grad, Parameter or not), floats bit for bit."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, nc.Tensor):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), f"{path}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert a.requires_grad == b.requires_grad, path
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy(), err_msg=path)
    elif isinstance(a, dict):
        assert [(type(k), k) for k in a] == [(type(k), k) for k in b], f"{path}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
        assert getattr(a, "_metadata", None) == getattr(b, "_metadata", None), path
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b), f"{path}: {a!r} != {b!r}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def roundtrip(obj, tmp_path, name="obj.nc"):
    path = tmp_path / name
    nc.save(obj, path)
    back = nc.load(path)
    assert_same(obj, back)
    return back, path


def read_header(raw):
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), 8 + n


def write_header(header, body):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def resign(header, body):
    """What an attacker (or a bug) can do: recompute both checksums after editing the file."""
    import hashlib
    from neurocore.serialization import _header_digest
    header["__metadata__"]["sha256"] = hashlib.sha256(body).hexdigest()
    header["__metadata__"]["header_sha256"] = _header_digest(header)
    return header


def build_model():
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 4),
                         nn.LayerNorm(4))


# --- round trips ---------------------------------------------------------------------------------------

def test_save_load_roundtrip(tmp_path):
    t = nc.tensor(np.arange(6.0).reshape(2, 3))
    w = nc.tensor([1.0, 2.0], requires_grad=True)
    state = {"t": t, "w": w, "nested": [nc.tensor([1, 2, 3]), {"b": nc.tensor([True, False])}], "step": 3}
    back, _ = roundtrip(state, tmp_path)
    assert back["w"].requires_grad and back["w"].is_leaf
    assert back["nested"][0].dtype == nc.int64 and back["nested"][1]["b"].dtype == nc.bool


def test_nested_structures_numbers_and_keys_round_trip_exactly(tmp_path):
    obj = collections.OrderedDict([
        ("ints", [0, -1, 2 ** 100, -(2 ** 70)]),
        ("floats", (1.5, -0.0, float("inf"), float("-inf"), float("nan"), 1e-310, 0.1 + 0.2)),
        ("misc", [None, True, False, "", "ünïcödé ✓", "a\"b\\c\n"]),
        ("keys", {0: "int", -3: "neg", 1.5: "float", None: "none", True: "bool", ("a", 1): "tuple", "0": "str"}),
        ("deep", [[[[{"x": ((),)}]]]]),
        ("empty", [{}, [], (), collections.OrderedDict()]),
    ])
    back, _ = roundtrip(obj, tmp_path)
    assert list(back["keys"]) == [0, -3, 1.5, None, True, ("a", 1), "0"]
    assert isinstance(back, collections.OrderedDict)


@pytest.mark.parametrize("dtype", [nc.float32, nc.float64, nc.int64, nc.bool])
def test_every_dtype_shape_and_layout(dtype, tmp_path):
    base = nc.tensor(np.arange(24).reshape(2, 3, 4) % 3).to(dtype)
    obj = {"0d": nc.tensor(np.array(7)).to(dtype), "empty": nc.zeros(0, 3, dtype=dtype), "base": base,
           "transposed": base.transpose(0, 2), "sliced": base[:, 1:, ::2], "expanded": base[:1].expand(5, 3, 4)}
    back, _ = roundtrip(obj, tmp_path)
    assert back["0d"].shape == () and back["empty"].shape == (0, 3)
    assert all(v.is_contiguous() for v in back.values())  # views come back as their own data


def test_floats_keep_every_bit(tmp_path):
    special = [np.nan, -np.nan, np.inf, -np.inf, -0.0]
    x = np.array(special + [5e-324, np.finfo(np.float64).max], np.float64)
    y = np.array(special + [1e-45, np.finfo(np.float32).max], np.float32)
    back, _ = roundtrip({"x": nc.tensor(x), "y": nc.tensor(y)}, tmp_path)
    assert back["x"].numpy().tobytes() == x.tobytes() and back["y"].numpy().tobytes() == y.tobytes()


def test_nn_state_dict_round_trip_and_reload(tmp_path):
    nc.manual_seed(0)
    model = build_model()
    model(nc.randn(5, 2, 4, 4))  # running stats and num_batches_tracked (int64) move off their init
    sd = model.state_dict()
    back, _ = roundtrip(sd, tmp_path)
    assert isinstance(back, collections.OrderedDict) and back["1.num_batches_tracked"].dtype == nc.int64
    fresh = build_model()
    fresh.load_state_dict(back)
    model.eval()
    fresh.eval()
    x = nc.randn(3, 2, 4, 4)
    np.testing.assert_array_equal(fresh(x).detach().numpy(), model(x).detach().numpy())


@pytest.mark.parametrize("opt_name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01)),
                                              ("RMSprop", dict(lr=0.01, centered=True))])
def test_optimizer_state_dict_round_trip(opt_name, kwargs, tmp_path):
    nc.manual_seed(1)
    model = nn.Linear(3, 2)
    opt = getattr(nc.optim, opt_name)(model.parameters(), **kwargs)
    for _ in range(2):
        opt.zero_grad()
        model(nc.randn(4, 3)).pow(2).sum().backward()
        opt.step()
    sd = opt.state_dict()
    back, _ = roundtrip(sd, tmp_path)
    assert list(back["state"]) == [0, 1]  # int keys stay ints
    fresh = getattr(nc.optim, opt_name)(nn.Linear(3, 2).parameters(), lr=123.0)
    fresh.load_state_dict(back)
    assert fresh.param_groups[0]["lr"] == kwargs["lr"]


def test_shared_tensors_are_stored_once_and_stay_shared(tmp_path):
    p = nn.Parameter(nc.randn(3, 4))
    alias1, alias2 = p.detach(), p.detach()  # two objects over one storage (as state_dict returns)
    obj = {"p": p, "again": p, "in_list": [p], "a1": alias1, "a2": alias2, "other": nc.randn(2)}
    back, path = roundtrip(obj, tmp_path)
    header, _ = read_header(path.read_bytes())
    assert len(header) - 1 == 2  # p's data once, "other" once
    assert back["p"] is back["again"] is back["in_list"][0] and isinstance(back["p"], nn.Parameter)
    assert back["a1"] is not back["a2"]
    back["a1"].add_(1.0)  # the aliases share memory after loading, as they did before
    np.testing.assert_array_equal(back["a2"].numpy(), back["a1"].numpy())


def test_save_of_view_saves_its_own_data(tmp_path):
    base = nc.tensor(np.arange(12.0).reshape(3, 4))
    nc.save(base.t(), tmp_path / "v")
    header, start = read_header((tmp_path / "v").read_bytes())
    assert len((tmp_path / "v").read_bytes()) - start == 12 * 8  # float64, once
    np.testing.assert_array_equal(nc.load(tmp_path / "v").numpy(), base.numpy().T)


def test_file_objects_and_path_types(tmp_path):
    obj = {"a": nc.randn(3)}
    buf = io.BytesIO()
    nc.save(obj, buf)
    buf.seek(0)
    assert_same(obj, nc.load(buf))
    nc.save(obj, str(tmp_path / "s.nc"))
    with open(tmp_path / "s.nc", "rb") as fh:
        assert_same(obj, nc.load(fh))
    assert_same(obj, nc.load(tmp_path / "s.nc", mmap=True))
    with pytest.raises(ValueError, match=r"\[load\] mmap=True needs a file path"):
        nc.load(io.BytesIO(buf.getvalue()), mmap=True)


def test_unsupported_objects_raise_with_their_place(tmp_path):
    with pytest.raises(TypeError, match=r"\[save\] can't save an object of type set at obj\['a'\]\[1\]"):
        nc.save({"a": [1, {2}]}, tmp_path / "x")
    with pytest.raises(TypeError, match=r"\[save\] dict key"):
        nc.save({frozenset(): 1}, tmp_path / "x")
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match=r"contains itself"):
        nc.save(loop, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_non_leaf_tensor_saves_as_leaf_requiring_grad(tmp_path):  # as torch.save does
    x = nc.tensor([1.0, 2.0], requires_grad=True)
    nc.save(x * 2, tmp_path / "y")
    y = nc.load(tmp_path / "y")
    assert y.is_leaf and y.requires_grad
    np.testing.assert_array_equal(y.detach().numpy(), [2.0, 4.0])


# --- atomic writes -------------------------------------------------------------------------------------

def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.nc"
    nc.save({"v": nc.tensor([1.0])}, path)
    import neurocore.serialization as ser

    def crash(fd):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ser.os, "fsync", crash)
    with pytest.raises(OSError, match="simulated"):
        nc.save({"v": nc.tensor([2.0] * 1000)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(nc.load(path)["v"].numpy(), [1.0])
    assert sorted(os.listdir(tmp_path)) == ["ckpt.nc"]  # no temporary file left behind


def test_save_through_a_symlink_replaces_its_target(tmp_path):
    (tmp_path / "real.nc").write_bytes(b"old")
    (tmp_path / "link.nc").symlink_to(tmp_path / "real.nc")
    nc.save([1], tmp_path / "link.nc")
    assert (tmp_path / "link.nc").is_symlink() and nc.load(tmp_path / "real.nc") == [1]


def test_saved_file_has_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        nc.save([1], tmp_path / "p.nc")
    finally:
        os.umask(umask)
    assert os.stat(tmp_path / "p.nc").st_mode & 0o777 == 0o644


# --- the format: safetensors-compatible, versioned ------------------------------------------------------

def test_layout_is_safetensors(tmp_path):
    obj = {"w": nc.randn(2, 3), "n": nc.tensor([1, 2]), "b": nc.tensor([True]), "d": nc.randn(2, dtype=nc.float64)}
    nc.save(obj, tmp_path / "f.nc")
    raw = (tmp_path / "f.nc").read_bytes()
    header, start = read_header(raw)
    assert start % 8 == 0
    meta = header.pop("__metadata__")
    assert meta["format"] == "neurocore" and meta["format_version"] == "1" and len(meta["sha256"]) == 64
    assert {k: v["dtype"] for k, v in header.items()} == {"w": "F32", "n": "I64", "b": "BOOL", "d": "F64"}
    spans = sorted(v["data_offsets"] for v in header.values())
    assert spans[0][0] == 0 and spans[-1][1] == len(raw) - start
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # no gaps, no overlaps
    for name, entry in header.items():
        b, e = entry["data_offsets"]
        arr = np.frombuffer(raw[start + b:start + e], dtype={"F32": "<f4", "F64": "<f8", "I64": "<i8",
                                                             "BOOL": "?"}[entry["dtype"]])
        np.testing.assert_array_equal(arr.reshape(entry["shape"]), obj[name].numpy())


def test_safetensors_package_reads_our_files(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open
    nc.manual_seed(3)
    sd = build_model().state_dict()
    nc.save(sd, tmp_path / "m.safetensors")
    arrays = st.load_file(tmp_path / "m.safetensors")
    assert sorted(arrays) == sorted(sd)
    for k, v in sd.items():
        np.testing.assert_array_equal(arrays[k], v.numpy(), err_msg=k)
    with safe_open(tmp_path / "m.safetensors", framework="np") as f:
        assert f.metadata()["format"] == "neurocore"


def test_newer_format_version_is_refused(tmp_path):
    nc.save({"a": nc.zeros(2)}, tmp_path / "v.nc")
    raw = (tmp_path / "v.nc").read_bytes()
    header, start = read_header(raw)
    header["__metadata__"]["format_version"] = "2"
    (tmp_path / "v2.nc").write_bytes(write_header(resign(header, raw[start:]), raw[start:]))
    with pytest.raises(RuntimeError, match=r"\[load\] .*v2.nc: the file has format version 2, newer than"):
        nc.load(tmp_path / "v2.nc")


# --- corruption ----------------------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "c.nc"
    nc.save({"w": nc.randn(4, 4), "step": 3}, path)
    return path, path.read_bytes()


def test_flipped_bit_in_data_is_detected(saved, tmp_path):
    path, raw = saved
    _, start = read_header(raw)
    for i in (start, start + 17, len(raw) - 1):
        bad = bytearray(raw)
        bad[i] ^= 0x04
        path.write_bytes(bytes(bad))
        with pytest.raises(RuntimeError, match=r"\[load\] .*c.nc: data checksum mismatch: file is corrupted"):
            nc.load(path)


def test_flipped_bit_in_header_is_detected(saved):
    path, raw = saved
    text = raw.decode("latin-1")
    i = text.index('\\"step\\",3') + len('\\"step\\",')  # the number 3 inside the structure JSON
    bad = bytearray(raw)
    bad[i] ^= 0x04  # "3" -> "7": still valid JSON
    path.write_bytes(bytes(bad))
    with pytest.raises(RuntimeError, match=r"header checksum mismatch: file is corrupted"):
        nc.load(path)


def test_truncated_and_foreign_files_raise_with_the_path(saved, tmp_path):
    path, raw = saved
    for cut in (0, 5, 8, 20, len(raw) - 1):
        path.write_bytes(raw[:cut])
        with pytest.raises(RuntimeError, match=r"\[load\] .*c.nc: .*(truncated|outside the data section)"):
            nc.load(path)
    path.write_bytes(b"just some text, not a checkpoint")
    with pytest.raises(RuntimeError, match=r"\[load\] .*c.nc: .*(bad magic|truncated)"):
        nc.load(path)
    path.write_bytes(struct.pack("<Q", 4) + b"[1] ")
    with pytest.raises(RuntimeError, match=r"bad magic"):
        nc.load(path)


def test_unknown_dtype_and_bad_offsets_raise_even_when_resigned(saved):
    path, raw = saved
    header, start = read_header(raw)
    body = raw[start:]
    edits = [(lambda h: h["w"].update(dtype="F16"), r"tensor 'w' has unknown dtype 'F16'"),
             (lambda h: h["w"].update(data_offsets=[0, 60]), r"needs 64 bytes, but its data_offsets \[0, 60\]"),
             (lambda h: h["w"].update(data_offsets=[8, 72]), r"outside the data section"),
             (lambda h: h["w"].update(shape=[2 ** 40, 2 ** 40]), r"overflows"),
             (lambda h: h["w"].update(shape=[-4, -4]), r"invalid shape"),
             (lambda h: h.update(x=dict(h["w"])), r"overlap"),
             (lambda h: h["__metadata__"].update(format="other"), r"not a neurocore file")]
    for edit, message in edits:
        h = json.loads(json.dumps(header))
        edit(h)
        path.write_bytes(write_header(resign(h, body), body))
        with pytest.raises(RuntimeError, match=message):
            nc.load(path)


def test_bool_bytes_other_than_0_and_1_are_refused(tmp_path):
    nc.save({"m": nc.tensor([True, False])}, tmp_path / "b.nc")
    raw = (tmp_path / "b.nc").read_bytes()
    header, start = read_header(raw)
    body = b"\x02\x00"
    (tmp_path / "b.nc").write_bytes(write_header(resign(header, body), body))
    with pytest.raises(RuntimeError, match=r"bool tensor 'm' holds bytes other than 0 and 1"):
        nc.load(tmp_path / "b.nc")


# --- no code from files --------------------------------------------------------------------------------

def _global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _call(fn, *args):
    """Pickle opcodes: push fn, push a tuple of str args, REDUCE."""
    return fn + b"(" + b"".join(_str(a) for a in args) + b"tR"


def _payloads(marker):
    code = f"open({str(marker)!r}, 'w').write('pwned')"
    shell = f"touch {marker}"
    builtins_get = _global("neurocore.nn.parameter", "Parameter.__init__.__builtins__.get")
    return {
        # the escape through a function's __builtins__ inside an allowed module, as in the issue
        "__builtins__": b"\x80\x04" + _call(builtins_get, "eval") + b"(" + _str(code) + b"tR.",
        "os.system": b"\x80\x02" + _call(_global("os", "system"), shell) + b".",
        "posix.system": b"\x80\x02" + _call(_global("posix", "system"), shell) + b".",
        "builtins.eval": b"\x80\x02" + _call(_global("builtins", "eval"), code) + b".",
        "builtins.exec": b"\x80\x02" + _call(_global("__builtin__", "exec"), code) + b".",
        # dotted attribute of an allowed class / function
        "allowed.dotted": b"\x80\x04" + _call(
            _global("collections", "OrderedDict.__init__.__builtins__.get"), "eval") + b"(" + _str(code) + b"tR.",
        "rebuild.dotted": b"\x80\x04" + _call(
            _global("torch._utils", "_rebuild_tensor_v2.__globals__.get"), "__builtins__") + b".",
        "load_from_bytes": b"\x80\x02" + _call(_global("torch.storage", "_load_from_bytes"), "x") + b".",
    }


def _torch_zip(data_pkl, storages=(), prefix="archive"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{prefix}/data.pkl", data_pkl)
        zf.writestr(f"{prefix}/byteorder", "little")
        for key, raw in storages:
            zf.writestr(f"{prefix}/data/{key}", raw)
    return buf.getvalue()


@pytest.mark.parametrize("gadget", list(_payloads("m")))
@pytest.mark.parametrize("container", ["pickle", "torch-zip"])
def test_crafted_files_cannot_run_code(gadget, container, tmp_path):
    marker = tmp_path / "pwned"
    payload = _payloads(marker)[gadget]
    path = tmp_path / "evil.pt"
    path.write_bytes(payload if container == "pickle" else _torch_zip(payload))
    with pytest.raises(pickle.UnpicklingError, match=r"\[load\]") as info:
        nc.load(path)
    assert not marker.exists()
    if container == "torch-zip":  # the error names the refused global
        module, name = payload[payload.index(b"c") + 1:].split(b"\n")[:2]
        assert f"'{module.decode()}.{name.decode()}'" in str(info.value)
    with pytest.raises(pickle.UnpicklingError):
        nc.load(path, map_location="cpu")
    assert not marker.exists()


def test_the_builtins_gadget_is_real(tmp_path):
    """The payload above does run code when a loader trusts the file (so the refusal is meaningful)."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(_payloads(marker)["__builtins__"])
    with pytest.warns(UserWarning, match=r"earlier neurocore version"):
        nc.load(path, weights_only=False)
    assert marker.read_text() == "pwned"
    marker.unlink()
    path.write_bytes(_torch_zip(_payloads(marker)["__builtins__"]))
    nc.load(path, weights_only=False)
    assert marker.exists()


def test_build_on_a_tensor_is_refused(tmp_path):
    """BUILD (setstate) could otherwise set attributes of tensors the file builds."""
    torch = require_torch()
    buf = io.BytesIO()
    torch.save(torch.ones(2), buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        names = {n: zf.read(n) for n in zf.namelist()}
    prefix = next(n for n in names if n.endswith("/data.pkl")).split("/")[0]
    pkl = names[f"{prefix}/data.pkl"]
    assert pkl.endswith(b".")
    names[f"{prefix}/data.pkl"] = pkl[:-1] + b"}" + _str("requires_grad") + b"\x88sb."
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for n, raw in names.items():
            zf.writestr(n, raw)
    (tmp_path / "b.pt").write_bytes(out.getvalue())
    with pytest.raises(pickle.UnpicklingError, match=r"refuses to set the state of a Tensor"):
        nc.load(tmp_path / "b.pt")


def test_old_neurocore_pickles_need_weights_only_false(tmp_path):
    old = {"w": nc.tensor([1.0, 2.0], requires_grad=True), "step": 3}
    path = tmp_path / "old.pt"
    with open(path, "wb") as f:
        pickle.dump(old, f, protocol=pickle.HIGHEST_PROTOCOL)  # what nc.save wrote before
    with pytest.raises(pickle.UnpicklingError, match=r"\[load\] .*old.pt is a pickle file"):
        nc.load(path)
    with pytest.warns(UserWarning, match=r"pickle file written by an earlier neurocore version"):
        back = nc.load(path, weights_only=False)
    assert_same(old, back)


# --- PyTorch files ---------------------------------------------------------------------------------------

def _torch_bytes(torch, obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _from_torch(torch, obj):
    """What nc.load should return for a torch object (tensors widened as nc.tensor does)."""
    if isinstance(obj, torch.Tensor):
        arr = obj.detach().float().numpy() if obj.dtype in (torch.float16, torch.bfloat16) else obj.detach().numpy()
        t = nc.tensor(arr)
        if isinstance(obj, torch.nn.Parameter):
            return nn.Parameter(t, obj.requires_grad)
        return t.requires_grad_(obj.requires_grad) if obj.requires_grad else t
    if isinstance(obj, dict):
        out = type(obj)((k, _from_torch(torch, v)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):
            out._metadata = obj._metadata
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_from_torch(torch, v) for v in obj)
    return obj


@pytest.mark.torch
def test_torch_files_load(tmp_path):
    torch = require_torch()
    torch.manual_seed(0)
    tmodel = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Linear(12, 4), torch.nn.LayerNorm(4))
    opt = torch.optim.Adam(tmodel.parameters(), lr=0.01)
    tmodel(torch.randn(5, 2, 4, 4)).sum().backward()
    opt.step()
    base = torch.arange(12.0).reshape(3, 4)
    obj = {"model": tmodel.state_dict(), "opt": opt.state_dict(), "epoch": 7, "loss": 0.25, "name": "run",
           "param": torch.nn.Parameter(torch.ones(2)), "frozen": torch.nn.Parameter(torch.ones(1), requires_grad=False),
           "view": base.t(), "row": base[1], "base": base, "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 2),
           "dtypes": [torch.tensor([1, -2], dtype=d) for d in (torch.int8, torch.int16, torch.int32, torch.uint8)]
           + [torch.tensor([0.5, -1.25], dtype=d) for d in (torch.float16, torch.bfloat16, torch.float64)]
           + [torch.tensor([True, False]), torch.tensor([2 ** 40])],
           "tuple": (1, None, True)}
    path = tmp_path / "t.pt"
    torch.save(obj, path)
    back = nc.load(path)
    assert_same(_from_torch(torch, obj), back)
    assert list(back["opt"]["state"]) == list(range(8)) and back["opt"]["state"][0]["step"].shape == ()
    # the state_dict drives an nc model to torch's outputs
    model = build_model()
    model.load_state_dict(back["model"])
    model.eval()
    tmodel.eval()
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(model(nc.tensor(x)).detach().numpy(), tmodel(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    assert_same(_from_torch(torch, obj), nc.load(io.BytesIO(path.read_bytes())))  # file objects too


@pytest.mark.torch
def test_torch_big_endian_files_load(tmp_path):
    torch = require_torch()
    obj = {"f": torch.tensor([1.5, -2.0]), "l": torch.tensor([1, 2 ** 40]),
           "d": torch.tensor([0.1], dtype=torch.float64)}
    with zipfile.ZipFile(io.BytesIO(_torch_bytes(torch, obj))) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    itemsizes = {"0": 4, "1": 8, "2": 8}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for n, raw in entries.items():
            if n.endswith("/byteorder"):
                raw = b"big"
            elif "/data/" in n:
                k = itemsizes[n.rsplit("/", 1)[1]]
                raw = np.frombuffer(raw, f"<u{k}").astype(f">u{k}").tobytes()
            zf.writestr(n, raw)
    assert_same(_from_torch(torch, obj), nc.load(io.BytesIO(out.getvalue())))


@pytest.mark.torch
def test_map_location(tmp_path):
    torch = require_torch()
    path = tmp_path / "m.pt"
    torch.save({"a": torch.ones(2)}, path)
    nc.save({"a": nc.ones(2)}, tmp_path / "m.nc")
    for f in (path, tmp_path / "m.nc"):
        for ok in ("cpu", torch.device("cpu"), {"cuda:0": "cpu"}, lambda s, loc: s, lambda s, loc: s.cpu(),
                   lambda s, loc: None):
            np.testing.assert_array_equal(nc.load(f, map_location=ok)["a"].numpy(), [1.0, 1.0])
        for bad in ("cuda", "cuda:1", torch.device("cuda", 0), {"cpu": "cuda:0"}, lambda s, loc: s.cuda()):
            with pytest.raises(RuntimeError, match=r"\[load\] map_location .*CPU only"):
                nc.load(f, map_location=bad)
    with pytest.raises(TypeError, match=r"\[load\] map_location must be"):
        nc.load(path, map_location=3)


class Config:
    """A user class saved inside a PyTorch checkpoint (needs add_safe_globals)."""

    def __init__(self, depth):
        self.depth = depth


@pytest.mark.torch
def test_safe_globals(tmp_path):
    torch = require_torch()
    path = tmp_path / "cfg.pt"
    torch.save({"cfg": Config(4), "w": torch.ones(1)}, path)
    name = f"{Config.__module__}.Config"
    with pytest.raises(pickle.UnpicklingError, match=rf"refuses the global '{name}'.*add_safe_globals"):
        nc.load(path)
    with nc.serialization.safe_globals([Config]):
        assert nc.load(path)["cfg"].depth == 4
        assert (Config, name) in nc.serialization.get_safe_globals()
    with pytest.raises(pickle.UnpicklingError):
        nc.load(path)
    nc.serialization.add_safe_globals([Config])
    try:
        assert nc.load(path)["cfg"].depth == 4
    finally:
        nc.serialization.clear_safe_globals()
    assert nc.load(path, weights_only=False)["cfg"].depth == 4


@pytest.mark.torch
def test_saved_files_load_into_torch_via_numpy(tmp_path):
    torch = require_torch()
    sd = build_model().state_dict()
    nc.save(sd, tmp_path / "w.nc")
    tmodel = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Linear(12, 4), torch.nn.LayerNorm(4))
    tmodel.load_state_dict({k: torch.tensor(v.numpy()) for k, v in nc.load(tmp_path / "w.nc").items()})
    for k, v in tmodel.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd[k].numpy(), err_msg=k)


# --- pickling of tensors ---------------------------------------------------------------------------------

def test_deepcopy_and_pickle_are_independent():
    t = nc.tensor([1.0, 2.0])
    c = copy.deepcopy(t)
    c.add_(1.0)
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])
    p = pickle.loads(pickle.dumps(t))
    np.testing.assert_array_equal(p.numpy(), [1.0, 2.0])
    assert pickle.loads(pickle.dumps(nc.tensor(3.0))).shape == ()  # 0-d stays 0-d


def test_nonleaf_pickle_raises():
    x = nc.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\[save\]"):
        pickle.dumps(x * 2)
