"""neurocore.keras against Keras 3 on TensorFlow (the oracle): same weights in -> same layer
outputs and gradients, same optimizer trajectories, same fit History, same summary() text."""
import io
import os
import re
import zipfile
from contextlib import redirect_stdout

import numpy as np
import pytest

import neurocore as nc
from neurocore import keras
from helpers import require_tf

RTOL, ATOL = 2e-5, 2e-5


@pytest.fixture(scope="module")
def tf():
    return require_tf()


def _tfk():
    import keras as tfk
    return tfk


def _pair(make, shape, tf_mod, seed=0, int_input=None):
    """The same layer built in both libraries, neurocore's weights copied from Keras's."""
    tfk = _tfk()
    theirs = make(tfk)
    ours = make(keras)
    if int_input:
        x = np.random.default_rng(seed).integers(0, int_input, size=shape)
    else:
        x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    theirs(x[:1] if not isinstance(x, list) else [a[:1] for a in x])
    ours(x[:1])
    ours.set_weights(theirs.get_weights())
    return theirs, ours, x


def _tf_forward_backward(layer, x, r, training, tf, int_input=False):
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        if not int_input:
            tape.watch(xt)
        y = layer(xt, training=training) if training is not None else layer(xt)
        loss = tf.reduce_sum(y * r)
    wrt = ([] if int_input else [xt]) + list(layer.trainable_weights)
    grads = tape.gradient(loss, wrt)
    return y.numpy(), [g.numpy() if not hasattr(g, "values") else tf.convert_to_tensor(g).numpy() for g in grads]


def _nc_forward_backward(layer, x, r, training, int_input=False):
    xt = nc.tensor(x) if int_input else nc.tensor(x, requires_grad=True)
    y = layer(xt, training=training) if training is not None else layer(xt)
    (y * nc.tensor(r)).sum().backward()
    grads = ([] if int_input else [xt.grad.numpy()]) + [w.grad.numpy() for w in layer.trainable_weights]
    return y.detach().numpy(), grads


LAYERS = [
    ("dense_relu", lambda k: k.layers.Dense(7, activation="relu"), (5, 6)),
    ("dense_3d_softmax", lambda k: k.layers.Dense(4, activation="softmax"), (2, 3, 6)),
    ("dense_gelu_nobias", lambda k: k.layers.Dense(5, activation="gelu", use_bias=False), (4, 3)),
    ("dense_leaky", lambda k: k.layers.Dense(5, activation="leaky_relu"), (4, 3)),
    ("dense_elu_tanh", lambda k: k.layers.Dense(5, activation="elu"), (4, 3)),
    ("conv2d_valid", lambda k: k.layers.Conv2D(4, (3, 3), activation="relu"), (2, 9, 8, 3)),
    ("conv2d_same_stride", lambda k: k.layers.Conv2D(5, 3, strides=2, padding="same"), (2, 9, 8, 2)),
    ("conv2d_same_even", lambda k: k.layers.Conv2D(3, (2, 4), strides=(2, 3), padding="same"), (1, 7, 10, 2)),
    ("conv2d_dilated", lambda k: k.layers.Conv2D(3, 3, dilation_rate=2, padding="same", activation="sigmoid"),
     (2, 9, 9, 2)),
    ("conv1d_same", lambda k: k.layers.Conv1D(4, 3, padding="same", activation="tanh"), (2, 11, 3)),
    ("conv1d_causal", lambda k: k.layers.Conv1D(4, 2, padding="causal", dilation_rate=2), (2, 9, 3)),
    ("conv1d_strided", lambda k: k.layers.Conv1D(4, 3, strides=2), (2, 12, 3)),
    ("maxpool_valid", lambda k: k.layers.MaxPooling2D((2, 2)), (2, 7, 9, 3)),
    ("maxpool_same", lambda k: k.layers.MaxPooling2D((2, 2), padding="same"), (2, 7, 9, 3)),
    ("maxpool_3_2_same", lambda k: k.layers.MaxPooling2D(3, strides=2, padding="same"), (2, 8, 9, 2)),
    ("avgpool_same", lambda k: k.layers.AveragePooling2D((2, 2), padding="same"), (2, 7, 5, 3)),
    ("avgpool_valid", lambda k: k.layers.AveragePooling2D(3, strides=1), (2, 6, 5, 3)),
    ("gap", lambda k: k.layers.GlobalAveragePooling2D(), (2, 5, 4, 3)),
    ("flatten", lambda k: k.layers.Flatten(), (2, 3, 4, 5)),
    ("reshape", lambda k: k.layers.Reshape((4, 15)), (2, 3, 4, 5)),
    ("layernorm", lambda k: k.layers.LayerNormalization(), (3, 4, 6)),
    ("batchnorm_dense", lambda k: k.layers.BatchNormalization(), (8, 5)),
    ("batchnorm_image", lambda k: k.layers.BatchNormalization(), (4, 3, 5, 6)),
]


@pytest.mark.parametrize("name,make,shape", LAYERS, ids=[l[0] for l in LAYERS])
@pytest.mark.parametrize("training", [False, True])
def test_layer_forward_and_gradients_match_keras(tf, name, make, shape, training):
    theirs, ours, x = _pair(make, shape, tf)
    r = np.random.default_rng(1).standard_normal(theirs(x).shape).astype(np.float32)
    ty, tg = _tf_forward_backward(theirs, x, r, training, tf)
    oy, og = _nc_forward_backward(ours, x, r, training)
    np.testing.assert_allclose(oy, ty, rtol=RTOL, atol=ATOL)
    assert len(og) == len(tg)
    for a, b in zip(og, tg):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    if "batchnorm" in name:  # the moving statistics moved the same way (or not at all)
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_embedding_matches_keras(tf):
    theirs, ours, x = _pair(lambda k: k.layers.Embedding(11, 4), (3, 5), tf, int_input=11)
    r = np.random.default_rng(1).standard_normal((3, 5, 4)).astype(np.float32)
    ty, tg = _tf_forward_backward(theirs, x, r, None, tf, int_input=True)
    oy, og = _nc_forward_backward(ours, x, r, None, int_input=True)
    np.testing.assert_allclose(oy, ty, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(og[0], tg[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(IndexError, match=r"\[embedding.*out of range"):
        ours(nc.tensor(np.array([[0, 11]])))


def test_weight_layouts_and_initialisers_are_keras():
    keras.clear_session()
    nc.manual_seed(0)
    d = keras.layers.Dense(300, input_shape=(200,))
    m = keras.Sequential([d, keras.layers.Dense(2)])
    kernel, bias = d.get_weights()
    assert kernel.shape == (200, 300) and bias.shape == (300,)
    assert np.all(bias == 0)
    limit = np.sqrt(6 / 500)  # glorot_uniform
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.98 * limit
    assert abs(kernel.std() - limit / np.sqrt(3)) < 0.01 * limit
    c = keras.layers.Conv2D(16, (3, 5))
    c.build((None, 10, 10, 4))
    assert c.get_weights()[0].shape == (3, 5, 4, 16)
    climit = np.sqrt(6 / (15 * 4 + 15 * 16))
    assert np.abs(c.get_weights()[0]).max() <= climit
    assert len(m.get_weights()) == 4


def _functional(k):
    a = k.Input((6,), name="a")
    b = k.Input((4,), name="b")
    shared = k.layers.Dense(5, activation="tanh", name="shared")
    h1 = shared(k.layers.Dense(6, name="pa")(a))
    h2 = shared(k.layers.Dense(6, name="pb")(b))
    s = k.layers.Add(name="add")([h1, h2])
    out1 = k.layers.Dense(3, activation="softmax", name="cls")(s)
    out2 = k.layers.Dense(1, name="reg")(k.layers.Concatenate(name="cat")([h1, h2]))
    return k.Model([a, b], [out1, out2], name="two_heads")


def test_functional_multi_io_shared_layer_matches_keras(tf):
    tfk = _tfk()
    theirs, ours = _functional(tfk), _functional(keras)
    ours.set_weights(theirs.get_weights())
    rng = np.random.default_rng(0)
    xa, xb = rng.standard_normal((8, 6)).astype(np.float32), rng.standard_normal((8, 4)).astype(np.float32)
    for t, o in zip(theirs.predict([xa, xb], verbose=0), ours.predict([xa, xb], verbose=0)):
        np.testing.assert_allclose(o, t, rtol=RTOL, atol=ATOL)
    assert [l.name for l in ours.layers] == [l.name for l in theirs.layers] or \
        sorted(l.name for l in ours.layers) == sorted(l.name for l in theirs.layers)
    ya, yb = rng.integers(0, 3, 8), rng.standard_normal((8, 1)).astype(np.float32)
    for m in (theirs, ours):
        m.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"],
                  metrics={"cls": ["accuracy"]})
    ht = theirs.fit([xa, xb], [ya, yb], epochs=2, batch_size=4, shuffle=False, verbose=0).history
    ho = ours.fit([xa, xb], [ya, yb], epochs=2, batch_size=4, shuffle=False, verbose=0).history
    assert set(ho) == set(ht)
    for k in ht:
        np.testing.assert_allclose(ho[k], ht[k], rtol=1e-4, atol=1e-5, err_msg=k)


def _summary_text(model):
    lines = []
    model.summary(print_fn=lambda s, **kw: lines.append(s))
    return "\n".join(lines).rstrip("\n")


def _seed_mlp(k):
    return k.Sequential([
        k.layers.Dense(128, activation='relu', input_shape=(784,)),
        k.layers.Dropout(0.2),
        k.layers.Dense(64, activation='relu'),
        k.layers.Dropout(0.2),
        k.layers.Dense(10, activation='softmax')
    ])


def _seed_cnn(k):
    return k.Sequential([
        k.layers.Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)),
        k.layers.MaxPooling2D((2, 2)),
        k.layers.Conv2D(64, (3, 3), activation='relu'),
        k.layers.MaxPooling2D((2, 2)),
        k.layers.Flatten(),
        k.layers.Dense(64, activation='relu'),
        k.layers.Dense(10, activation='softmax')
    ])


def _bn_model(k):
    return k.Sequential([k.Input((8, 8, 3)), k.layers.Conv2D(4, 3, padding="same"), k.layers.BatchNormalization(),
                         k.layers.GlobalAveragePooling2D(), k.layers.Dense(2)], name="bn_model")


@pytest.mark.parametrize("make", [_seed_mlp, _seed_cnn, _bn_model, _functional])
def test_summary_is_keras_text(tf, make):
    tfk = _tfk()
    tfk.backend.clear_session()
    keras.backend.clear_session()
    theirs, ours = make(tfk), make(keras)
    assert _summary_text(ours) == _summary_text(theirs)
    assert ours.count_params() == theirs.count_params()
    # After training the optimizer's state is counted too.
    if make is _seed_mlp:
        x, y = np.zeros((4, 784), np.float32), np.zeros(4, np.int64)
        for m in (theirs, ours):
            m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
            m.fit(x, y, verbose=0)
        assert _summary_text(ours) == _summary_text(theirs)


def _small_model(k, reg=None):
    return k.Sequential([k.Input((6,)), k.layers.Dense(8, activation="relu", kernel_regularizer=reg),
                         k.layers.Dense(3, activation="softmax")])


OPTIMIZERS = [
    ("adam", lambda k: k.optimizers.Adam(learning_rate=0.01)),
    ("adam_amsgrad", lambda k: k.optimizers.Adam(learning_rate=0.01, amsgrad=True)),
    ("adamw", lambda k: k.optimizers.AdamW(learning_rate=0.01, weight_decay=0.1)),
    ("sgd", lambda k: k.optimizers.SGD(learning_rate=0.1)),
    ("sgd_nesterov", lambda k: k.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)),
    ("rmsprop", lambda k: k.optimizers.RMSprop(learning_rate=0.01)),
    ("rmsprop_centered_momentum", lambda k: k.optimizers.RMSprop(learning_rate=0.01, momentum=0.5, centered=True)),
]


@pytest.mark.parametrize("name,make", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_optimizer_trajectory_matches_keras(tf, name, make):
    tfk = _tfk()
    theirs, ours = _small_model(tfk), _small_model(keras)
    ours.set_weights(theirs.get_weights())
    theirs.compile(make(tfk), "sparse_categorical_crossentropy")
    ours.compile(make(keras), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    for step in range(6):
        x = rng.standard_normal((16, 6)).astype(np.float32)
        y = rng.integers(0, 3, 16)
        lt, lo = theirs.train_on_batch(x, y), ours.train_on_batch(x, y)
        np.testing.assert_allclose(lo, lt, rtol=1e-4)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_sgd_momentum_follows_keras_when_the_learning_rate_changes(tf):
    tfk = _tfk()
    theirs, ours = _small_model(tfk), _small_model(keras)
    ours.set_weights(theirs.get_weights())
    theirs.compile(tfk.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    ours.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    for step in range(6):
        x, y = rng.standard_normal((16, 6)).astype(np.float32), rng.integers(0, 3, 16)
        if step == 3:
            theirs.optimizer.learning_rate = 0.02
            ours.optimizer.learning_rate = 0.02
        theirs.train_on_batch(x, y)
        ours.train_on_batch(x, y)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


LOSSES = [
    ("scce", "sparse_categorical_crossentropy", "softmax", "int"),
    ("scce_logits", lambda k: k.losses.SparseCategoricalCrossentropy(from_logits=True), None, "int"),
    ("cce", "categorical_crossentropy", "softmax", "onehot"),
    ("cce_logits", lambda k: k.losses.CategoricalCrossentropy(from_logits=True), None, "onehot"),
    ("bce", "binary_crossentropy", "sigmoid", "binary"),
    ("bce_logits", lambda k: k.losses.BinaryCrossentropy(from_logits=True), None, "binary"),
    ("mse", "mse", None, "real"),
    ("mae", "mae", "tanh", "real"),
]


@pytest.mark.parametrize("name,loss,act,target", LOSSES, ids=[l[0] for l in LOSSES])
def test_fit_history_matches_keras(tf, name, loss, act, target):
    """Same weights and data, no shuffling: every History value (training loss with the L2
    penalty, running accuracy, validation split) equals Keras's."""
    tfk = _tfk()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 6)).astype(np.float32)
    labels = rng.integers(0, 3, 40)
    units = 1 if target == "binary" else 3
    y = {"int": labels, "onehot": np.eye(3, dtype=np.float32)[labels],
         "binary": (labels[:, None] > 0).astype(np.float32),
         "real": rng.standard_normal((40, 3)).astype(np.float32)}[target]

    def make(k):
        return k.Sequential([k.Input((6,)), k.layers.Dense(8, activation="relu",
                                                           kernel_regularizer=k.regularizers.l2(1e-3)),
                             k.layers.Dense(units, activation=act)])
    theirs, ours = make(tfk), make(keras)
    ours.set_weights(theirs.get_weights())
    metrics = ["accuracy"] if target != "real" else ["mae"]
    theirs.compile("adam", loss(tfk) if callable(loss) else loss, metrics=metrics)
    ours.compile("adam", loss(keras) if callable(loss) else loss, metrics=metrics)
    kw = dict(epochs=3, batch_size=8, validation_split=0.25, shuffle=False, verbose=0)
    if target == "int":
        kw["class_weight"] = {0: 1.0, 1: 2.0, 2: 0.5}
    ht, ho = theirs.fit(x, y, **kw).history, ours.fit(x, y, **kw).history
    assert list(ho) == list(ht)
    for k in ht:
        np.testing.assert_allclose(ho[k], ht[k], rtol=2e-4, atol=1e-5, err_msg=k)
    et = theirs.evaluate(x, y, verbose=0)
    eo = ours.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(eo, et, rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


class _Scores(keras.callbacks.Callback):
    """Puts a scripted 'score' into the logs and records the weights at each epoch end."""

    def __init__(self, scores):
        super().__init__()
        self.scores, self.weights = scores, []

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.scores[epoch]
        self.weights.append(self.model.get_weights())


@pytest.mark.parametrize("scores,epochs,patience,stopped", [
    ([5, 4, 3, 3.5, 3.6, 3.7, 3.8, 3.9], 8, 2, 4),      # stops 2 epochs after the best (epoch index 2)
    ([5, 4, 2, 3, 3.5, 6, 7, 8], 4, 3, None),            # epochs run out before patience: best is still restored
])
def test_early_stopping_restores_the_best_epoch(scores, epochs, patience, stopped):
    keras.clear_session()
    rec = _Scores(scores)
    es = keras.callbacks.EarlyStopping(monitor="score", mode="min", patience=patience, restore_best_weights=True)
    m = _small_model(keras)
    m.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    h = m.fit(rng.standard_normal((32, 6)).astype(np.float32), rng.integers(0, 3, 32), epochs=epochs,
              callbacks=[rec, es], verbose=0)
    best = int(np.argmin(scores[:len(h.history["loss"])]))
    assert len(h.history["loss"]) == (stopped + 1 if stopped is not None else epochs)
    assert es.best_epoch == best
    for a, b in zip(m.get_weights(), rec.weights[best]):
        np.testing.assert_array_equal(a, b)


def test_callbacks_follow_keras(tf, tmp_path):
    """EarlyStopping (min_delta, baseline, start_from_epoch), ReduceLROnPlateau and
    LearningRateScheduler give Keras's epochs and learning rates for the same scripted metric."""
    tfk = _tfk()
    scores = [1.0, 0.9, 0.95, 0.899, 0.97, 0.96, 0.85, 0.9, 0.91, 0.92, 0.93, 0.94]
    results = []
    for k in (tfk, keras):
        class Inject(k.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs["score"] = scores[epoch]
        m = _small_model(k)
        m.compile(k.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        cbs = [Inject(),
               k.callbacks.ReduceLROnPlateau("score", mode="min", factor=0.5, patience=1, min_delta=0.01, cooldown=1),
               k.callbacks.LearningRateScheduler(lambda e, lr: lr * 0.9 if e % 3 == 2 else lr),
               k.callbacks.EarlyStopping("score", mode="min", min_delta=0.005, patience=3, baseline=0.98,
                                         start_from_epoch=1),
               k.callbacks.CSVLogger(str(tmp_path / f"log_{len(results)}.csv"))]
        rng = np.random.default_rng(0)
        h = m.fit(rng.standard_normal((16, 6)).astype(np.float32), rng.integers(0, 3, 16), epochs=12,
                  callbacks=cbs, verbose=0)
        results.append(h.history)
    theirs, ours = results
    assert list(ours) == list(theirs)
    assert len(ours["loss"]) == len(theirs["loss"])
    np.testing.assert_allclose(ours["learning_rate"], theirs["learning_rate"], rtol=1e-6)
    rows = [open(tmp_path / f"log_{i}.csv").read().splitlines() for i in range(2)]
    assert rows[1][0] == rows[0][0] and len(rows[1]) == len(rows[0])


def test_terminate_on_nan_and_checkpoint(tmp_path):
    keras.clear_session()
    m = _small_model(keras)
    m.compile(keras.optimizers.SGD(0.01), "mse")
    x, y = np.ones((8, 6), np.float32), np.ones((8, 3), np.float32)
    y[2:] = np.nan  # the second batch's loss is NaN
    h = m.fit(x, y, epochs=3, batch_size=2, callbacks=[keras.callbacks.TerminateOnNaN()], verbose=0)
    assert len(h.history["loss"]) == 1 and np.isnan(h.history["loss"][0])

    scores = [3.0, 2.0, 2.5, 1.0]
    m = _small_model(keras)
    m.compile("adam", "sparse_categorical_crossentropy")
    rec = _Scores(scores)
    path = tmp_path / "best.keras"
    ck = keras.callbacks.ModelCheckpoint(path, monitor="score", save_best_only=True, mode="min")
    saved = []
    spy = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: saved.append(os.path.getmtime(path)))
    rng = np.random.default_rng(0)
    m.fit(rng.standard_normal((16, 6)).astype(np.float32), rng.integers(0, 3, 16), epochs=4,
          callbacks=[rec, ck, spy], verbose=0)
    loaded = keras.models.load_model(path)
    for a, b in zip(loaded.get_weights(), rec.weights[3]):
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []


def test_save_and_load_functional_and_sequential(tmp_path):
    keras.clear_session()
    for model, x in ((_functional(keras), [np.ones((3, 6), np.float32), np.arange(12, dtype=np.float32).reshape(3, 4)]),
                     (_seed_cnn(keras), np.random.default_rng(0).random((2, 28, 28, 1), np.float32))):
        model.compile("adam", "mse" if isinstance(x, list) else "sparse_categorical_crossentropy")
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        with zipfile.ZipFile(path) as z:
            assert sorted(z.namelist()) == ["config.json", "metadata.json", "model.weights.safetensors"]
        loaded = keras.models.load_model(path)
        assert type(loaded) is type(model) and loaded.compiled
        before, after = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
        for a, b in zip(*(v if isinstance(v, list) else [v] for v in (before, after))):
            np.testing.assert_array_equal(a, b)
        wpath = tmp_path / "w.weights.h5"
        model.save_weights(wpath)
        loaded.set_weights([w * 0 for w in loaded.get_weights()])
        loaded.load_weights(wpath)
        for a, b in zip(model.get_weights(), loaded.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_subclassed_model_trains():
    keras.clear_session()

    class MLP(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(16, activation="relu")
            self.drop = keras.layers.Dropout(0.5)
            self.out = keras.layers.Dense(2)

        def call(self, x, training=False):
            return self.out(self.drop(self.hidden(x), training=training))

    nc.manual_seed(0)
    m = MLP()
    m.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    h = m.fit(x, y, epochs=15, batch_size=20, verbose=0)
    assert h.history["accuracy"][-1] > 0.9
    assert len(m.layers) == 3 and len(m.trainable_weights) == 4
    np.testing.assert_array_equal(m.predict(x[:5], verbose=0), m.predict(x[:5], verbose=0))


def test_progress_output():
    keras.clear_session()
    m = _small_model(keras)
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = np.zeros((40, 6), np.float32), np.zeros(40, np.int64)
    for verbose, pattern in [
        (2, r"^Epoch 1/2\n3/3 - \d+s - \d+(us|ms|s)/step - accuracy: \S+ - loss: \S+ - val_accuracy: \S+ - "
            r"val_loss: \S+\nEpoch 2/2\n3/3 - .*\n$"),
        (1, r"^Epoch 1/2\n3/3 ━{20} \d+s \d+(us|ms|s)/step - accuracy: \S+ - loss: \S+ - val_accuracy: \S+ - "
            r"val_loss: \S+\nEpoch 2/2\n3/3 ━{20} .*\n$"),
        (0, r"^$")]:
        out = io.StringIO()
        with redirect_stdout(out):
            m.fit(x, y, epochs=2, batch_size=12, validation_split=0.1, verbose=verbose)
        assert re.match(pattern, out.getvalue()), out.getvalue()


def test_bad_input_raises_clear_errors():
    keras.clear_session()
    m = _seed_mlp(keras)
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.zeros((10, 784), np.float32)
    with pytest.raises(ValueError, match=r"\[dense\].*expected shape=\(None, 784\), found shape=\(10, 783\)"):
        m.predict(np.zeros((10, 783), np.float32), verbose=0)
    with pytest.raises(ValueError, match=r"label 10 is out of range for 10 classes"):
        m.fit(x, np.full(10, 10), verbose=0)
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\)"):
        m.fit(x, np.zeros(10), validation_split=1.0, verbose=0)
    with pytest.raises(ValueError, match=r"unknown loss 'sparse_crossentropy'"):
        m.compile("adam", "sparse_crossentropy")
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm'"):
        m.compile("adamm", "mse")
    with pytest.raises(ValueError, match=r"unknown activation 'rellu'"):
        keras.layers.Dense(3, activation="rellu")
    with pytest.raises(RuntimeError, match=r"must call compile"):
        _small_model(keras).fit(x[:, :6], np.zeros(10), verbose=0)
    with pytest.raises(ValueError, match=r"same number of samples"):
        m.fit(x, np.zeros(9), verbose=0)
    c = _seed_cnn(keras)
    with pytest.raises(ValueError, match=r"\[conv2d.*expected shape=\(None, 28, 28, 1\)"):
        c.predict(np.zeros((2, 28, 28), np.float32), verbose=0)


def test_history_plot(tmp_path):
    m = _small_model(keras)
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(np.zeros((20, 6), np.float32), np.zeros(20), epochs=2, validation_split=0.2, verbose=0)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"pip install matplotlib"):
            h.plot(path=tmp_path / "c.png")
        return
    fig = h.plot(path=tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
