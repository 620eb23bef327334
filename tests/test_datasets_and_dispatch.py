"""Shipped data sets, CPU dispatch and thread settings."""
import os
import subprocess
import sys

import numpy as np
import pytest

import neurocore as nc


def test_digits_and_mnist_shapes_and_labels():
    X, y = nc.datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32 and 0 <= X.min() and X.max() == 16
    assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
    X, y = nc.datasets.load_mnist_5k()
    assert X.shape == (5000, 784) and X.max() == 255
    assert np.all(np.bincount(y) == 500)
    years, values = nc.datasets.load_sunspots()
    assert years[0] == 1700 and years[-1] == 2008 and values.shape == (309,)


def test_train_test_split_is_seeded_and_disjoint():
    X = np.arange(100).reshape(50, 2)
    y = np.arange(50)
    a = nc.datasets.train_test_split(X, y, test_size=10, seed=1)
    b = nc.datasets.train_test_split(X, y, test_size=10, seed=1)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert len(set(a[2]) & set(a[3])) == 0 and len(a[3]) == 10
    with pytest.raises(ValueError, match="train_test_split"):
        nc.datasets.train_test_split(X, y, test_size=50)


def _run(code, env_extra):
    env = dict(os.environ, **env_extra)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_cpu_capability_forced_by_env():
    r = _run("import neurocore as nc; print(nc.cpu_capability())", {"NEUROCORE_CPU": "generic"})
    assert r.stdout.strip() == "generic", r.stderr
    if nc._core.cpu_supports_avx2():
        r = _run("import neurocore as nc; print(nc.cpu_capability())", {"NEUROCORE_CPU": "avx2"})
        assert r.stdout.strip() == "avx2", r.stderr
    r = _run("import neurocore", {"NEUROCORE_CPU": "sse9"})
    assert r.returncode != 0 and "NEUROCORE_CPU" in r.stderr and "avx512" in r.stderr
    r = _run("import neurocore as nc; print(nc.cpu_capability())", {"NEUROCORE_CPU": "avx512"})
    if nc._core._cpu_supports("avx512") or nc._core._avx512_emulated():
        assert r.stdout.strip() == "avx512", r.stderr
    else:  # a CPU without AVX-512 refuses the build clearly at import
        assert r.returncode != 0 and "NEUROCORE_CPU=avx512 but this CPU cannot run the avx512 kernels" in r.stderr
    # auto: the widest build this CPU has (never the emulated one)
    r = _run("import neurocore as nc; print(nc.cpu_capability())", {"NEUROCORE_CPU": "auto"})
    want = "avx512" if nc._core._cpu_supports("avx512") else "avx2" if nc._core.cpu_supports_avx2() else "generic"
    assert r.stdout.strip() == want, r.stderr


def test_threads_setting_and_omp_env():
    before = nc.get_num_threads()
    nc.set_num_threads(1)
    assert nc.get_num_threads() == 1
    nc.set_num_threads(before)
    with pytest.raises(ValueError, match="set_num_threads"):
        nc.set_num_threads(0)
    r = _run("import neurocore as nc; print(nc.get_num_threads())", {"OMP_NUM_THREADS": "1"})
    assert r.stdout.strip() == "1", r.stderr
