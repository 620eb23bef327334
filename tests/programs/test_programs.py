"""Public PyTorch programs (sources, commits and licences at the top of each file in this folder)
run twice: on PyTorch, and on neurocore through the import shim (``torch`` -> ``neurocore``, see
torch_shim.py). Both runs start from the same weights (copied from the PyTorch model) and data,
and their losses / outputs must agree.

Test-side settings, not program changes: dropout probabilities are set to 0 and the VAE's noise
is a shared array, because the two libraries' random generators differ."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import both, copy_weights, to_numpy  # noqa: E402
from helpers import require_torch  # noqa: E402

F32 = dict(rtol=2e-4, atol=1e-5)


def _close(a, b, **tol):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), **(tol or F32))


@pytest.fixture(scope="module")
def torch():
    return require_torch()


def _no_dropout(model):
    for m in model.modules():
        if type(m).__name__.startswith("Dropout"):
            m.p = 0.0
        elif type(m).__name__ == "MultiheadAttention":
            m.dropout = 0.0


def test_shim_maps_torch_to_neurocore(torch):
    import neurocore
    from torch_shim import torch_is_neurocore
    with torch_is_neurocore():
        import torch as mapped
        import torch.nn.functional as mapped_f
        from torch.utils.data import DataLoader
    assert mapped is neurocore and mapped_f is neurocore.nn.functional
    assert DataLoader is neurocore.utils.data.DataLoader
    import torch as real
    assert real is torch and real is not neurocore  # the real torch is back afterwards


def test_mnist_cnn(torch):
    t, n = both("mnist_cnn")
    rng = np.random.default_rng(0)
    train = (rng.standard_normal((24, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 24))
    test = (rng.standard_normal((10, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 10))
    tm, nm = t.Net(), n.Net()
    copy_weights(tm, nm, n.torch)
    _no_dropout(tm)
    _no_dropout(nm)
    argv = ["--batch-size", "8", "--test-batch-size", "5", "--epochs", "2", "--lr", "0.5", "--log-interval", "100"]
    t_losses, t_tests, t_lr = t.main(argv, train, test, tm)
    n_losses, n_tests, n_lr = n.main(argv, train, test, nm)
    assert len(n_losses) == len(t_losses) == 6
    _close(n_losses, t_losses)
    _close([l for l, _ in n_tests], [l for l, _ in t_tests])
    assert [c for _, c in n_tests] == [c for _, c in t_tests]
    assert n_lr == pytest.approx(t_lr)


def test_mnist_rnn(torch):
    t, n = both("mnist_rnn")
    rng = np.random.default_rng(1)
    batches = [(rng.standard_normal((6, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 6)) for _ in range(4)]
    tm, nm = t.Net(), n.Net()
    copy_weights(tm, nm, n.torch)
    results = []
    for mod, model in ((t, tm), (n, nm)):
        _no_dropout(model)
        optimizer, scheduler = mod.make_optimizer(model, lr=0.5)
        data = [(mod.torch.tensor(x), mod.torch.tensor(y)) for x, y in batches]
        losses = mod.train(model, mod.torch.device("cpu"), data, optimizer)
        scheduler.step()
        losses += mod.train(model, mod.torch.device("cpu"), data[:2], optimizer)
        results.append((losses, model.batchnorm.running_mean))
    _close(results[1][0], results[0][0])
    _close(to_numpy(results[1][1]), to_numpy(results[0][1]))


def test_vae(torch):
    t, n = both("vae")
    copy_weights(t.model, n.model, n.torch)
    rng = np.random.default_rng(2)
    images = rng.random((16, 1, 28, 28)).astype(np.float32)
    eps = rng.standard_normal((8, 20)).astype(np.float32)
    runs = []
    for mod in (t, n):
        lib = mod.torch
        # test-side: the noise of reparameterize is a shared array instead of each library's randn_like
        mod.model.reparameterize = lambda mu, logvar, lib=lib: mu + lib.tensor(eps) * lib.exp(0.5 * logvar)
        loader = lib.utils.data.DataLoader(lib.utils.data.TensorDataset(lib.tensor(images), lib.zeros(16)),
                                           batch_size=8)
        runs.append(mod.train(1, loader) + mod.train(2, loader))
    _close(runs[1], runs[0])


def test_time_sequence_prediction_lbfgs(torch):
    t, n = both("time_sequence")
    tm, nm = t.Sequence(), n.Sequence()
    copy_weights(tm, nm, n.torch)
    t_losses, t_test, t_y = t.run(tm, steps=1)
    n_losses, n_test, n_y = n.run(nm, steps=1)
    assert len(n_losses) == len(t_losses)  # the same number of closure evaluations
    _close(n_losses, t_losses, rtol=1e-6, atol=1e-9)
    _close(n_test, t_test, rtol=1e-6, atol=1e-9)
    _close(n_y, t_y, rtol=1e-6, atol=1e-9)


def test_regression(torch):
    t, n = both("regression")
    copy_weights(t.fc, n.fc, n.torch)
    t_losses, t_desc = t.fit(40)
    n_losses, n_desc = n.fit(40)
    assert len(n_losses) == len(t_losses)
    _close(n_losses, t_losses, rtol=1e-3, atol=1e-5)
    assert n_desc == t_desc


def test_dcgan(torch):
    t, n = both("dcgan")
    copy_weights(t.netG, n.netG, n.torch)
    copy_weights(t.netD, n.netD, n.torch)
    rng = np.random.default_rng(3)
    steps = [(rng.uniform(-1, 1, (4, 1, 64, 64)).astype(np.float32), rng.standard_normal((4, 8, 1, 1)).astype(np.float32))
             for _ in range(3)]
    runs = []
    for mod in (t, n):
        mod.make_optimizers()
        lib = mod.torch
        runs.append([mod.iteration((lib.tensor(real), None), lib.tensor(noise)) for real, noise in steps])
    _close(runs[1], runs[0], rtol=1e-3, atol=1e-5)
    for mod_t, mod_n in ((t.netG, n.netG), (t.netD, n.netD)):
        for (k, a), (_, b) in zip(mod_t.state_dict().items(), mod_n.state_dict().items()):
            _close(to_numpy(b), to_numpy(a), rtol=1e-3, atol=1e-5)


def _corpus(lib, rng, ntokens=30, length=401):
    return lib.tensor(rng.integers(0, ntokens, length))


def test_word_language_model_lstm(torch):
    t, n = both("word_language_model")
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 30, 401)
    runs = []
    tm = t.RNNModel("LSTM", 30, 16, 16, 2, dropout=0.0)
    nm = n.RNNModel("LSTM", 30, 16, 16, 2, dropout=0.0)
    copy_weights(tm, nm, n.torch)
    for mod, model in ((t, tm), (n, nm)):
        data = mod.batchify(mod.torch.tensor(ids), 4)
        runs.append(mod.train(model, data, 30, batch_size=4, bptt=10, lr=5.0, clip=0.25, max_batches=6))
    _close(runs[1], runs[0])


def test_word_language_model_transformer(torch):
    t, n = both("word_language_model")
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 30, 201)
    t.torch.manual_seed(0)
    tm = t.TransformerModel(30, 16, 2, 32, 2, dropout=0.0)
    nm = n.TransformerModel(30, 16, 2, 32, 2, dropout=0.0)
    copy_weights(tm, nm, n.torch)
    runs = []
    for mod, model in ((t, tm), (n, nm)):
        _no_dropout(model)  # nn.Transformer's own layers keep their default dropout of 0.1
        data = mod.batchify(mod.torch.tensor(ids), 4)
        runs.append(mod.train(model, data, 30, batch_size=4, bptt=8, lr=1.0, clip=0.25, max_batches=4))
    _close(runs[1], runs[0])


def _gpt_pair(t, n, bias):
    config = dict(block_size=16, vocab_size=40, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=bias)
    tm = t.GPT(t.GPTConfig(**config))
    nm = n.GPT(n.GPTConfig(**config))
    copy_weights(tm, nm, n.torch)
    return tm, nm


@pytest.mark.parametrize("bias", [True, False])
def test_nanogpt_training_steps(torch, bias):
    t, n = both("nanogpt_model")
    tm, nm = _gpt_pair(t, n, bias)
    assert nm.get_num_params() == tm.get_num_params()
    rng = np.random.default_rng(6)
    batches = [(rng.integers(0, 40, (3, 16)), rng.integers(0, 40, (3, 16))) for _ in range(3)]
    runs = []
    for mod, model in ((t, tm), (n, nm)):
        lib = mod.torch
        opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-2, betas=(0.9, 0.95), device_type="cpu")
        trace = []
        for x, y in batches:
            logits, loss = model(lib.tensor(x), lib.tensor(y))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            lib.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            trace.append(loss.item())
        logits, _ = model(lib.tensor(batches[0][0]))  # inference: last position only
        runs.append((trace, to_numpy(logits)))
    _close(runs[1][0], runs[0][0])
    _close(runs[1][1], runs[0][1])


def test_nanogpt_generate_greedy_top1(torch):
    t, n = both("nanogpt_model")
    tm, nm = _gpt_pair(t, n, True)
    idx = np.array([[1, 2, 3]])
    # top_k=1 makes sampling deterministic: both libraries must pick the same tokens
    outs = [to_numpy(m.generate(mod.torch.tensor(idx), 6, top_k=1)) for mod, m in ((t, tm), (n, nm))]
    np.testing.assert_array_equal(outs[1], outs[0])
