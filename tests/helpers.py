"""Test helpers: PyTorch as the oracle, and finite-difference gradient checks.

    check_op(lambda t, a, b: t.add(a, b), lambda nc, a, b: nc.add(a, b), shapes=[(3, 4), (4,)])
checks forward values and the gradient of every floating input against PyTorch in one call.
"""
import os

import numpy as np
import pytest

import neurocore as nc


def with_threads(n, fn):
    """fn() run with n threads; the previous thread count is restored."""
    old = nc.get_num_threads()
    nc.set_num_threads(n)
    try:
        return fn()
    finally:
        nc.set_num_threads(old)


def results_by_thread_count(fn, arrays, threads=(1, 2)):
    """For each thread count: [y, *grads] (NumPy copies) of y = fn(*tensors) over float32 `arrays`
    as leaf tensors, backpropagating a fixed random weighting of y (for bit-identity checks)."""
    results = []
    for n in threads:
        def run():
            ts = [nc.tensor(a, requires_grad=True) for a in arrays]
            y = fn(*ts)
            (y * nc.tensor(rand(tuple(y.shape), np.float32, 4))).sum().backward()
            return [t.detach().numpy().copy() for t in [y] + [t.grad for t in ts]]
        results.append(with_threads(n, run))
    return results


def weight_update_cases(example_input, fresh_layer):
    """The ways a layer's weight changes after a forward (tests of copies kept on the weight, which
    each of them must drop): an SGD and an Adam step on a loss of layer(example_input(layer)), a
    `.data.copy_`, an in-place `mul_` under no_grad, and `load_state_dict` from fresh_layer(layer).
    Functions of the layer, named for pytest ids."""
    def optimizer_step(layer):
        opt = nc.optim.SGD(layer.parameters(), lr=0.5)
        layer(example_input(layer)).square().sum().backward()
        opt.step()

    def adam_step(layer):
        opt = nc.optim.Adam(layer.parameters(), lr=0.1)
        layer(example_input(layer)).square().sum().backward()
        opt.step()

    def data_copy(layer):
        layer.weight.data.copy_(nc.randn(*layer.weight.shape))

    def mul_in_place(layer):
        with nc.no_grad():
            layer.weight.mul_(2)

    def load_state_dict(layer):
        layer.load_state_dict(fresh_layer(layer).state_dict())
    return [optimizer_step, adam_step, data_copy, mul_in_place, load_state_dict]


def require_torch():
    """Imports torch; a missing torch fails when NEUROCORE_REQUIRE_TORCH=1 (CI) and skips otherwise."""
    try:
        import torch
    except ImportError:
        if os.environ.get("NEUROCORE_REQUIRE_TORCH") == "1":
            pytest.fail("torch is required (NEUROCORE_REQUIRE_TORCH=1) but not installed")
        pytest.skip("torch not installed")
    torch.set_num_threads(1)
    return torch


TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}


def rand(shape, dtype=np.float64, seed=0, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(dtype)


def assert_close(actual, expected, rtol, atol, what=""):
    actual = actual.detach().numpy() if isinstance(actual, nc.Tensor) else np.asarray(actual)
    if hasattr(expected, "detach"):
        expected = expected.detach().cpu().numpy()
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def check_op(torch_fn, nc_fn, arrays, dtype=np.float32, grad=True, rtol=None, atol=None, grad_inputs=None):
    """Runs torch_fn(torch, *tensors) and nc_fn(nc, *tensors) on the same data and compares the
    outputs and, with grad=True, the gradients of each floating input for a random upstream grad."""
    torch = require_torch()
    tol = dict(TOL[dtype])
    if rtol is not None:
        tol["rtol"] = rtol
    if atol is not None:
        tol["atol"] = atol
    arrays = [a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in arrays]
    floating = [isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in arrays]
    if grad_inputs is not None:
        floating = [f and i in grad_inputs for i, f in enumerate(floating)]
    t_in = [torch.tensor(a, requires_grad=grad and f) if isinstance(a, np.ndarray) else a
            for a, f in zip(arrays, floating)]
    n_in = [nc.tensor(a, requires_grad=grad and f) if isinstance(a, np.ndarray) else a
            for a, f in zip(arrays, floating)]
    t_out = torch_fn(torch, *t_in)
    n_out = nc_fn(nc, *n_in)
    t_outs = t_out if isinstance(t_out, (tuple, list)) else (t_out,)
    n_outs = n_out if isinstance(n_out, (tuple, list)) else (n_out,)
    assert len(t_outs) == len(n_outs)
    for i, (t, n) in enumerate(zip(t_outs, n_outs)):
        assert_close(n, t, what=f"output {i}", **tol)
    if not grad:
        return n_out
    diff = [(t, n) for t, n in zip(t_outs, n_outs) if t.dtype.is_floating_point and t.requires_grad]
    if not diff:
        return n_out
    t_loss, n_loss = 0, 0
    for k, (t, n) in enumerate(diff):
        g = rand(tuple(t.shape), dtype, seed=100 + k)
        t_loss = t_loss + (t * torch.tensor(g)).sum()
        n_loss = n_loss + (n * nc.tensor(g)).sum()
    t_loss.backward()
    n_loss.backward()
    for i, (t, n, f) in enumerate(zip(t_in, n_in, floating)):
        if not (grad and f):
            continue
        if t.grad is None:
            assert n.grad is None or np.all(n.grad.numpy() == 0), f"grad {i}: torch has none"
            continue
        assert n.grad is not None, f"grad of input {i} is None"
        assert_close(n.grad, t.grad, what=f"grad of input {i}", **tol)
    return n_out


def gradcheck(fn, arrays, eps=1e-6, rtol=1e-5, atol=1e-7, seed=1):
    """Finite-difference check in float64: compares the analytic gradient of sum(fn(*x) * w) for a
    random w with central differences for every element of every input array."""
    xs = [nc.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = fn(*xs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    ws = [rand(tuple(o.shape), np.float64, seed=seed + k) for k, o in enumerate(outs)]

    def objective(*inputs):
        with nc.no_grad():
            o = fn(*inputs)
            o = o if isinstance(o, (tuple, list)) else (o,)
            return float(np.sum([np.sum(oi.numpy().astype(np.float64) * w) for oi, w in zip(o, ws)]))

    loss = 0
    for o, w in zip(outs, ws):
        loss = loss + (o * nc.tensor(w)).sum()
    loss.backward()
    for i, x in enumerate(xs):
        base = np.asarray(arrays[i], dtype=np.float64)
        num = np.zeros_like(base)
        flat = num.reshape(-1)
        for j in range(base.size):
            plus, minus = base.copy().reshape(-1), base.copy().reshape(-1)
            plus[j] += eps
            minus[j] -= eps
            args_p = [nc.tensor(plus.reshape(base.shape)) if k == i else nc.tensor(np.asarray(arrays[k], dtype=np.float64))
                      for k in range(len(arrays))]
            args_m = [nc.tensor(minus.reshape(base.shape)) if k == i else nc.tensor(np.asarray(arrays[k], dtype=np.float64))
                      for k in range(len(arrays))]
            flat[j] = (objective(*args_p) - objective(*args_m)) / (2 * eps)
        analytic = x.grad.numpy() if x.grad is not None else np.zeros_like(base)
        np.testing.assert_allclose(analytic, num, rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")


def require_tf():
    """Imports TensorFlow (Keras 3's oracle backend); a missing TensorFlow fails when
    NEUROCORE_REQUIRE_TF=1 (CI) and skips otherwise."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        import tensorflow as tf
        import keras  # noqa: F401
    except ImportError:
        if os.environ.get("NEUROCORE_REQUIRE_TF") == "1":
            pytest.fail("tensorflow is required (NEUROCORE_REQUIRE_TF=1) but not installed")
        pytest.skip("tensorflow not installed")
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:  # already initialised by an earlier test
        pass
    return tf
