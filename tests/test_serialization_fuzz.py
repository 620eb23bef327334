"""Loader fuzz test: thousands of mutated files for nc.load.

Every mutated file must either load to an object equal to the original or raise a clear Python
exception ("[load] ..."); never crash, hang or silently return something else. Files whose
checksums were recomputed after an edit (what an attacker can do) may load to a different object,
but only to a well-formed one (it saves and loads again unchanged).

The seed is random per run and printed; NEUROCORE_FUZZ_SEED=<n> reruns one.
"""
import collections
import hashlib
import io
import json
import os
import pickle
import random
import signal
import struct
import zipfile

import pytest

import neurocore as nc
from neurocore.serialization import _header_digest
from test_serialization import assert_same

NC_CASES = 3000
TORCH_CASES = 600
HANG_GUARD_S = 300  # turns a hang into a failure; far above the few seconds the test takes


def _seed():
    seed = int(os.environ.get("NEUROCORE_FUZZ_SEED", random.SystemRandom().randrange(2 ** 32)))
    print(f"\nloader fuzz seed: {seed} (rerun with NEUROCORE_FUZZ_SEED={seed})")
    return seed


@pytest.fixture
def hang_guard():
    def on_alarm(signum, frame):
        raise TimeoutError(f"nc.load fuzz ran over {HANG_GUARD_S} s: a case hangs")
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(HANG_GUARD_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _objects():
    nc.manual_seed(0)
    p = nc.nn.Parameter(nc.randn(3, 2))
    return [
        collections.OrderedDict([("w", p), ("b", nc.randn(2, dtype=nc.float64)), ("n", nc.tensor(5)),
                                 ("mask", nc.tensor([True, False, True])), ("empty", nc.zeros(0, 4)),
                                 ("alias", p)]),
        {"state": {0: {"step": nc.tensor(3.0), "m": nc.randn(4)}, 1: {}},
         "groups": [{"lr": 0.1, "betas": (0.9, 0.999), "nesterov": False, "wd": None, "name": "g",
                     "inf": float("inf"), "params": [0, 1]}]},
        nc.arange(10).reshape(2, 5)[:, 1:4],
        [1, 2.5, "x", None, [], {}],
    ]


def _split(raw):
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _join(header, body, length=None):
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + body


def _resign(header, body):
    meta = header.get("__metadata__")
    if isinstance(meta, dict):
        meta["sha256"] = hashlib.sha256(body).hexdigest()
        if all(isinstance(v, str) for v in meta.values()):
            try:
                meta["header_sha256"] = _header_digest(header)
            except (TypeError, ValueError):
                pass
    return header


_JUNK = [-1, -(2 ** 63), 2 ** 63, 2 ** 64 + 8, 2 ** 200, 0, 1, 3, 7, 1.5, "8", None, True, [], {}, [1, 2, 3], "F32"]
_DTYPES = ["F16", "BF16", "I32", "U8", "I8", "F8_E4M3", "f32", "", "F32 ", "BOOL", "I64", 7, None, ["F32"]]


def _edit_entry(rng, entry):
    kind = rng.choice(["offsets", "offsets", "shape", "shape", "dtype", "keys"])
    if kind == "offsets":
        b, e = entry["data_offsets"]
        entry["data_offsets"] = rng.choice([
            [e, b], [b, e + rng.choice([-8, -1, 1, 8, 2 ** 40])], [b - 1, e - 1], [b + 4, e + 4], [0, e - b],
            [rng.choice(_JUNK), e], [b, rng.choice(_JUNK)], [b], [b, e, e], "0,8", None])
    elif kind == "shape":
        s = list(entry["shape"])
        entry["shape"] = rng.choice([
            s + [1], s + [2], s[1:], s[::-1], [2 ** 31, 2 ** 31, 2 ** 31], [0, 2 ** 62, 2 ** 62], [2 ** 64],
            [-1] + s, [-2, -4], [1] * 65, [1.0] * len(s), [True] * len(s), [[1]], "2,3", None,
            [rng.choice(_JUNK)] + s[1:]])
    elif kind == "dtype":
        entry["dtype"] = rng.choice(_DTYPES)
    else:
        k = rng.choice(["dtype", "shape", "data_offsets"])
        if rng.random() < 0.5:
            del entry[k]
        else:
            entry["extra"] = 1


def _edit_structure(rng, text):
    """A mutated structure JSON string: a node replaced, or a random text edit."""
    try:
        node = json.loads(text)
    except ValueError:
        return text[:-1]
    junk = rng.choice([{"@": "tensor", "data": "nope", "object": 0, "requires_grad": False, "parameter": False},
                       {"@": "tensor", "data": 3}, {"@": "unknown"}, {"@": "float", "value": "1e999"},
                       {"@": "tuple"}, {"@": "dict", "items": [[[1], 2]]}, {"@": "dict", "items": [[1]]},
                       {"plain": "object"}, 1e300, -5, "s", None, [[[[[[[[[[[]]]]]]]]]]],
                       {"@": "odict", "items": [], "metadata": {"@": "tensor"}},
                       {"@": "tensor", "data": "w", "object": 99, "requires_grad": True, "parameter": True}])
    nodes = []

    def walk(n):
        nodes.append(n)
        if isinstance(n, list):
            for v in n:
                walk(v)
        elif isinstance(n, dict):
            for v in n.values():
                walk(v)

    walk(node)
    target = rng.choice(nodes)
    if isinstance(target, list) and target:
        target[rng.randrange(len(target))] = junk
    elif isinstance(target, dict) and target:
        target[rng.choice(list(target))] = junk
    elif rng.random() < 0.3:
        return "[" * 100000 + "]" * 100000  # deeper than any parser recursion limit
    else:
        node = junk
    return json.dumps(node)


def _mutate(rng, raw):
    """(mutated bytes, category, resigned)."""
    header, body = _split(raw)
    start = len(raw) - len(body)
    category = rng.choice(["truncate", "bitflip", "dataflip", "header_len", "json_bytes", "table", "table",
                           "metadata", "structure"])
    if category == "dataflip" and not body:
        category = "bitflip"
    if category == "truncate":
        return raw[:rng.randrange(len(raw))], category, False
    if category in ("bitflip", "dataflip"):
        out = bytearray(raw)
        lo = start if category == "dataflip" else 0
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(lo, len(out))
            out[i] ^= 1 << rng.randrange(8)
        return bytes(out), category, False
    if category == "header_len":
        n = start - 8
        length = rng.choice([0, 1, 2, n - 1, n + 1, n + 8, len(raw), len(raw) - 7, 2 ** 63, 2 ** 64 - 1,
                             rng.randrange(2 ** 64), rng.randrange(len(raw) + 16)])
        return struct.pack("<Q", length) + raw[8:], category, False
    if category == "json_bytes":
        out, end = bytearray(raw), start
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(8, end)
            op = rng.random()
            if op < 0.4:
                out[i] = ord(rng.choice('{}[]",:0123456789-.eE \\ntfa\x00\xff'))
            elif op < 0.7:
                del out[i]
                end -= 1
            else:
                out.insert(i, ord(rng.choice('{}[]",:9')))
                end += 1
        return bytes(out), category, False
    resigned = rng.random() < 0.5
    names = [k for k in header if k != "__metadata__"]
    if category == "table" and names:
        op = rng.random()
        if op < 0.7:
            _edit_entry(rng, header[rng.choice(names)])
        elif op < 0.8:
            del header[rng.choice(names)]
        elif op < 0.9:
            header["extra"] = dict(header[rng.choice(names)])  # overlaps an existing tensor
        else:
            header[rng.choice(names)] = rng.choice(_JUNK)
    elif category == "metadata" or (category == "table" and not names):
        meta = header["__metadata__"]
        key = rng.choice(list(meta) + ["__metadata__"])
        if key == "__metadata__":
            header["__metadata__"] = rng.choice([None, [], "x", {"format": "neurocore"}])
        elif rng.random() < 0.3:
            del meta[key]
        else:
            meta[key] = rng.choice(["", "2", "0", "1.0", "-1", "１", "neurocore", "safetensors", "0" * 64, 1, None])
    else:
        header["__metadata__"]["structure"] = _edit_structure(rng, header["__metadata__"]["structure"])
    if resigned:
        _resign(header, body)
    return _join(header, body), category, resigned


def _check_loaded_is_well_formed(obj):
    buf = io.BytesIO()
    nc.save(obj, buf)
    buf.seek(0)
    assert_same(obj, nc.load(buf))


def _run_case(raw, original, mutated, resigned, category, context):
    """The outcome of loading one mutated file; fails the test on a wrong one."""
    try:
        back = nc.load(io.BytesIO(mutated))
    except (RuntimeError, ValueError, TypeError, pickle.UnpicklingError) as ex:
        assert "[load]" in str(ex), f"{context}: unclear error {type(ex).__name__}: {ex}"
        if category == "dataflip" and mutated != raw:
            assert "checksum mismatch" in str(ex), f"{context}: {ex}"
        return "raised"
    except RecursionError as ex:
        pytest.fail(f"{context}: RecursionError escaped nc.load: {ex}")
    if mutated == raw:
        assert_same(original, back)
        return "unchanged"
    try:
        assert_same(original, back)
        return "loaded equal"
    except AssertionError:
        assert resigned, f"{context}: a corrupted file loaded silently as a different object"
        _check_loaded_is_well_formed(back)
        return "loaded different (re-signed)"


def test_loader_fuzz_neurocore_files(hang_guard):
    seed = _seed()
    rng = random.Random(seed)
    files = []
    for obj in _objects():
        buf = io.BytesIO()
        nc.save(obj, buf)
        files.append((obj, buf.getvalue()))
    counts, categories, by_category = collections.Counter(), collections.Counter(), collections.Counter()
    for case in range(NC_CASES):
        original, raw = files[case % len(files)]
        mutated, category, resigned = _mutate(rng, raw)
        categories[category] += 1
        outcome = _run_case(raw, original, mutated, resigned, category,
                            f"seed {seed} case {case} ({category}, re-signed={resigned})")
        counts[outcome] += 1
        by_category[category, outcome] += 1
    print(f"nc files: {NC_CASES} cases by mutation {dict(categories)}; outcomes {dict(counts)}; crashes 0")
    print("by mutation and outcome:", dict(sorted(by_category.items())))
    assert sum(counts.values()) == NC_CASES
    assert counts["raised"] > NC_CASES // 2  # the mutations do reach the checks


def _torch_files(torch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    base = torch.arange(6.0).reshape(2, 3)
    objs = [model.state_dict(), {"t": base.t(), "row": base[1], "n": 4, "x": (1.5, None),
                                 "i": torch.tensor([1, 2], dtype=torch.int32), "b": torch.tensor(True)}]
    out = []
    for obj in objs:
        buf = io.BytesIO()
        torch.save(obj, buf)
        out.append(buf.getvalue())
    return out


def _rezip(rng, raw, target):
    """The zip with its data.pkl (target "pkl") or one storage ("storage") garbled, CRCs recomputed."""
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        entries = [(n, zf.read(n)) for n in zf.namelist()]
    candidates = [i for i, (n, b) in enumerate(entries)
                  if (n.endswith("/data.pkl") if target == "pkl" else "/data/" in n) and b]
    i = rng.choice(candidates)
    garbled = bytearray(entries[i][1])
    for _ in range(rng.randint(1, 3)):
        if not garbled:
            break
        j = rng.randrange(len(garbled))
        if rng.random() < 0.5:
            garbled[j] = rng.randrange(256)
        else:
            del garbled[j]
    entries[i] = (entries[i][0], bytes(garbled))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, b in entries:
            zf.writestr(n, b)
    return buf.getvalue()


@pytest.mark.torch
def test_loader_fuzz_pytorch_files(hang_guard):
    """torch.save zip files: byte-level mutations (the zip's CRCs catch most), and mutated pickles
    and storages with valid CRCs (what a crafted file can be). PyTorch files have no checksum of
    their own, so a re-zipped mutation may load to another object (never by running code: the
    unpickler builds only tensors and containers)."""
    from helpers import require_torch
    torch = require_torch()
    seed = _seed()
    rng = random.Random(seed)
    files = [(nc.load(io.BytesIO(raw)), raw) for raw in _torch_files(torch)]
    counts = collections.Counter()
    for case in range(TORCH_CASES):
        original, raw = files[case % len(files)]
        kind = rng.choice(["truncate", "bitflip", "pkl", "storage"])
        if kind == "truncate":
            mutated, rezipped = raw[:rng.randrange(len(raw))], False
        elif kind == "bitflip":
            out = bytearray(raw)
            for _ in range(rng.randint(1, 3)):
                out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
            mutated, rezipped = bytes(out), False
        else:
            mutated, rezipped = _rezip(rng, raw, kind), True
        context = f"seed {seed} case {case} ({kind})"
        try:
            back = nc.load(io.BytesIO(mutated))
        except (RuntimeError, ValueError, TypeError, pickle.UnpicklingError) as ex:
            assert "[load]" in str(ex), f"{context}: unclear error {type(ex).__name__}: {ex}"
            counts["raised"] += 1
            continue
        try:
            assert_same(original, back)
            counts["loaded equal"] += 1
        except AssertionError:
            assert rezipped, f"{context}: a corrupted zip loaded silently as a different object"
            counts["loaded different (re-zipped)"] += 1
    print(f"PyTorch files: {TORCH_CASES} cases; outcomes {dict(counts)}; crashes 0")
    assert sum(counts.values()) == TORCH_CASES
