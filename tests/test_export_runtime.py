"""The runtime's loader against corrupted files (seeded fuzzing: every mutation is either rejected
with a clear ValueError or, for mutations that keep the file valid, loads), and concurrent calls on
one session giving the serial results."""
import hashlib
import json
import os
import struct
import threading

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn

FUZZ_SEED = int(os.environ.get("NEUROCORE_FUZZ_SEED", "20261207"))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    nc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 2, 8), nn.Tanh(),
                          nn.Linear(8, 3), nn.Softmax(dim=1)).eval()
    path = tmp_path_factory.mktemp("fuzz") / "model.ncm"
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    nc.export.save(model, path, (x,))
    return path, model, x


def _split(raw):
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _join(header, data):
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + data


def _overwrite(path, blob):
    """Writes without O_TRUNC (truncating on open costs milliseconds on some filesystems)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, blob, 0)
        os.ftruncate(fd, len(blob))
    finally:
        os.close(fd)


def _expect_rejected(path, blob, what):
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=r"^\[load\] ") as info:
        nc.export.load(path)
    return info


def _mutate_graph(header, fn):
    header = json.loads(json.dumps(header))
    graph = json.loads(header["__metadata__"]["neurocore.graph"])
    fn(graph)
    header["__metadata__"]["neurocore.graph"] = json.dumps(graph)
    return header


def test_targeted_corruptions_are_rejected(model_file, tmp_path):
    path, _, _ = model_file
    raw = path.read_bytes()
    header, data = _split(raw)
    out = tmp_path / "bad.ncm"
    name = next(k for k in header if k != "__metadata__")

    _expect_rejected(out, b"", "empty")
    _expect_rejected(out, raw[:5], "short")
    _expect_rejected(out, struct.pack("<Q", 10 ** 12) + raw[8:], "header length")
    for cut in (len(raw) - 1, len(raw) - 4, 8 + 10, len(raw) - len(data) + 3):
        _expect_rejected(out, raw[:cut], "truncated")
    flipped = bytearray(raw)
    flipped[-3] ^= 0x10
    info = _expect_rejected(out, bytes(flipped), "data bit flip")
    assert "checksum mismatch" in str(info.value)

    def edit(fn):
        h = json.loads(json.dumps(header))
        fn(h)
        return h

    h = edit(lambda h: h["__metadata__"].__setitem__("neurocore.data_sha256", "0" * 64))
    assert "checksum mismatch" in str(_expect_rejected(out, _join(h, data), "checksum").value)
    h = edit(lambda h: h["__metadata__"].__setitem__("neurocore.format_version", "2"))
    assert "format version '2' is not supported" in str(_expect_rejected(out, _join(h, data), "version").value)
    h = edit(lambda h: h[name].__setitem__("shape", [2 ** 40, 2 ** 40]))
    _expect_rejected(out, _join(h, data), "oversized shape")
    h = edit(lambda h: h[name].__setitem__("shape", [10 ** 6]))
    assert "needs 4000000 bytes" in str(_expect_rejected(out, _join(h, data), "shape/offset mismatch").value)
    h = edit(lambda h: h[name].__setitem__("data_offsets", [len(data) - 4, len(data) + 4096]))
    assert "outside the data section" in str(_expect_rejected(out, _join(h, data), "offsets").value)
    h = edit(lambda h: h[name].__setitem__("dtype", "F16"))
    _expect_rejected(out, _join(h, data), "dtype")
    h = _mutate_graph(header, lambda g: g["nodes"][0].__setitem__("op", "launch_missiles"))
    assert "unknown op 'launch_missiles'" in str(_expect_rejected(out, _join(h, data), "op").value)
    h = edit(lambda h: h["__metadata__"].__setitem__("neurocore.graph", '{"nodes": [1, 2'))
    assert "malformed JSON" in str(_expect_rejected(out, _join(h, data), "json").value)
    h = _mutate_graph(header, lambda g: g["nodes"][0]["inputs"].__setitem__(0, 10 ** 6))
    _expect_rejected(out, _join(h, data), "value out of range")
    h = _mutate_graph(header, lambda g: g["nodes"][1]["inputs"].__setitem__(0, g["nodes"][-1]["outputs"][0]))
    assert "before it is defined" in str(_expect_rejected(out, _join(h, data), "use before def").value)
    h = _mutate_graph(header, lambda g: g["nodes"][0]["attrs"].__setitem__("stride", [0, 1]))
    _expect_rejected(out, _join(h, data), "zero stride")
    def three_channels(g):
        g["inputs"][0]["example_shape"] = [2, 3, 8, 8]
        g["inputs"][0]["shape"] = [-1, 3, 8, 8]
    h = _mutate_graph(header, three_channels)
    info = _expect_rejected(out, _join(h, data), "channels")
    assert "conv2d in module '0'" in str(info.value)


def test_fuzzed_files_never_crash(model_file, tmp_path):
    """Random truncations, bit flips and header/graph edits: each is rejected with ValueError
    ('[load] ...') or, when the edit left a valid model, loads. Prints the seed to reproduce."""
    path, _, x = model_file
    raw = path.read_bytes()
    header, data = _split(raw)
    print(f"fuzz seed {FUZZ_SEED} (NEUROCORE_FUZZ_SEED)")
    rng = np.random.default_rng(FUZZ_SEED)
    out = tmp_path / "fuzz.ncm"
    head_end = len(raw) - len(data)
    graph_text = header["__metadata__"]["neurocore.graph"]
    targets = []  # paths to every value in the graph JSON

    def collect(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                collect(v, where + [k])
        elif isinstance(node, list):
            for j, v in enumerate(node):
                collect(v, where + [j])
        targets.append(where)
    collect(json.loads(graph_text), [])
    rejected = loaded = 0
    for i in range(5000):
        kind = i % 5
        if kind == 0:  # truncation
            blob = raw[:int(rng.integers(0, len(raw)))]
        elif kind == 1:  # bit flips anywhere
            b = bytearray(raw)
            for _ in range(int(rng.integers(1, 4))):
                pos = int(rng.integers(0, len(b)))
                b[pos] ^= 1 << int(rng.integers(0, 8))
            blob = bytes(b)
        elif kind == 2:  # bit flips in the header only (the checksum covers the data)
            b = bytearray(raw)
            pos = int(rng.integers(8, head_end))
            b[pos] ^= 1 << int(rng.integers(0, 8))
            blob = bytes(b)
        else:  # a graph value replaced by a random one (checksum still valid)
            g = json.loads(graph_text)
            where = targets[int(rng.integers(0, len(targets)))]
            choices = [-1, 0, 1, 2, 7, 2 ** 31, -2 ** 40, 2 ** 62, 0.5, "x", None, [], {}, [1, 2], True]
            value = choices[int(rng.integers(0, len(choices)))]
            if not where:
                g = value
            else:
                parent = g
                for k in where[:-1]:
                    parent = parent[k]
                parent[where[-1]] = value
            h = json.loads(json.dumps(header))
            h["__metadata__"]["neurocore.graph"] = json.dumps(g)
            blob = _join(h, data)
        _overwrite(out, blob)
        try:
            session = nc.export.load(out)
        except ValueError as e:
            assert str(e).startswith("[load] "), str(e)
            rejected += 1
        else:
            loaded += 1
            if blob[head_end:] == data and kind == 0:
                raise AssertionError("a truncated file loaded")
            del session
    assert rejected > 3000 and rejected + loaded == 5000


def test_concurrent_runs_match_serial(model_file):
    path, model, _ = model_file
    session = nc.export.load(path)
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((int(rng.integers(1, 9)), 1, 8, 8)).astype(np.float32) for _ in range(32)]
    serial = [session(x) for x in inputs]
    results = [[None] * len(inputs) for _ in range(4)]
    errors = []

    def worker(t):
        try:
            for _ in range(5):
                for i in range(len(inputs)):
                    results[t][i] = session(inputs[(i + t) % len(inputs)])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for t in range(4):
        for i in range(len(inputs)):
            np.testing.assert_array_equal(results[t][i], serial[(i + t) % len(inputs)])
