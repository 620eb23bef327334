"""neurocore.keras recurrent and attention layers against Keras 3 on TensorFlow (the oracle):
SimpleRNN, LSTM, GRU, Bidirectional, TimeDistributed and MultiHeadAttention with the same weights
give the same outputs, states, attention scores and gradients (inputs and weights); masks,
dropout masks, summaries, saving, a fit on real data, and clear errors on bad input."""
import io
from contextlib import redirect_stdout

import numpy as np
import pytest

import neurocore as nc
from neurocore import _core, _math, keras
from neurocore.nn import functional as F
from helpers import require_tf

TOL = dict(rtol=1e-4, atol=2e-5)


@pytest.fixture(scope="module")
def tf():
    return require_tf()


def _tfk():
    import keras as tfk
    return tfk


def _flat(out):
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _flat(o)]
    return [out]


def _build_pair(make, inputs, seed=0):
    """The layer in both libraries, built on `inputs`, with the same (Keras-drawn, perturbed so that
    biases are non-zero) weights."""
    tfk = _tfk()
    theirs, ours = make(tfk), make(keras)
    theirs(*inputs)
    ours(*inputs)
    rng = np.random.default_rng(seed)
    weights = [w + 0.2 * rng.standard_normal(w.shape).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return theirs, ours


def _compare(tf, make, inputs, seed=0, **call_kwargs):
    """Outputs and the gradients of sum(output * r) w.r.t. every input and weight agree."""
    theirs, ours = _build_pair(make, inputs, seed)
    tin = [tf.constant(x) for x in inputs]
    with tf.GradientTape() as tape:
        for t in tin:
            tape.watch(t)
        t_out = _flat(theirs(*tin, **call_kwargs))
        rng = np.random.default_rng(seed + 1)
        rs = [rng.standard_normal(tuple(o.shape)).astype(np.float32) for o in t_out]
        loss = sum(tf.reduce_sum(o * r) for o, r in zip(t_out, rs))
    t_grads = tape.gradient(loss, tin + list(theirs.trainable_weights))
    nin = [nc.tensor(x, requires_grad=True) for x in inputs]
    n_out = _flat(ours(*nin, **call_kwargs))
    assert len(n_out) == len(t_out)
    total = None
    for o, r in zip(n_out, rs):
        term = (o * nc.tensor(r)).sum()
        total = term if total is None else total + term
    total.backward()
    for a, b in zip(n_out, t_out):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.detach().numpy(), b.numpy(), **TOL)
    n_grads = [t.grad for t in nin] + [w.grad for w in ours.trainable_weights]
    assert len(n_grads) == len(t_grads)
    for i, (a, b) in enumerate(zip(n_grads, t_grads)):
        b = np.zeros(a.shape, np.float32) if b is None else tf.convert_to_tensor(b).numpy()
        a = np.zeros(b.shape, np.float32) if a is None else a.numpy()
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=f"gradient {i}")
    return theirs, ours


X = np.random.default_rng(0).standard_normal((3, 6, 4)).astype(np.float32)
MASK = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [0, 1, 0, 1, 1, 0]], bool)  # padding and holes

RNN_CASES = [
    ("simple_rnn", lambda k, **a: k.layers.SimpleRNN(5, **a)),
    ("simple_rnn_relu", lambda k, **a: k.layers.SimpleRNN(5, activation="relu", **a)),
    ("lstm", lambda k, **a: k.layers.LSTM(5, **a)),
    ("lstm_nobias", lambda k, **a: k.layers.LSTM(5, use_bias=False, **a)),
    ("gru", lambda k, **a: k.layers.GRU(5, **a)),
    ("gru_nobias", lambda k, **a: k.layers.GRU(5, use_bias=False, **a)),
    # the per-step path: other activations, reset_after=False
    ("simple_rnn_gelu", lambda k, **a: k.layers.SimpleRNN(5, activation="gelu", **a)),
    ("lstm_hard_sigmoid_relu", lambda k, **a: k.layers.LSTM(5, activation="relu", recurrent_activation="hard_sigmoid",
                                                            **a)),
    ("gru_reset_before", lambda k, **a: k.layers.GRU(5, reset_after=False, **a)),
    ("gru_elu", lambda k, **a: k.layers.GRU(5, activation="elu", **a)),
]
VARIANTS = [
    ("sequences_states", dict(return_sequences=True, return_state=True), None),
    ("last", dict(), None),
    ("backwards", dict(return_sequences=True, return_state=True, go_backwards=True), None),
    ("masked", dict(return_sequences=True, return_state=True), MASK),
    ("masked_backwards_last", dict(go_backwards=True, return_state=True), MASK),
]


PER_STEP = {"simple_rnn_gelu", "lstm_hard_sigmoid_relu", "gru_reset_before", "gru_elu"}
RNN_PARAMS = [pytest.param(make, args, mask, id=f"{name}-{variant}") for name, make in RNN_CASES
              for variant, args, mask in VARIANTS
              if name not in PER_STEP or variant in ("sequences_states", "masked", "masked_backwards_last")]


@pytest.mark.parametrize("make,args,mask", RNN_PARAMS)
def test_recurrent_layers_match_keras(tf, make, args, mask):
    kwargs = {} if mask is None else {"mask": mask}
    _compare(tf, lambda k: make(k, **args), [X], **kwargs)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_initial_state_matches_keras(tf, kind):
    n_states = 2 if kind == "LSTM" else 1
    states = [np.random.default_rng(5 + i).standard_normal((3, 5)).astype(np.float32) for i in range(n_states)]
    theirs, ours = _build_pair(lambda k: getattr(k.layers, kind)(5, return_sequences=True, return_state=True), [X])
    for mask in (None, MASK):
        t = _flat(theirs(X, initial_state=[tf.constant(s) for s in states], mask=mask))
        o = _flat(ours(X, initial_state=[nc.tensor(s) for s in states], mask=mask))
        for a, b in zip(o, t):
            np.testing.assert_allclose(a.detach().numpy(), b.numpy(), **TOL)


def test_default_configuration_runs_one_fused_kernel_call(monkeypatch):
    calls = []
    real = _core._rnn_layer
    monkeypatch.setattr(_core, "_rnn_layer", lambda *a: calls.append(a[0]) or real(*a))
    keras.clear_session()
    for layer in (keras.layers.LSTM(5, return_sequences=True), keras.layers.GRU(5), keras.layers.SimpleRNN(5)):
        calls.clear()
        layer(X)
        layer(X, mask=MASK)
        layer(X, training=True)
        assert len(calls) == 3, type(layer).__name__
    calls.clear()
    bi = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))
    bi(X, mask=MASK)
    assert calls == [2, 2]
    calls.clear()
    keras.layers.LSTM(5, activation="relu")(X)  # the per-step path
    keras.layers.LSTM(5, recurrent_dropout=0.3)(X, training=True)
    assert calls == []
    keras.layers.LSTM(5, recurrent_dropout=0.3)(X, training=False)  # inference: no dropout, fused again
    assert calls == [2]


def _capture_dropout(monkeypatch):
    masks = []
    real = _math.dropout

    def spy(x, p=0.5, training=True, inplace=False):
        out = real(x, p, training, inplace)
        masks.append(out.detach().numpy())
        return out
    monkeypatch.setattr(_math, "dropout", spy)
    return masks


@pytest.mark.parametrize("kind,recurrent", [("LSTM", 0.0), ("GRU", 0.0), ("SimpleRNN", 0.0), ("LSTM", 0.4),
                                            ("GRU", 0.4), ("SimpleRNN", 0.4)])
def test_dropout_masks_follow_keras(tf, monkeypatch, kind, recurrent):
    """Keras draws one input mask per sequence (one per gate with recurrent dropout) and one
    recurrent mask per gate; given the masks neurocore drew, Keras gives the same outputs and
    gradients."""
    make = lambda k: getattr(k.layers, kind)(5, dropout=0.3, recurrent_dropout=recurrent,  # noqa: E731
                                             return_sequences=True)
    theirs, ours = _build_pair(make, [X])
    masks = _capture_dropout(monkeypatch)
    nc.manual_seed(3)
    r = np.random.default_rng(4).standard_normal((3, 6, 5)).astype(np.float32)
    xt = nc.tensor(X, requires_grad=True)
    y = ours(xt, training=True)
    (y * nc.tensor(r)).sum().backward()
    out = y.detach().numpy()
    grads = [xt.grad.numpy()] + [w.grad.numpy() for w in ours.trainable_weights]
    gates = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[kind]
    n = gates if recurrent and kind != "SimpleRNN" else 1
    input_masks, rec_masks = masks[:n], masks[n:]
    assert all(m.shape == (3, 1, 4) for m in input_masks)
    assert set(np.unique(np.concatenate([m.ravel() for m in masks]))) <= {0.0, np.float32(1 / 0.7), np.float32(1 / 0.6)}
    cell = theirs.cell
    cell._dropout_mask = [tf.constant(m[:, 0]) for m in input_masks] if n > 1 else tf.constant(input_masks[0][:, 0])
    if recurrent:
        assert len(rec_masks) == n and all(m.shape == (3, 5) for m in rec_masks)
        cell._recurrent_dropout_mask = [tf.constant(m) for m in rec_masks] if n > 1 else tf.constant(rec_masks[0])
    else:
        assert rec_masks == []
    xtf = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(xtf)
        theirs_out = theirs(xtf, training=True)
        loss = tf.reduce_sum(theirs_out * r)
    np.testing.assert_allclose(out, theirs_out.numpy(), **TOL)
    for a, b in zip(grads, tape.gradient(loss, [xtf] + list(theirs.trainable_weights))):
        np.testing.assert_allclose(a, tf.convert_to_tensor(b).numpy(), rtol=1e-4, atol=1e-4)
    assert not np.allclose(out, ours(X, training=False).detach().numpy())


BIDIRECTIONAL = [("LSTM", True, None, "concat"), ("GRU", True, MASK, "sum"), ("SimpleRNN", False, MASK, "mul"),
                 ("LSTM", False, None, "ave"), ("GRU", True, MASK, None), ("LSTM", True, MASK, "concat"),
                 ("GRU", False, None, None)]


@pytest.mark.parametrize("kind,sequences,mask,merge_mode", BIDIRECTIONAL,
                         ids=[f"{b[0]}-{'seq' if b[1] else 'last'}-{'mask' if b[2] is not None else 'nomask'}-{b[3]}"
                              for b in BIDIRECTIONAL])
def test_bidirectional_matches_keras(tf, kind, sequences, mask, merge_mode):
    make = lambda k: k.layers.Bidirectional(getattr(k.layers, kind)(4, return_sequences=sequences,  # noqa: E731
                                                                   return_state=True), merge_mode=merge_mode)
    _compare(tf, make, [X], **({} if mask is None else {"mask": mask}))


def test_bidirectional_backward_layer_and_weight_order(tf):
    make = lambda k: k.layers.Bidirectional(k.layers.LSTM(4, return_sequences=True),  # noqa: E731
                                            backward_layer=k.layers.GRU(3, return_sequences=True, go_backwards=True))
    theirs, ours = _compare(tf, make, [X])
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    assert ours.forward_layer.name.startswith("forward_")
    with pytest.raises(ValueError, match=r"\[Bidirectional\] invalid merge_mode 'max'"):
        keras.layers.Bidirectional(keras.layers.LSTM(3), merge_mode="max")
    with pytest.raises(ValueError, match=r"different go_backwards"):
        keras.layers.Bidirectional(keras.layers.LSTM(3), backward_layer=keras.layers.LSTM(3))


@pytest.mark.parametrize("inner,shape", [
    (lambda k: k.layers.Dense(3, activation="tanh"), (3, 6, 4)),
    (lambda k: k.layers.Conv2D(2, 3, padding="same"), (2, 3, 5, 5, 2)),
])
def test_time_distributed_matches_keras(tf, inner, shape):
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    theirs, ours = _compare(tf, lambda k: k.layers.TimeDistributed(inner(k)), [x])
    assert ours.count_params() == theirs.count_params()


Q = np.random.default_rng(3).standard_normal((2, 5, 6)).astype(np.float32)
V = np.random.default_rng(4).standard_normal((2, 7, 8)).astype(np.float32)
ATTN_MASK = np.random.default_rng(5).random((2, 5, 7)) > 0.3
ATTN_MASK[0, 1] = False  # a query with nothing to attend to
MHA_CASES = [
    ("self", lambda k: k.layers.MultiHeadAttention(2, 3), [Q, Q], {}),
    ("cross", lambda k: k.layers.MultiHeadAttention(2, 3), [Q, V], {}),
    ("key_value", lambda k: k.layers.MultiHeadAttention(3, 2, value_dim=4), [Q, V, V[..., :5]], {}),
    ("mask", lambda k: k.layers.MultiHeadAttention(2, 3), [Q, V], {"attention_mask": ATTN_MASK}),
    ("causal", lambda k: k.layers.MultiHeadAttention(2, 3), [Q, Q], {"use_causal_mask": True}),
    ("causal_mask", lambda k: k.layers.MultiHeadAttention(2, 3), [Q, V], {"use_causal_mask": True,
                                                                          "attention_mask": ATTN_MASK}),
    ("output_shape_nobias", lambda k: k.layers.MultiHeadAttention(2, 3, use_bias=False, output_shape=(2, 3)), [Q, V],
     {}),
    ("scores", lambda k: k.layers.MultiHeadAttention(2, 3), [Q, V], {"return_attention_scores": True}),
    ("scores_mask", lambda k: k.layers.MultiHeadAttention(2, 3), [Q, V],
     {"return_attention_scores": True, "attention_mask": ATTN_MASK}),
    ("scores_causal", lambda k: k.layers.MultiHeadAttention(2, 3), [Q, Q],
     {"return_attention_scores": True, "use_causal_mask": True}),
    ("image_2d", lambda k: k.layers.MultiHeadAttention(2, 3), [Q.reshape(2, 5, 2, 3)] * 2, {}),
    ("image_axis_2_scores", lambda k: k.layers.MultiHeadAttention(2, 3, attention_axes=(2,)),
     [Q.reshape(2, 5, 2, 3)] * 2, {"return_attention_scores": True}),
]


@pytest.mark.parametrize("name,make,inputs,kwargs", MHA_CASES, ids=[c[0] for c in MHA_CASES])
def test_multi_head_attention_matches_keras(tf, name, make, inputs, kwargs):
    theirs, ours = _compare(tf, make, inputs, **kwargs)
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]


def test_multi_head_attention_runs_the_fused_kernel(monkeypatch):
    calls = []
    real = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or real(*a, **k))
    mha = keras.layers.MultiHeadAttention(2, 3)
    mha(Q, V)
    mha(Q, V, attention_mask=ATTN_MASK)
    mha(Q, V, use_causal_mask=True)
    assert len(calls) == 3
    mha(Q, V, return_attention_scores=True)
    assert len(calls) == 3


def test_multi_head_attention_dropout_only_in_training(tf):
    theirs, ours = _build_pair(lambda k: k.layers.MultiHeadAttention(2, 3, dropout=0.5), [Q, V])
    inference = ours(Q, V, training=False).detach().numpy()
    np.testing.assert_allclose(inference, theirs(Q, V, training=False).numpy(), **TOL)
    nc.manual_seed(0)
    first = ours(Q, V, training=True).detach().numpy()
    assert not np.allclose(first, inference) and not np.allclose(ours(Q, V, training=True).detach().numpy(), first)
    nc.manual_seed(0)
    np.testing.assert_array_equal(ours(Q, V, training=True).detach().numpy(), first)


def test_multi_head_attention_keras_layouts():
    keras.clear_session()
    mha = keras.layers.MultiHeadAttention(4, 8, value_dim=5)
    mha(Q, V)
    assert [w.shape for w in mha.get_weights()] == [(6, 4, 8), (4, 8), (8, 4, 8), (4, 8), (8, 4, 5), (4, 5),
                                                     (4, 5, 6), (6,)]
    assert mha.count_params() == sum(int(np.prod(w.shape)) for w in mha.get_weights())


def test_masks_flow_from_embedding_through_a_model(tf):
    """Embedding(mask_zero=True) masks padding (and holes) for every recurrent layer downstream,
    through Bidirectional, TimeDistributed and Dense, as in Keras."""
    def make(k):
        return k.Sequential([k.Input((9,)), k.layers.Embedding(30, 6, mask_zero=True),
                             k.layers.Bidirectional(k.layers.LSTM(5, return_sequences=True)),
                             k.layers.Dense(4), k.layers.GRU(4, return_sequences=True),
                             k.layers.TimeDistributed(k.layers.Dense(3)), k.layers.SimpleRNN(3)])
    x = np.random.default_rng(6).integers(1, 30, (4, 9))
    x[0, 5:] = 0
    x[1, 1:] = 0
    x[2, :3] = 0
    x[3, 4] = 0
    tfk = _tfk()
    theirs, ours = make(tfk), make(keras)
    weights = [w + 0.2 * np.random.default_rng(7).standard_normal(w.shape).astype(np.float32)
               for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), **TOL)
    unmasked = keras.Sequential([keras.Input((9,)), keras.layers.Embedding(30, 6),
                                 keras.layers.Bidirectional(keras.layers.LSTM(5, return_sequences=True)),
                                 keras.layers.Dense(4), keras.layers.GRU(4, return_sequences=True),
                                 keras.layers.TimeDistributed(keras.layers.Dense(3)), keras.layers.SimpleRNN(3)])
    unmasked.set_weights(weights)
    assert not np.allclose(unmasked.predict(x, verbose=0), ours.predict(x, verbose=0), atol=1e-3)
    masking = [lambda k: k.layers.Masking(), lambda k: k.layers.LSTM(3)]
    xf = np.random.default_rng(8).standard_normal((3, 6, 2)).astype(np.float32)
    xf[0, 4:] = 0
    xf[2, 1] = 0
    a, b = (k.Sequential([k.Input((6, 2))] + [f(k) for f in masking]) for k in (tfk, keras))
    b.set_weights(a.get_weights())
    np.testing.assert_allclose(b.predict(xf, verbose=0), a.predict(xf, verbose=0), **TOL)


@pytest.mark.parametrize("causal,scores", [(False, False), (True, True)])
def test_attention_takes_the_masks_of_its_inputs(tf, causal, scores):
    """Embedding(mask_zero=True) -> self-attention: the query and value masks become the attention
    mask (a fully padded sample included) and the query's mask reaches the LSTM after it."""
    def make(k):
        x = k.Input((8,))
        e = k.layers.Embedding(20, 6, mask_zero=True)(x)
        h = k.layers.MultiHeadAttention(2, 3)(e, e, use_causal_mask=causal, return_attention_scores=scores)
        return k.Model(x, h[1] if scores else k.layers.LSTM(3)(h))
    rng = np.random.default_rng(0)
    x = rng.integers(1, 20, (4, 8))
    x[0, 5:] = 0
    x[1, 2] = 0
    x[2, :] = 0
    x[3, 0] = 0
    tfk = _tfk()
    theirs, ours = make(tfk), make(keras)
    weights = [w + 0.2 * rng.standard_normal(w.shape).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), **TOL)


def test_fit_history_with_masked_recurrent_model_matches_keras(tf):
    """Training follows Keras step by step: a padded-sequence classifier (Embedding(mask_zero) ->
    Bidirectional(GRU) -> LSTM -> Dense) fitted with SGD gives the same History."""
    def make(k):
        return k.Sequential([k.Input((9,)), k.layers.Embedding(20, 6, mask_zero=True),
                             k.layers.Bidirectional(k.layers.GRU(5, return_sequences=True)), k.layers.LSTM(4),
                             k.layers.Dense(1, activation="sigmoid")])
    rng = np.random.default_rng(0)
    x = rng.integers(1, 20, (16, 9))
    for i, length in enumerate(rng.integers(2, 10, 16)):
        x[i, length:] = 0
    y = (x[:, 0] > 10).astype(np.float32)
    tfk = _tfk()
    theirs, ours = make(tfk), make(keras)
    ours.set_weights(theirs.get_weights())
    for model, k in ((theirs, tfk), (ours, keras)):
        model.compile(k.optimizers.SGD(0.5), "binary_crossentropy", metrics=["accuracy"])
    ht = theirs.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history
    ho = ours.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history
    assert set(ho) == set(ht)
    for key in ht:
        np.testing.assert_allclose(ho[key], ht[key], rtol=1e-5, atol=1e-6, err_msg=key)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _summary_text(model):
    buf = io.StringIO()
    with redirect_stdout(buf):
        model.summary()
    return buf.getvalue().rstrip("\n")


def _seq_model(k):
    return k.Sequential([k.Input((12,)), k.layers.Embedding(50, 8, mask_zero=True),
                         k.layers.Bidirectional(k.layers.LSTM(6, return_sequences=True)),
                         k.layers.GRU(5, return_sequences=True), k.layers.TimeDistributed(k.layers.Dense(3)),
                         k.layers.SimpleRNN(4), k.layers.Dense(2)])


def _attention_model(k):
    x = k.Input((7, 6))
    h = k.layers.MultiHeadAttention(2, 4, value_dim=3)(x, x)
    o, s1, s2 = k.layers.LSTM(5, return_state=True)(h)
    b = k.layers.Bidirectional(k.layers.GRU(3, reset_after=False), merge_mode=None)(x)
    return k.Model(x, [o, s2] + list(b))


@pytest.mark.parametrize("make", [_seq_model, _attention_model])
def test_summary_and_saving(tf, make, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    tfk = _tfk()
    tfk.backend.clear_session()
    keras.backend.clear_session()
    theirs, ours = make(tfk), make(keras)
    assert _summary_text(ours) == _summary_text(theirs)
    assert ours.count_params() == theirs.count_params()
    x = np.random.default_rng(9).integers(0, 50, (3, 12)) if make is _seq_model else \
        np.random.default_rng(9).standard_normal((3, 7, 6)).astype(np.float32)
    before = _flat(ours.predict(x, verbose=0))
    ours.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    for a, b in zip(_flat(loaded.predict(x, verbose=0)), before):
        np.testing.assert_array_equal(a, b)
    assert _summary_text(loaded) == _summary_text(ours)


def test_weights_and_initialisers_are_keras():
    keras.clear_session()
    nc.manual_seed(0)
    lstm = keras.layers.LSTM(64)
    lstm(np.zeros((1, 3, 32), np.float32))
    kernel, recurrent, bias = lstm.get_weights()
    assert kernel.shape == (32, 256) and recurrent.shape == (64, 256) and bias.shape == (256,)
    np.testing.assert_array_equal(bias, np.r_[np.zeros(64), np.ones(64), np.zeros(128)])  # unit_forget_bias
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(64), atol=1e-5)  # orthogonal (u, 4u): rows
    limit = np.sqrt(6 / (32 + 256))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit
    gru = keras.layers.GRU(4)
    gru(np.zeros((1, 3, 2), np.float32))
    assert [w.shape for w in gru.get_weights()] == [(2, 12), (4, 12), (2, 12)]
    gru = keras.layers.GRU(4, reset_after=False)
    gru(np.zeros((1, 3, 2), np.float32))
    assert [w.shape for w in gru.get_weights()] == [(2, 12), (4, 12), (12,)]
    rnn = keras.layers.SimpleRNN(3, use_bias=False)
    rnn(np.zeros((1, 3, 2), np.float32))
    assert [w.shape for w in rnn.get_weights()] == [(2, 3), (3, 3)]


def test_regularizers_add_losses():
    keras.clear_session()
    lstm = keras.layers.LSTM(3, kernel_regularizer=keras.regularizers.l2(0.1),
                             recurrent_regularizer=keras.regularizers.l1(0.01))
    lstm(X)
    kernel, recurrent, _ = lstm.get_weights()
    got = sorted(float(t.item()) for t in lstm.losses)
    np.testing.assert_allclose(got, sorted([0.1 * (kernel ** 2).sum(), 0.01 * np.abs(recurrent).sum()]), rtol=1e-5)


def test_stateful_layer_carries_its_state():
    keras.clear_session()
    nc.manual_seed(1)
    stateful = keras.layers.GRU(4, stateful=True, return_sequences=True)
    whole = keras.layers.GRU(4, return_sequences=True)
    stateful(X[:, :3])
    whole(X)
    stateful.reset_states()
    whole.set_weights(stateful.get_weights())
    parts = [stateful(X[:, :3]).detach().numpy(), stateful(X[:, 3:]).detach().numpy()]
    np.testing.assert_allclose(np.concatenate(parts, 1), whole(X).detach().numpy(), rtol=1e-5, atol=1e-6)
    stateful.reset_states()
    np.testing.assert_allclose(stateful(X[:, :3]).detach().numpy(), parts[0], rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[gru.*stateful RNN keeps states for batch size 3"):
        stateful(X[:2])
    model = keras.Sequential([keras.Input(batch_shape=(3, 6, 4)),
                              keras.layers.Bidirectional(keras.layers.LSTM(3, stateful=True))])
    first = model.predict(X, verbose=0)  # the shape-inference dry run kept no state of batch 1
    assert not np.allclose(model.predict(X, verbose=0), first)
    model.layers[0].reset_states()
    np.testing.assert_allclose(model.predict(X, verbose=0), first, rtol=1e-6)


def test_sunspots_lstm_fit_beats_persistence():
    """keras.Sequential([LSTM(32), Dense(1)]) on windows of 12 years of sunspot numbers (train on
    targets before 1950, test from 1950): the RMSE is at least 30% below persistence (next year =
    this year), measured here ~47-52% below over seeds 0-2."""
    years, values = nc.datasets.load_sunspots()
    scale = float(values[years < 1950].max())
    s, w = values / scale, 12
    x = np.stack([s[i:i + w] for i in range(len(s) - w)])[:, :, None].astype(np.float32)
    y, target_years = s[w:].astype(np.float32), years[w:]
    train, test = target_years < 1950, target_years >= 1950
    nc.manual_seed(0)
    keras.clear_session()
    model = keras.Sequential([keras.Input((w, 1)), keras.layers.LSTM(32), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    history = model.fit(x[train], y[train], epochs=60, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.25 * history.history["loss"][0]
    pred = model.predict(x[test], verbose=0)[:, 0] * scale
    truth = y[test] * scale
    rmse = np.sqrt(np.mean((pred - truth) ** 2))
    persistence = np.sqrt(np.mean((x[test][:, -1, 0] * scale - truth) ** 2))
    assert rmse < 0.7 * persistence, (rmse, persistence)


def test_bad_input_raises_clear_errors():
    keras.clear_session()
    lstm = keras.layers.LSTM(4)
    lstm(X)
    with pytest.raises(ValueError, match=r"\[lstm\].*expected shape \(batch, timesteps, 4\).*\(3, 6, 5\)"):
        lstm(np.zeros((3, 6, 5), np.float32))
    with pytest.raises(ValueError, match=r"\[lstm\].*expected shape \(batch, timesteps, 4\).*\(3, 4\)"):
        lstm(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"\[lstm\] an initial state has shape \(3, 5\), expected \(3, 4\)"):
        lstm(X, initial_state=[np.zeros((3, 5), np.float32)] * 2)
    with pytest.raises(ValueError, match=r"\[lstm\] expects 2 initial state"):
        lstm(X, initial_state=[np.zeros((3, 4), np.float32)])
    with pytest.raises(ValueError, match=r"\[lstm\] the mask has shape \(3, 5\), expected .* \(3, 6\)"):
        lstm(X, mask=np.ones((3, 5), bool))
    with pytest.raises(ValueError, match=r"\[simple_rnn\] expected input of shape \(batch, timesteps, features\)"):
        keras.layers.SimpleRNN(3)(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[GRU\] units must be a positive integer"):
        keras.layers.GRU(0)
    mha = keras.layers.MultiHeadAttention(2, 3)
    mha(Q, V)
    with pytest.raises(ValueError, match=r"\[multi_head_attention\] query has shape \(2, 5, 7\), the layer was built "
                                         r"for query shape \(2, 5, 6\)"):
        mha(np.zeros((2, 5, 7), np.float32), V)
    with pytest.raises(ValueError, match=r"\[multi_head_attention\] value and key must match"):
        mha(Q, V, V[:, :4])
    with pytest.raises(ValueError, match=r"\[multi_head_attention\] a mask of shape \(2, 5, 6\) does not fit"):
        mha(Q, V, attention_mask=np.ones((2, 5, 6), bool))
    with pytest.raises(ValueError, match=r"\[multi_head_attention_1\] All dimensions of `value` and `key`"):
        keras.layers.MultiHeadAttention(2, 3)(Q, V, V[:, :4])
    with pytest.raises(ValueError, match=r"\[time_distributed\] expects an input of at least 3 dimensions"):
        keras.layers.TimeDistributed(keras.layers.Dense(2))(np.zeros((2, 3), np.float32))
