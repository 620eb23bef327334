"""nc.onnx.load, operator by operator: one-node (or few-node) graphs built with onnx.helper, run by
neurocore and by ONNX Runtime (the oracle) on the same inputs."""
import os

import numpy as np
import pytest

import neurocore as nc


def require(name):
    """Imports onnx / onnxruntime; missing fails under NEUROCORE_REQUIRE_TORCH=1 (CI), skips otherwise."""
    try:
        return __import__(name)
    except ImportError:
        if os.environ.get("NEUROCORE_REQUIRE_TORCH") == "1":
            pytest.fail(f"{name} is required (NEUROCORE_REQUIRE_TORCH=1) but not installed")
        pytest.skip(f"{name} not installed")


def make_model(nodes, inputs, outputs, initializers=(), opset=17):
    """inputs: {name: array} graph inputs; initializers: {name: array}; outputs: names."""
    onnx = require("onnx")
    h = onnx.helper
    g_inputs = [h.make_tensor_value_info(n, h.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in inputs.items()]
    g_outputs = [h.make_value_info(n, onnx.TypeProto()) for n in outputs]
    inits = [onnx.numpy_helper.from_array(np.asarray(a), n) for n, a in dict(initializers).items()]
    graph = h.make_graph(nodes, "g", g_inputs, g_outputs, inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
    return onnx.shape_inference.infer_shapes(model)


def run_ort(model, inputs):
    ort = require("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)


def compare(model, inputs, rtol=1e-5, atol=1e-6):
    expected = run_ort(model, inputs)
    got = nc.onnx.load(model)(**inputs)
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        g = g.detach().numpy()
        assert g.shape == e.shape, f"shape {g.shape} != {e.shape}"
        if e.dtype.kind == "f":
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(g, e.astype(g.dtype))


def rng_array(shape, seed=0, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(np.float32)


X = rng_array((2, 3, 7, 6))
I64 = np.int64

# (op, extra inputs as initializers in order, attributes, input shape); "x" is always the first input.
UNARY = [("Relu", {}), ("Sigmoid", {}), ("Tanh", {}), ("Elu", {"alpha": 0.7}), ("Selu", {}),
         ("Selu", {"alpha": 1.5, "gamma": 1.1}), ("Softplus", {}), ("Erf", {}), ("LeakyRelu", {"alpha": 0.2}),
         ("Neg", {}), ("Exp", {}), ("Abs", {}), ("Floor", {}), ("Ceil", {}), ("Sin", {}), ("Cos", {}),
         ("HardSigmoid", {}), ("HardSwish", {}), ("Sign", {}), ("Identity", {}),
         ("Softmax", {}), ("Softmax", {"axis": 1}), ("LogSoftmax", {"axis": -2}),
         ("GlobalAveragePool", {}), ("GlobalMaxPool", {}), ("Flatten", {}), ("Flatten", {"axis": 3}),
         ("Flatten", {"axis": 0}), ("Transpose", {}), ("Transpose", {"perm": [0, 2, 3, 1]}),
         ("ReduceMax", {"axes": [1, 3], "keepdims": 0}), ("ReduceL2", {"axes": [2]}),
         ("Dropout", {})]


@pytest.mark.parametrize("op,attrs", UNARY, ids=[f"{o}-{i}" for i, (o, _) in enumerate(UNARY)])
def test_unary_ops(op, attrs):
    onnx = require("onnx")
    model = make_model([onnx.helper.make_node(op, ["x"], ["y"], **attrs)], {"x": X}, ["y"])
    compare(model, {"x": X})


def test_positive_domain_ops():
    onnx = require("onnx")
    x = rng_array((3, 4), low=0.1, high=3.0)
    for op in ("Sqrt", "Log", "Reciprocal"):
        compare(make_model([onnx.helper.make_node(op, ["x"], ["y"])], {"x": x}, ["y"]), {"x": x})


def test_gelu_opset20():
    onnx = require("onnx")
    for approx in ("none", "tanh"):
        model = make_model([onnx.helper.make_node("Gelu", ["x"], ["y"], approximate=approx)], {"x": X}, ["y"],
                           opset=20)
        compare(model, {"x": X})


BINARY = ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean"]


@pytest.mark.parametrize("op", BINARY)
def test_binary_ops_broadcast(op):
    onnx = require("onnx")
    a = rng_array((2, 3, 4), 1, low=0.5, high=2.0)
    b = rng_array((3, 1), 2, low=0.5, high=2.0)
    compare(make_model([onnx.helper.make_node(op, ["a", "b"], ["y"])], {"a": a, "b": b}, ["y"]), {"a": a, "b": b})
    # with a constant operand (an initializer)
    compare(make_model([onnx.helper.make_node(op, ["a", "c"], ["y"])], {"a": a}, ["y"], {"c": b}), {"a": a})


def test_comparisons_where_and_logic():
    onnx = require("onnx")
    h = onnx.helper
    a, b = rng_array((3, 4), 1), rng_array((3, 4), 2)
    b[0] = a[0]
    nodes = [h.make_node("Equal", ["a", "b"], ["eq"]), h.make_node("Less", ["a", "b"], ["lt"]),
             h.make_node("GreaterOrEqual", ["a", "b"], ["ge"]), h.make_node("Or", ["eq", "lt"], ["either"]),
             h.make_node("Not", ["either"], ["gt"]), h.make_node("Where", ["gt", "a", "zero"], ["y"]),
             h.make_node("Cast", ["ge"], ["gef"], to=onnx.TensorProto.FLOAT)]
    model = make_model(nodes, {"a": a, "b": b}, ["y", "eq", "gt", "gef"], {"zero": np.array(0.0, np.float32)})
    compare(model, {"a": a, "b": b})


def test_clip_variants():
    onnx = require("onnx")
    h = onnx.helper
    for names, inits in ((["x", "lo", "hi"], {"lo": np.float32(-0.5), "hi": np.float32(1.0)}),
                         (["x", "", "hi"], {"hi": np.float32(0.3)}), (["x"], {})):
        model = make_model([h.make_node("Clip", names, ["y"])], {"x": X}, ["y"],
                           {k: np.array(v) for k, v in inits.items()})
        compare(model, {"x": X})


SHAPE_CASES = [
    ("Reshape", {"s": np.array([0, -1, 6], I64)}, {}),
    ("Reshape", {"s": np.array([6, 7, 6], I64)}, {}),
    ("Squeeze", {"axes": np.array([0], I64)}, {}),
    ("Unsqueeze", {"axes": np.array([0, -1], I64)}, {}),
    ("Slice", {"st": np.array([1, -1], I64), "en": np.array([3, -8], I64), "ax": np.array([2, 3], I64),
               "sp": np.array([1, -2], I64)}, {}),
    ("Slice", {"st": np.array([0], I64), "en": np.array([2 ** 62], I64), "ax": np.array([1], I64),
               "sp": np.array([2], I64)}, {}),
    ("Gather", {"i": np.array([[2, 0], [-1, 1]], I64)}, {"axis": 1}),
    ("Gather", {"i": np.array(3, I64)}, {"axis": 2}),
    ("Expand", {"s": np.array([3, 1, 1, 1, 1], I64)}, {}),
    ("Tile", {"r": np.array([1, 2, 1, 2], I64)}, {}),
    ("Pad", {"p": np.array([0, 0, 1, 2, 0, 0, 0, 1], I64), "v": np.array(0.5, np.float32)}, {}),
    ("ReduceMean", {"axes": np.array([1, -1], I64)}, {}),
    ("ReduceSum", {"axes": np.array([0, 2], I64)}, {"keepdims": 0}),
    ("ReduceSum", {}, {}),
    ("Split", {"split": np.array([1, 2], I64)}, {"axis": 1}),
]


@pytest.mark.parametrize("op,inits,attrs", SHAPE_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(SHAPE_CASES)])
def test_shape_and_index_ops(op, inits, attrs):
    onnx = require("onnx")
    x = X[:1] if op == "Squeeze" else X
    outputs = ["y0", "y1"] if op == "Split" else ["y"]
    model = make_model([onnx.helper.make_node(op, ["x"] + list(inits), outputs, **attrs)], {"x": x}, outputs, inits,
                       opset=18)
    compare(model, {"x": x})


def test_split_num_outputs_and_concat():
    onnx = require("onnx")
    h = onnx.helper
    nodes = [h.make_node("Split", ["x"], ["a", "b", "c"], axis=2, num_outputs=3),
             h.make_node("Concat", ["c", "a", "k"], ["y"], axis=2)]
    model = make_model(nodes, {"x": X}, ["y", "b"], {"k": rng_array((2, 3, 1, 6), 3)}, opset=18)
    compare(model, {"x": X})


def test_dynamic_reshape_from_shape_arithmetic():
    """PyTorch's x.view(x.size(0), -1) pattern: Shape -> Gather -> Unsqueeze -> Concat -> Reshape, with the
    batch size only known when the model is called."""
    onnx = require("onnx")
    h = onnx.helper
    nodes = [h.make_node("Shape", ["x"], ["s"]), h.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             h.make_node("Unsqueeze", ["n", "ax0"], ["n1"]), h.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             h.make_node("Reshape", ["x", "shape"], ["y"]),
             h.make_node("Shape", ["x"], ["hw"], start=-2), h.make_node("ConstantOfShape", ["hw"], ["z"]),
             h.make_node("Range", ["r0", "n", "r1"], ["ids"])]
    inits = {"zero": np.array(0, I64), "ax0": np.array([0], I64), "minus1": np.array([-1], I64),
             "r0": np.array(0, I64), "r1": np.array(1, I64)}
    onnx_model = make_model(nodes, {"x": X}, ["y", "z", "ids"], inits)
    dyn = onnx.ModelProto()
    dyn.CopyFrom(onnx_model)
    dyn.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    model = nc.onnx.load(dyn)
    for n in (2, 5):
        x = rng_array((n, 3, 7, 6), n)
        y, z, ids = model(x)
        assert tuple(y.shape) == (n, 126) and tuple(z.shape) == (7, 6) and ids.tolist() == list(range(n))
        np.testing.assert_array_equal(y.numpy(), x.reshape(n, -1))


CONV_CASES = [
    ("Conv", (2, 4, 9, 8), (6, 4, 3, 3), {"pads": [1, 1, 1, 1]}),
    ("Conv", (2, 4, 9, 8), (6, 2, 3, 2), {"strides": [2, 1], "dilations": [1, 2], "group": 2, "pads": [0, 1, 2, 0]}),
    ("Conv", (2, 4, 9, 8), (6, 4, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ("Conv", (2, 4, 9, 8), (6, 4, 2, 2), {"auto_pad": "SAME_LOWER"}),
    ("Conv", (2, 4, 11), (5, 4, 3), {"pads": [2, 1], "strides": [2]}),
    ("ConvTranspose", (2, 4, 5, 6), (4, 3, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 0]}),
    ("ConvTranspose", (2, 4, 5, 6), (4, 3, 3, 3), {"strides": [2, 2], "pads": [0, 1, 2, 0]}),
    ("ConvTranspose", (2, 4, 5, 6), (4, 2, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_UPPER", "group": 2}),
    ("ConvTranspose", (2, 4, 7), (4, 3, 4), {"strides": [3], "output_shape": [20]}),
]


@pytest.mark.parametrize("op,xs,ws,attrs", CONV_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CONV_CASES)])
def test_conv_ops(op, xs, ws, attrs):
    onnx = require("onnx")
    x, w = rng_array(xs, 1), rng_array(ws, 2, -0.5, 0.5)
    out_channels = ws[0] if op == "Conv" else ws[1] * attrs.get("group", 1)
    b = rng_array((out_channels,), 3)
    model = make_model([onnx.helper.make_node(op, ["x", "w", "b"], ["y"], **attrs)], {"x": x}, ["y"], {"w": w, "b": b})
    compare(model, {"x": x}, atol=1e-5)


POOL_CASES = [
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
    ("MaxPool", {"kernel_shape": [3, 2], "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ("MaxPool", {"kernel_shape": [2, 2], "dilations": [2, 1]}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    ("AveragePool", {"kernel_shape": [2, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ("AveragePool", {"kernel_shape": [2, 2], "ceil_mode": 1, "strides": [2, 2]}),
]


@pytest.mark.parametrize("op,attrs", POOL_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(POOL_CASES)])
def test_pool_ops(op, attrs):
    onnx = require("onnx")
    model = make_model([onnx.helper.make_node(op, ["x"], ["y"], **attrs)], {"x": X}, ["y"], opset=19)
    compare(model, {"x": X})


def test_pool_1d():
    onnx = require("onnx")
    x = rng_array((2, 3, 10))
    for op, attrs in (("MaxPool", {"kernel_shape": [3], "strides": [2]}),
                      ("AveragePool", {"kernel_shape": [4], "pads": [1, 1]})):
        compare(make_model([onnx.helper.make_node(op, ["x"], ["y"], **attrs)], {"x": x}, ["y"]), {"x": x})


def test_gemm_matmul_and_norms():
    onnx = require("onnx")
    h = onnx.helper
    a = rng_array((4, 5), 1)
    inits = {"w": rng_array((5, 3), 2), "wt": rng_array((3, 5), 3), "c": rng_array((3,), 4), "c2": rng_array((4, 3), 5),
             "at": rng_array((5, 4), 6)}
    nodes = [h.make_node("Gemm", ["a", "wt", "c"], ["y1"], transB=1),
             h.make_node("Gemm", ["a", "w", "c2"], ["y2"], alpha=0.5, beta=2.0),
             h.make_node("Gemm", ["at", "wt"], ["y3"], transA=1, transB=1),
             h.make_node("MatMul", ["a", "w"], ["y4"])]
    compare(make_model(nodes, {"a": a}, ["y1", "y2", "y3", "y4"], inits), {"a": a})
    # batched MatMul (attention scores), LayerNormalization, BatchNormalization, InstanceNormalization
    q = rng_array((2, 3, 4, 5), 7)
    ln_s, ln_b = rng_array((5,), 8), rng_array((5,), 9)
    nodes = [h.make_node("Transpose", ["q"], ["kt"], perm=[0, 1, 3, 2]), h.make_node("MatMul", ["q", "kt"], ["s"]),
             h.make_node("LayerNormalization", ["q", "ls", "lb"], ["ln"], axis=-1, epsilon=1e-3),
             h.make_node("LayerNormalization", ["q", "ls2"], ["ln2"], axis=2),
             h.make_node("BatchNormalization", ["q", "bs", "bb", "bm", "bv"], ["bn"], epsilon=1e-4),
             h.make_node("InstanceNormalization", ["q", "bs", "bb"], ["inorm"])]
    inits = {"ls": ln_s, "lb": ln_b, "ls2": rng_array((4, 5), 10), "bs": rng_array((3,), 11), "bb": rng_array((3,), 12),
             "bm": rng_array((3,), 13), "bv": rng_array((3,), 14, 0.5, 2.0)}
    compare(make_model(nodes, {"q": q}, ["s", "ln", "ln2", "bn", "inorm"], inits), {"q": q}, atol=1e-5)


def test_prelu_and_version_converter_upgrade():
    """An opset-11 file (Squeeze/Unsqueeze/Split axes as attributes) is converted to opset 13 on load."""
    onnx = require("onnx")
    h = onnx.helper
    x = rng_array((2, 3, 4))
    nodes = [h.make_node("PRelu", ["x", "slope"], ["p"]), h.make_node("Unsqueeze", ["p"], ["u"], axes=[0]),
             h.make_node("Squeeze", ["u"], ["s"], axes=[0]), h.make_node("ReduceSum", ["s"], ["y"], axes=[1])]
    model = make_model(nodes, {"x": x}, ["y"], {"slope": rng_array((3, 1), 1, 0.0, 0.5)}, opset=11)
    loaded = nc.onnx.load(model)
    assert loaded.opset == 13
    compare(model, {"x": x})


def test_which_initializers_become_parameters():
    """Weights (MatMul, Conv, norm scale/bias, a bias added after MatMul even of size 1) are Parameters;
    BatchNorm statistics are buffers; shapes and scalar constants are neither (not in the state_dict)."""
    onnx = require("onnx")
    h = onnx.helper
    x = rng_array((2, 3, 4, 4))
    inits = {"conv.w": rng_array((2, 3, 1, 1), 1), "bn.scale": rng_array((2,), 2), "bn.bias": rng_array((2,), 3),
             "bn.mean": rng_array((2,), 4), "bn.var": rng_array((2,), 5, 0.5, 1.5), "shape": np.array([2, -1], I64),
             "dense/kernel": rng_array((32, 1), 6), "dense/bias": rng_array((1,), 7), "half": np.array(0.5, np.float32)}
    nodes = [h.make_node("Conv", ["x", "conv.w"], ["c"]),
             h.make_node("BatchNormalization", ["c", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["b"]),
             h.make_node("Reshape", ["b", "shape"], ["f"]), h.make_node("MatMul", ["f", "dense/kernel"], ["m"]),
             h.make_node("Add", ["m", "dense/bias"], ["a"]), h.make_node("Mul", ["a", "half"], ["y"])]
    model = make_model(nodes, {"x": x}, ["y"], inits)
    loaded = nc.onnx.load(model)
    assert sorted(n for n, _ in loaded.named_parameters()) == ["bn.bias", "bn.scale", "conv.w", "p_dense_bias",
                                                               "p_dense_kernel"]
    assert [n for n, _ in loaded.named_buffers()] == ["bn.mean", "bn.var"]
    compare(model, {"x": x})
    loaded.train()  # batch statistics, and the running ones move toward them (ONNX momentum 0.9)
    before = loaded.bn.mean.numpy().copy()
    loaded(x).sum().backward()
    batch_mean = np.einsum("oc,nchw->nohw", inits["conv.w"][:, :, 0, 0], x).mean(axis=(0, 2, 3))
    np.testing.assert_allclose(loaded.bn.mean.numpy(), 0.9 * before + 0.1 * batch_mean, rtol=1e-5, atol=1e-6)
    assert all(p.grad is not None for p in loaded.parameters())


def test_static_shapes_fold_at_load():
    """With a fully static declared input the Shape arithmetic is folded when the model loads; with a
    dynamic dim it runs at call time."""
    onnx = require("onnx")
    h = onnx.helper
    nodes = [h.make_node("Shape", ["x"], ["s"], start=0, end=1), h.make_node("Concat", ["s", "minus1"], ["t"], axis=0),
             h.make_node("Reshape", ["x", "t"], ["y"])]
    model = make_model(nodes, {"x": X}, ["y"], {"minus1": np.array([-1], I64)})
    assert [s.node.op_type for s in nc.onnx.load(model)._steps] == ["Reshape"]
    compare(model, {"x": X})
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "n"
    loaded = nc.onnx.load(model)
    assert [s.node.op_type for s in loaded._steps] == ["Shape", "Concat", "Reshape"]
    assert tuple(loaded(rng_array((4, 3, 7, 6))).shape) == (4, 126)
