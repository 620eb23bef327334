"""What keras fit does to save per-batch work must not change its results.

fit keeps the trainable weights and the regularisation plan of an epoch after its first step
(instead of walking the layers every batch): the results must be those of a step-by-step loop
that walks them each time (train_on_batch), and a change to `trainable` between epochs must
take effect. Dense's (in, out) kernel reaches linear as a transposed view, whose gradient is
computed in the kernel's own layout: checked against float64 NumPy and against the (out, in)
layout."""
import numpy as np
import pytest

import neurocore as nc
from neurocore import keras
from helpers import assert_close, require_torch


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6)).astype(np.float32), rng.integers(0, 3, n)


def _model(reg=None):
    m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", kernel_regularizer=reg,
                                                                bias_regularizer=reg),
                          keras.layers.Dense(3, activation="softmax", kernel_regularizer=reg)])
    m.compile(keras.optimizers.Adam(learning_rate=0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def test_fit_equals_train_on_batch_loop_with_regularizers():
    x, y = _data()
    fitted, stepped = _model(keras.regularizers.l2(0.05)), _model(keras.regularizers.l2(0.05))
    stepped.set_weights(fitted.get_weights())
    history = fitted.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    losses = []
    for _ in range(2):
        stepped.reset_metrics()
        for i in range(0, len(x), 16):
            losses.append(stepped.train_on_batch(x[i:i + 16], y[i:i + 16])[0])
    for a, b in zip(fitted.get_weights(), stepped.get_weights()):
        assert np.array_equal(a, b)
    # the epoch's running loss (with the penalties) is the mean of the per-batch losses
    assert np.isclose(history.history["loss"][1], np.mean(losses[len(losses) // 2:]), rtol=1e-6)


class _FreezeFirst(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.model.layers[0].trainable = False


def test_trainable_change_between_epochs_takes_effect():
    x, y = _data()
    m = _model()
    m.fit(x, y, batch_size=16, epochs=1, verbose=0)
    first = [w.copy() for w in m.layers[0].get_weights()]
    m.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[_FreezeFirst()])
    after_epoch_0 = m.layers[0].get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(first, after_epoch_0))  # trained in epoch 0
    frozen = [w.copy() for w in after_epoch_0]
    last = m.layers[1].get_weights()[0].copy()
    m.fit(x, y, batch_size=16, epochs=1, verbose=0)  # still frozen
    assert all(np.array_equal(a, b) for a, b in zip(frozen, m.layers[0].get_weights()))
    assert not np.array_equal(last, m.layers[1].get_weights()[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 32, 300])
def test_linear_gradient_of_a_transposed_kernel(dtype, rows):
    rng = np.random.default_rng(rows)
    x0, k0 = rng.standard_normal((rows, 70)).astype(dtype), rng.standard_normal((70, 40)).astype(dtype)
    g0 = rng.standard_normal((rows, 40)).astype(dtype)
    x, k, w = nc.tensor(x0, requires_grad=True), nc.tensor(k0, requires_grad=True), nc.tensor(k0.T.copy(), requires_grad=True)
    b = nc.tensor(np.zeros(40, dtype), requires_grad=True)
    nc.nn.functional.linear(x, k.transpose(0, 1), b).backward(nc.tensor(g0))
    gx = x.grad.numpy().copy()
    x.grad = None
    nc.nn.functional.linear(x, w, b).backward(nc.tensor(g0))
    assert k.grad.shape == (70, 40)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(k.grad.numpy(), x0.astype(np.float64).T @ g0, rtol=tol, atol=tol)
    np.testing.assert_allclose(k.grad.numpy(), w.grad.numpy().T, rtol=tol, atol=tol)
    np.testing.assert_allclose(gx, x.grad.numpy(), rtol=tol, atol=tol)


def _outputs_and_grads(model, x0, r, layer_by_layer):
    x = nc.tensor(x0, requires_grad=True)
    out = x
    if layer_by_layer:  # each layer's own call: the Conv2D's ReLU on its whole output
        for layer in model.layers:
            out = layer(out)
    else:
        out = model(x)
    (out * nc.tensor(r)).sum().backward()
    grads = [x.grad.numpy().copy()] + [w.grad.numpy().copy() for w in model.trainable_weights]
    for w in model.trainable_weights:
        w.grad = None
    return out.detach().numpy().copy(), grads


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv_relu_then_max_pool_pools_first_with_the_same_values_and_gradients(padding):
    # With autograd on, Sequential runs Conv2D(activation='relu') + MaxPooling2D as convolution,
    # pooling, ReLU (the ReLU on a quarter of the elements): the output and every gradient equal
    # the layer-by-layer path bit for bit, with windows all <= 0 (channel 0), tied maxima
    # (channels 0 and 1) and a NaN, and match PyTorch.
    torch = require_torch()
    model = keras.Sequential([keras.Input((8, 10, 2)), keras.layers.Conv2D(3, 2, activation="relu"),
                              keras.layers.MaxPooling2D(2, padding=padding), keras.layers.Flatten()])
    rng = np.random.default_rng(5)
    kernel = rng.standard_normal((2, 2, 2, 3)).astype(np.float32)
    kernel[..., :2] = 0.0
    model.set_weights([kernel, np.array([-0.5, 0.3, 0.1], np.float32)])
    x0 = rng.standard_normal((2, 8, 10, 2)).astype(np.float32)
    r = rng.standard_normal(tuple(model(x0).shape)).astype(np.float32)
    out, got = _outputs_and_grads(model, x0, r, False)
    ref_out, ref = _outputs_and_grads(model, x0, r, True)
    assert np.array_equal(out, ref_out)
    assert all(np.array_equal(a, b) for a, b in zip(got, ref))
    tx, tk = torch.tensor(x0, requires_grad=True), torch.tensor(kernel, requires_grad=True)
    tb = torch.tensor([-0.5, 0.3, 0.1], requires_grad=True)
    ty = torch.nn.functional.conv2d(tx.permute(0, 3, 1, 2), tk.permute(3, 2, 0, 1), tb).relu()
    ty = torch.nn.functional.max_pool2d(ty, 2, ceil_mode=padding == "same").permute(0, 2, 3, 1).flatten(1)
    (ty * torch.tensor(r)).sum().backward()
    assert_close(out, ty.detach().numpy(), 1e-5, 1e-6)
    for g, t in zip(got, (tx, tk, tb)):
        assert_close(g, t.grad.numpy(), 1e-5, 1e-5)
    x0[0, 3, 4, 1] = np.nan  # reaches the output and the gradients the same way on both paths
    out, got = _outputs_and_grads(model, x0, r, False)
    ref_out, ref = _outputs_and_grads(model, x0, r, True)
    assert np.isnan(out).any()
    assert np.array_equal(out, ref_out, equal_nan=True)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(got, ref))
