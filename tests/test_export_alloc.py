"""The runtime allocates nothing in Session::run after the first call for a given input shape:
tests/cpp/runtime_alloc_count.cpp (built with CMake against the package's config) replaces the
global operator new with a counting one and runs each exported model 20 times into preallocated
outputs. Covers the dense and convolutional ops, BatchNorm left unfolded, the sequence ops
(RNN/LSTM/GRU, packed sequences, attention with additive and bool masks) and the shape ops."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from neurocore.nn import functional as F
from neurocore.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def counter(tmp_path_factory):
    src = tmp_path_factory.mktemp("alloc_src")
    build = tmp_path_factory.mktemp("alloc_build")
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(alloc LANGUAGES CXX)\nset(CMAKE_CXX_STANDARD 17)\n"
        "find_package(neurocore CONFIG REQUIRED)\n"
        f"add_executable(count {ROOT / 'tests' / 'cpp' / 'runtime_alloc_count.cpp'})\n"
        "target_link_libraries(count PRIVATE neurocore::runtime)\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(nc.__file__).resolve().parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
    cmake_dir = subprocess.run([sys.executable, "-m", "neurocore.config", "--cmakedir"], env=env, capture_output=True,
                               text=True, check=True).stdout.strip()
    subprocess.run(["cmake", "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                    f"-Dneurocore_DIR={cmake_dir}"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    return build / "count"


class Packed(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 6, batch_first=True, bidirectional=True)

    def forward(self, x, lengths):
        out, (h, _) = self.lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        return pad_packed_sequence(out, batch_first=True, total_length=5)[0], h


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)

    def forward(self, x, pad, mask):
        y = self.layer(x, src_key_padding_mask=pad)
        q = y.reshape(y.shape[0], 5, 2, 4).transpose(1, 2)
        return F.scaled_dot_product_attention(q, q, q, attn_mask=mask)


class Shapes(nn.Module):
    def forward(self, x):
        y = x.permute(0, 2, 1)[:, 1:, ::2]
        z = nc.cat([y, y * 2], 1).sum(dim=2) + x.mean(dim=(1, 2), keepdim=True)[:, 0]
        return F.softmax(z, dim=0), x[:, :1].expand(x.shape[0], 3, 4) - x


def models():
    rng = np.random.default_rng(0)
    x = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    return {
        "mlp": (nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)), (x(2, 6),)),
        "cnn_bn": (nn.Sequential(nn.BatchNorm2d(1), nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                                 nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 5), nn.LogSoftmax(1)), (x(2, 1, 8, 8),)),
        "lstm": (nn.LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True), (x(2, 3, 4),)),
        "gru": (nn.GRU(4, 6, batch_first=True), (x(2, 3, 4),)),
        "packed": (Packed(), (x(2, 5, 4), np.array([5, 3]))),
        "attention": (Attention(), (x(2, 5, 8), np.array([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]], bool),
                                    np.tril(np.ones((5, 5), bool))), [0, 0, None]),
        "shapes": (Shapes(), (x(2, 3, 4),)),
    }


@pytest.mark.parametrize("name", list(models()))
def test_run_allocates_nothing_after_the_first_call(counter, tmp_path, name):
    model, example, *batch_dim = models()[name]
    model.eval()
    path = tmp_path / f"{name}.ncm"
    nc.export.save(model, path, example, batch_dim=batch_dim[0] if batch_dim else 0)
    session = nc.export.load(path)
    fill = 2.0 if name == "packed" else 0.25  # every input holds it (packed: lengths of 2)
    for batch, threads in ((1, 1), (4, 1), (4, 2)):
        out = subprocess.run([str(counter), str(path), str(batch), str(threads), str(fill)], capture_output=True,
                             text=True, check=True).stdout.split()
        assert out[:2] == ["allocations", "0"], (name, batch, threads, out)
        assert out[4] == "first_call" and int(out[5]) > 0  # the counter does see the runtime's allocations
        xs = [np.full([batch if d == -1 else d for d in s], fill, np.float32) for s in session.input_shapes]
        first = session(*xs)
        first = first[0] if isinstance(first, tuple) else first
        np.testing.assert_allclose(float(out[3]), first.reshape(-1)[0], rtol=1e-6, atol=1e-7)
