"""The embedded runtime from C++ and C: examples/embed (built with CMake against the package's
config, found through `python -m neurocore.config --cmakedir`) classifies the held-out MNIST
digits with an exported, briefly trained Keras-shaped CNN and reports the Python model's accuracy;
a C program through the C ABI gives the Python runtime's outputs; the neurocore-run tool writes
the outputs and prints latency percentiles."""
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn, optim
from neurocore.datasets import load_mnist_5k, train_test_split
from neurocore.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parent.parent


def keras_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def _env():
    env = dict(os.environ)
    package_parent = str(Path(nc.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = package_parent + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cmake_build(src, build):
    cmake_dir = subprocess.run([sys.executable, "-m", "neurocore.config", "--cmakedir"], env=_env(),
                               capture_output=True, text=True, check=True).stdout.strip()
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run(["cmake", "-S", str(src), "-B", str(build), *generator, "-DCMAKE_BUILD_TYPE=Release",
                    f"-Dneurocore_DIR={cmake_dir}"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def mnist_model(tmp_path_factory):
    X, y = load_mnist_5k()
    X = (X / 255.0).reshape(-1, 1, 28, 28).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=1000, seed=0)
    nc.manual_seed(0)
    model = keras_cnn()
    opt = optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    for xb, yb in DataLoader(TensorDataset(X_train[:2000], y_train[:2000]), batch_size=64, shuffle=True, seed=0):
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()
    model.eval()
    folder = tmp_path_factory.mktemp("embed")
    path = folder / "mnist_cnn.ncm"
    nc.export.save(model, path, (X_test[:1],))
    with nc.no_grad():
        logits = model(nc.tensor(X_test)).numpy()
    return path, model, X_test, y_test, logits


def test_cpp_example_prints_the_python_accuracy(mnist_model, tmp_path):
    path, _, X_test, y_test, logits = mnist_model
    correct = int((logits.argmax(1) == y_test).sum())
    assert correct > 700  # trained briefly, but trained
    runtime_logits = nc.export.load(path)(X_test)
    np.testing.assert_allclose(runtime_logits, logits, rtol=1e-5, atol=1e-5 * np.abs(logits).max())
    digits = tmp_path / "digits.bin"
    digits.write_bytes(struct.pack("<I", len(X_test)) + X_test.astype("<f4").tobytes() +
                       y_test.astype(np.uint8).tobytes())
    _cmake_build(ROOT / "examples" / "embed", tmp_path / "build")
    out = subprocess.run([str(tmp_path / "build" / "classify"), str(path), str(digits)], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == f"accuracy {correct / len(X_test):.4f} ({correct}/{len(X_test)})"
    bad = subprocess.run([str(tmp_path / "build" / "classify"), str(digits), str(digits)], capture_output=True,
                         text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: [load] ")


C_PROGRAM = r"""
#include <neurocore_runtime.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  char err[512];
  nc_session* s = nc_session_open(argv[1], err, sizeof err);
  if (!s) { fprintf(stderr, "%s\n", err); return 1; }
  FILE* f = fopen(argv[2], "rb");
  float* x = malloc(3 * 784 * sizeof(float));
  if (fread(x, sizeof(float), 3 * 784, f) != 3 * 784) return 3;
  fclose(f);
  const int64_t shape[4] = {3, 1, 28, 28};
  const int64_t* shapes[1] = {shape};
  const int ranks[1] = {4};
  const float* inputs[1] = {x};
  int64_t out_shape[8];
  int rank = nc_session_output_shape(s, shapes, ranks, 0, out_shape, 8, err, sizeof err);
  if (rank != 2 || out_shape[0] != 3 || out_shape[1] != 10) return 4;
  float y[30];
  float* outputs[1] = {y};
  const int64_t small[1] = {29}, room[1] = {30};
  if (nc_session_run(s, inputs, shapes, ranks, outputs, small, err, sizeof err) == 0) return 5;
  printf("%s\n", err);
  if (nc_session_run(s, inputs, shapes, ranks, outputs, room, err, sizeof err) != 0) return 6;
  for (int i = 0; i < 30; ++i) printf("%.9g\n", y[i]);
  nc_session_close(s);
  free(x);
  return 0;
}
"""


def test_c_api_gives_the_python_runtime_outputs(mnist_model, tmp_path):
    path, _, X_test, _, _ = mnist_model
    src = tmp_path / "src"
    src.mkdir()
    (src / "main.c").write_text(C_PROGRAM)
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(c_api LANGUAGES C CXX)\n"
        "find_package(neurocore CONFIG REQUIRED)\nadd_executable(capi main.c)\n"
        "target_link_libraries(capi PRIVATE neurocore::runtime)\n")
    _cmake_build(src, tmp_path / "build")
    images = tmp_path / "x.f32"
    images.write_bytes(X_test[:3].astype("<f4").tobytes())
    out = subprocess.run([str(tmp_path / "build" / "capi"), str(path), str(images)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == "[run] output 0 needs 30 floats, its buffer holds 29"
    want = nc.export.load(path)(X_test[:3]).reshape(-1)
    np.testing.assert_array_equal(np.array([float(v) for v in out[1:]], dtype=np.float32), want)


def test_neurocore_run_tool(mnist_model, tmp_path):
    path, _, X_test, _, _ = mnist_model
    np.save(tmp_path / "x.npy", X_test[:4])
    res = subprocess.run([sys.executable, "-m", "neurocore.export.cli", str(path), "--input", str(tmp_path / "x.npy"),
                          "--output", str(tmp_path / "y.npy"), "--bench", "20"], env=_env(), capture_output=True,
                         text=True, check=True)
    assert "output0: shape (4, 10)" in res.stdout
    assert "latency over 20 runs (us): p50 " in res.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), nc.export.load(path)(X_test[:4]))
    bad = subprocess.run([sys.executable, "-m", "neurocore.export.cli", str(tmp_path / "x.npy")], env=_env(),
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "[load]" in bad.stderr
