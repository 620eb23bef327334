"""PyTorch -> torch.onnx.export -> nc.onnx.load: the imported models give PyTorch's outputs (also
for other batch sizes), their parameters carry PyTorch's state_dict names, their gradients match
PyTorch's for the same weights, and they train on shipped data. Bad files give clear errors."""
import io
import os
import warnings

import numpy as np
import pytest

import neurocore as nc
from helpers import require_torch


def require(name):
    try:
        return __import__(name)
    except ImportError:
        if os.environ.get("NEUROCORE_REQUIRE_TORCH") == "1":
            pytest.fail(f"{name} is required (NEUROCORE_REQUIRE_TORCH=1) but not installed")
        pytest.skip(f"{name} not installed")


def torch_models():
    torch = require_torch()
    tnn = torch.nn

    class SimpleCNN(tnn.Module):  # the seed guide's CNN
        def __init__(self, num_classes=10):
            super().__init__()
            self.features = tnn.Sequential(
                tnn.Conv2d(3, 32, kernel_size=3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2, 2),
                tnn.Conv2d(32, 64, kernel_size=3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2, 2))
            self.classifier = tnn.Sequential(
                tnn.Flatten(), tnn.Linear(64 * 8 * 8, 128), tnn.ReLU(), tnn.Linear(128, num_classes))

        def forward(self, x):
            return self.classifier(self.features(x))

    class KerasCNN(tnn.Module):
        """The seed's Keras CNN as Keras exports it: channels-last input transposed to NCHW, 'same'
        convolutions, BatchNorm, Dense layers, softmax output."""

        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = tnn.Conv2d(1, 8, 3, padding="same"), tnn.BatchNorm2d(8)
            self.conv2 = tnn.Conv2d(8, 16, 3, padding="same")
            self.dense1, self.dense2 = tnn.Linear(16 * 3 * 3, 32), tnn.Linear(32, 10)
            self.drop = tnn.Dropout(0.25)

        def forward(self, x):  # x: (N, H, W, C)
            x = x.permute(0, 3, 1, 2)
            x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
            x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # Keras flattens channels-last
            return torch.softmax(self.dense2(self.drop(torch.relu(self.dense1(x)))), dim=-1)

    def mlp():
        return tnn.Sequential(tnn.Linear(64, 128), tnn.BatchNorm1d(128), tnn.GELU(), tnn.Dropout(0.2),
                              tnn.Linear(128, 64), tnn.LayerNorm(64), tnn.Tanh(), tnn.Linear(64, 10))

    class TransformerBlock(tnn.Module):  # the seed guide's block (input (L, N, E))
        def __init__(self, d_model=16, num_heads=4, d_ff=32, dropout=0.1):
            super().__init__()
            self.attention = tnn.MultiheadAttention(d_model, num_heads)
            self.norm1 = tnn.LayerNorm(d_model)
            self.norm2 = tnn.LayerNorm(d_model)
            self.feed_forward = tnn.Sequential(tnn.Linear(d_model, d_ff), tnn.ReLU(), tnn.Linear(d_ff, d_model))
            self.dropout = tnn.Dropout(dropout)

        def forward(self, x):
            attn_output, _ = self.attention(x, x, x)
            x = self.norm1(x + self.dropout(attn_output))
            ff_output = self.feed_forward(x)
            return self.norm2(x + self.dropout(ff_output))

    return {"SimpleCNN": (SimpleCNN, (3, 32, 32)), "KerasCNN": (KerasCNN, (12, 12, 1)), "MLP": (mlp, (64,)),
            "TransformerBlock": (TransformerBlock, (2, 16))}


def randomise(model, seed):
    """Non-default norm weights and statistics (the exporter merges initializers with equal values)."""
    torch = require_torch()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith(("running_var",)):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.dtype.is_floating_point and ("bn" in name or "running_mean" in name or t.dim() == 1):
                t.copy_(torch.rand(t.shape, generator=g) - 0.5 + (1.0 if name.endswith("weight") else 0.0))
    return model


def export(model, example, opset=17, fold=True):
    torch = require_torch()
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), f, dynamo=False, opset_version=opset, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                          do_constant_folding=fold)
    return f.getvalue()


def build(name, seed=0):
    torch = require_torch()
    make, shape = torch_models()[name]
    torch.manual_seed(seed)
    return randomise(make(), seed).eval(), shape


@pytest.mark.parametrize("name", ["SimpleCNN", "KerasCNN", "MLP"])
@pytest.mark.parametrize("opset", [13, 17, 21])
def test_pytorch_export_imports_with_pytorch_outputs(name, opset):
    torch = require_torch()
    require("onnx")
    model, shape = build(name)
    data = export(model, torch.randn(2, *shape), opset)
    loaded = nc.onnx.load(data)
    assert loaded.input_names == ["x"] and loaded.output_names == ["y"]
    for batch in (2, 5, 1):  # dynamic batch axis
        x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            expected = model(x).numpy()
        got = loaded(nc.tensor(x.numpy()))
        np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fold", [True, False])
def test_transformer_block_attention_pattern(fold):
    """nn.MultiheadAttention as the exporter writes it (Gemm/MatMul, Reshape, Transpose, Softmax, shape
    arithmetic): outputs and every parameter's gradient equal PyTorch's. (PyTorch's exporter bakes the
    sequence length and batch into the attention reshapes, so it runs at the traced shape only, as in
    ONNX Runtime.)"""
    torch = require_torch()
    require("onnx")
    model, shape = build("TransformerBlock", seed=4)
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(1))
    loaded = nc.onnx.load(export(model, x, opset=17, fold=fold))
    out_t = model(x)
    out_n = loaded(x.numpy())
    np.testing.assert_allclose(out_n.detach().numpy(), out_t.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in model.parameters())
    if fold:  # constant folding pre-transposes the feed-forward weights under new names
        return
    assert {k for k, _ in loaded.named_parameters()} == {k for k, _ in model.named_parameters()}
    weights = torch.randn(out_t.shape, generator=torch.Generator().manual_seed(2))
    (out_t * weights).sum().backward()
    (out_n * nc.tensor(weights.numpy())).sum().backward()
    ours = dict(loaded.named_parameters())
    for key, p in model.named_parameters():
        np.testing.assert_allclose(ours[key].grad.numpy(), p.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=key)
    with pytest.raises(nc.onnx.OnnxError, match=r"\[onnx Reshape\] node '/attention/.*cannot reshape"):
        loaded(np.zeros((7, 2, 16), np.float32))  # axis 0 is declared dynamic, but the graph baked in 5


def test_file_path_and_state_dict_keys(tmp_path):
    torch = require_torch()
    require("onnx")
    model, shape = build("SimpleCNN")
    path = tmp_path / "cnn.onnx"
    path.write_bytes(export(model, torch.randn(1, *shape)))
    loaded = nc.onnx.load(str(path))
    params = dict(loaded.named_parameters())
    assert list(params) == [k for k, _ in model.named_parameters()]
    assert all(isinstance(p, nc.nn.Parameter) and p.requires_grad for p in params.values())
    # the state_dict saves and loads back; PyTorch's state_dict loads into it by the same keys
    nc.save(loaded.state_dict(), tmp_path / "w.nc")
    again = nc.onnx.load(path)
    torch.manual_seed(1)
    other = torch_models()["SimpleCNN"][0]().eval()
    again.load_state_dict(other.state_dict())
    x = torch.randn(2, *shape)
    with torch.no_grad():
        np.testing.assert_allclose(again(x.numpy()).detach().numpy(), other(x).numpy(), rtol=1e-5, atol=1e-5)
    again.load_state_dict(nc.load(tmp_path / "w.nc"))
    with torch.no_grad():
        np.testing.assert_allclose(again(x.numpy()).detach().numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["KerasCNN", "MLP"])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_gradients_match_pytorch(name, mode):
    """Exported without constant folding, BatchNorm stays a node: in train mode both use the batch
    statistics and update the running ones; Dropout is off (p forced to 0) so the draws agree."""
    torch = require_torch()
    require("onnx")
    model, shape = build(name, seed=3)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    loaded = nc.onnx.load(export(model, torch.randn(2, *shape), fold=False))
    getattr(model, mode)()
    getattr(loaded, mode)()
    x = torch.randn(6, *shape, generator=torch.Generator().manual_seed(7))
    target = torch.randint(0, 10, (6,), generator=torch.Generator().manual_seed(8))
    loss_t = torch.nn.functional.cross_entropy(model(x), target)
    loss_t.backward()
    loss_n = nc.nn.functional.cross_entropy(loaded(x.numpy()), nc.tensor(target.numpy()))
    loss_n.backward()
    assert abs(loss_n.item() - loss_t.item()) < 1e-5 * max(1.0, abs(loss_t.item()))
    ours = dict(loaded.named_parameters())
    for key, p in model.named_parameters():
        np.testing.assert_allclose(ours[key].grad.numpy(), p.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=key)
    state = loaded.state_dict()
    for key, v in model.state_dict().items():
        if "num_batches_tracked" not in key:
            np.testing.assert_allclose(state[key].numpy(), v.numpy(), rtol=1e-5, atol=1e-6, err_msg=key)


def test_imported_model_trains_on_digits():
    torch = require_torch()
    require("onnx")
    model, shape = build("MLP", seed=5)
    loaded = nc.onnx.load(export(model, torch.randn(2, *shape)))
    loaded.train()
    X, y = nc.datasets.load_digits()
    X, y = (X[:256] / 16.0).astype(np.float32), y[:256]
    opt = nc.optim.Adam(loaded.parameters(), lr=3e-3)
    loss_fn = nc.nn.CrossEntropyLoss()
    nc.manual_seed(0)
    losses = []
    for step in range(20):
        idx = np.arange(step * 32, step * 32 + 32) % 256
        opt.zero_grad()
        loss = loss_fn(loaded(X[idx]), nc.tensor(y[idx]))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    loaded.eval()
    with nc.no_grad():
        final = loss_fn(loaded(X), nc.tensor(y)).item()
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]) and final < 0.6 * losses[0], losses


def test_opset_converted_down_and_up():
    torch = require_torch()
    onnx = require("onnx")
    model, shape = build("MLP")
    x = torch.randn(3, *shape)
    with torch.no_grad():
        expected = model(x).numpy()
    old = nc.onnx.load(export(model, x, opset=11))  # LayerNorm decomposed, axes as attributes
    assert old.opset == 13
    np.testing.assert_allclose(old(x.numpy()).detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    proto = onnx.load_from_string(export(model, x, opset=21))
    proto.opset_import[0].version = 22  # no op of this model changed in opset 22
    new = nc.onnx.load(proto)
    assert new.opset == 21
    np.testing.assert_allclose(new(x.numpy()).detach().numpy(), expected, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------------------
# bad files and bad calls


def small_model(opset=17):
    onnx = require("onnx")
    h = onnx.helper
    nodes = [h.make_node("Gemm", ["x", "w", "b"], ["h"], name="fc", transB=1), h.make_node("Relu", ["h"], ["y"],
                                                                                         name="act")]
    inits = [onnx.numpy_helper.from_array(np.ones((3, 4), np.float32), "w"),
             onnx.numpy_helper.from_array(np.zeros(3, np.float32), "b")]
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 4])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n", 3])], inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])


def test_truncated_and_garbage_files(tmp_path):
    data = small_model().SerializeToString()
    assert nc.onnx.load(data)(np.ones((2, 4), np.float32)).tolist() == [[4.0] * 3] * 2
    for cut in (len(data) // 2, len(data) - 3, 7):
        with pytest.raises(nc.onnx.OnnxError, match=r"\[onnx.load\]"):
            nc.onnx.load(data[:cut])
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00\xff not a model" * 10)
    with pytest.raises(nc.onnx.OnnxError, match="junk.onnx"):
        nc.onnx.load(path)
    with pytest.raises(FileNotFoundError):
        nc.onnx.load(tmp_path / "missing.onnx")


def test_wrong_opset():
    onnx = require("onnx")
    with pytest.raises(nc.onnx.OnnxError, match="opset 999"):
        nc.onnx.load(small_model(opset=999))
    model = small_model()
    model.opset_import[0].domain = "com.example"
    with pytest.raises(nc.onnx.OnnxError, match="imports no version of the default ONNX operator set"):
        nc.onnx.load(model)
    assert onnx  # the onnx package is what reads the files


def test_missing_initializer_and_cycle():
    model = small_model()
    del model.graph.initializer[0]
    with pytest.raises(nc.onnx.OnnxError, match=r"node 'fc' \(Gemm\) reads 'w'.*missing initializer"):
        nc.onnx.load(model)
    onnx = require("onnx")
    h = onnx.helper
    cyc = small_model()
    cyc.graph.node.append(h.make_node("Add", ["y", "z"], ["loop1"], name="a"))
    cyc.graph.node.append(h.make_node("Relu", ["loop1"], ["z"], name="b"))
    with pytest.raises(nc.onnx.OnnxError, match=r"cycle.*'a' \(Add\).*'b' \(Relu\)"):
        nc.onnx.load(cyc)


def test_unsupported_operators_listed_together():
    onnx = require("onnx")
    h = onnx.helper
    model = small_model()
    model.graph.node.insert(1, h.make_node("Einsum", ["h", "h"], ["e"], name="mix", equation="ij,ij->ij"))
    model.graph.node.insert(2, h.make_node("Custom", ["e"], ["c"], name="mine", domain="my.ops"))
    model.graph.node.insert(3, h.make_node("MaxPool", ["h"], ["p", "idx"], name="pool", kernel_shape=[1]))
    with pytest.raises(nc.onnx.UnsupportedOperatorError) as info:
        nc.onnx.load(model)
    message = str(info.value)
    for part in ("'mix' (Einsum)", "'mine' (Custom) in domain 'my.ops'", "'pool' (MaxPool) output Indices"):
        assert part in message, message


def test_checker_and_shape_inference_errors():
    onnx = require("onnx")
    model = small_model()
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(np.ones((3, 5), np.float32), "w"))
    with pytest.raises(nc.onnx.OnnxError, match="fails ONNX's checks"):
        nc.onnx.load(model)
    loaded = nc.onnx.load(model, check=False)  # unchecked, the error comes when it runs, naming the node
    with pytest.raises(nc.onnx.OnnxError, match=r"\[onnx Gemm\] node 'fc'.*inner dimension"):
        loaded(np.ones((2, 4), np.float32))


def test_bad_calls():
    loaded = nc.onnx.load(small_model())
    with pytest.raises(ValueError, match=r"input 'x' has shape \(2, 5\), the model declares \('n', 4\)"):
        loaded(np.ones((2, 5), np.float32))
    with pytest.raises(TypeError, match="missing input"):
        loaded()
    with pytest.raises(TypeError, match="no input named 'z'"):
        loaded(z=np.ones((2, 4), np.float32))
    assert tuple(loaded(x=np.ones((0, 4), np.float32)).shape) == (0, 3)


def test_trainable_override():
    loaded = nc.onnx.load(small_model(), trainable=["b"])
    assert [n for n, _ in loaded.named_parameters()] == ["b"]
    with pytest.raises(nc.onnx.OnnxError, match="not initializers"):
        nc.onnx.load(small_model(), trainable=["nope"])


def test_copy_and_pickle(tmp_path):
    import copy
    import pickle
    loaded = nc.onnx.load(small_model())
    x = np.arange(8, dtype=np.float32).reshape(2, 4) - 3
    expected = loaded(x).detach().numpy()
    # nc.save stores tensors and plain containers only (no pickle); a whole module pickles directly.
    for clone in (copy.deepcopy(loaded), pickle.loads(pickle.dumps(loaded))):
        np.testing.assert_array_equal(clone(x).detach().numpy(), expected)
        clone.w.data.mul_(2.0)  # the copy owns its weights
        np.testing.assert_array_equal(loaded(x).detach().numpy(), expected)


def test_embedding_gather_trains():
    """nn.Embedding exports as Gather on the table: the table is a Parameter and gets PyTorch's gradient."""
    torch = require_torch()
    require("onnx")
    tnn = torch.nn

    class Bag(tnn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.fc = tnn.Embedding(20, 6), tnn.Linear(6, 3)

        def forward(self, tokens):
            return self.fc(self.emb(tokens).mean(dim=1))

    torch.manual_seed(0)
    model = Bag()
    tokens = torch.randint(0, 20, (4, 7), generator=torch.Generator().manual_seed(1))
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (tokens,), f, dynamo=False, input_names=["tokens"], opset_version=17,
                          dynamic_axes={"tokens": {0: "batch", 1: "length"}})
    loaded = nc.onnx.load(f.getvalue())
    assert sorted(n for n, _ in loaded.named_parameters()) == sorted(n for n, _ in model.named_parameters())
    other = torch.randint(0, 20, (2, 9), generator=torch.Generator().manual_seed(2))
    out_t, out_n = model(other), loaded(other.numpy())
    np.testing.assert_allclose(out_n.detach().numpy(), out_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    out_t.square().sum().backward()
    out_n.square().sum().backward()
    np.testing.assert_allclose(loaded.emb.weight.grad.numpy(), model.emb.weight.grad.numpy(), rtol=1e-5, atol=1e-6)
