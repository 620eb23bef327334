"""Benchmark workloads, one framework per process: ``python bench/workloads.py FRAMEWORK WORKLOAD``.

Prints one JSON list of rows {name, seconds, flops or bytes, peak_rss_mb}. Every framework runs
the same computation on the same data; the runner (bench/run.py) alternates the processes and
takes medians. Frameworks: neurocore, torch, onnxruntime (inference workloads only), tensorflow
(Keras 3 on TensorFlow; the keras_*_fit_epoch workloads, which neurocore runs with neurocore.keras).
"""
import argparse
import json
import os
import resource
import statistics
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

GEMM_SHAPES = [(64, 64, 64), (256, 256, 256), (1024, 1024, 1024), (2048, 2048, 2048),
               (32, 784, 128), (32, 160, 512), (1, 784, 128)]
ELEMENTWISE_N = 1 << 20


def timeit(fn, repeat, min_time=0.2):
    """Median seconds per call over `repeat` samples of at least `min_time` each (after warm-up)."""
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_time / 4:
        fn()
        calls += 1
    per_sample = max(1, int(calls * 4 * min_time / max(time.perf_counter() - start, 1e-9) / 4))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(per_sample):
            fn()
        samples.append((time.perf_counter() - t0) / per_sample)
    return statistics.median(samples)


class NeurocoreFW:
    name = "neurocore"

    def __init__(self, threads):
        import neurocore as nc
        from neurocore import nn, optim
        nc.set_num_threads(threads)
        self.nc, self.nn, self.optim = nc, nn, optim

    def tensor(self, a):
        return self.nc.tensor(a)

    def mm(self, a, b):
        return lambda: a @ b

    def mlp(self):
        nn = self.nn
        return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 64), nn.ReLU(),
                             nn.Dropout(0.2), nn.Linear(64, 10))

    def no_grad(self):
        return self.nc.no_grad()

    def simple_cnn(self):
        """The seed's SimpleCNN (3x32x32 input, 10 classes)."""
        nn = self.nn
        return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
                             nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10))

    def keras_cnn(self):
        """The seed's Keras CNN (28x28x1) in PyTorch form."""
        nn = self.nn
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, 64), nn.ReLU(), nn.Linear(64, 10))

    def elementwise(self, a, b):
        nc = self.nc
        m = a.reshape(1024, 1024)
        return {"add": lambda: a + b, "relu": lambda: nc.relu(a), "exp": lambda: nc.exp(a),
                "softmax": lambda: nc.softmax(m, dim=1)}


class TorchFW(NeurocoreFW):
    name = "torch"

    def __init__(self, threads):
        import torch
        torch.set_num_threads(threads)
        self.nc, self.nn, self.optim = torch, torch.nn, torch.optim

    def tensor(self, a):
        return self.nc.from_numpy(np.ascontiguousarray(a))

    def mm(self, a, b):
        return lambda: self.nc.mm(a, b)


def gemm(fw, repeat):
    rows = []
    rng = np.random.default_rng(0)
    for m, k, n in GEMM_SHAPES:
        a = fw.tensor(rng.standard_normal((m, k), dtype=np.float32))
        b = fw.tensor(rng.standard_normal((k, n), dtype=np.float32))
        s = timeit(fw.mm(a, b), repeat)
        rows.append({"name": f"gemm {m}x{k}x{n}", "seconds": s, "flops": 2.0 * m * n * k})
    return rows


def mnist_48k():
    import gzip
    path = os.path.join(HERE, "..", "python", "neurocore", "datasets", "data", "mnist_5k.csv.gz")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    reps = -(-48000 // len(table))
    X = np.tile(table[:, :-1] / 255.0, (reps, 1))[:48000]
    y = np.tile(table[:, -1].astype(np.int64), reps)[:48000]
    order = np.random.default_rng(0).permutation(48000)
    return np.ascontiguousarray(X[order]), y[order]


def epoch_seconds(fw, model, X, y, repeat):
    """Median seconds of one epoch of the eager loop (Adam, cross-entropy, batch 32) after a warm-up
    epoch. Batches are made before timing."""
    batches = [(fw.tensor(X[i:i + 32]), fw.tensor(y[i:i + 32])) for i in range(0, len(X), 32)]
    opt = fw.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = fw.nn.CrossEntropyLoss()

    def epoch():
        for xb, yb in batches:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    epoch()  # warm-up
    samples = []
    for _ in range(max(1, repeat // 2)):
        t0 = time.perf_counter()
        epoch()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def mlp_train_epoch(fw, repeat):
    """The seed's Keras MLP (784-128-64-10, ReLU, Dropout 0.2, Adam, cross-entropy), batch 32,
    one epoch over 48,000 samples in the eager PyTorch-style loop."""
    X, y = mnist_48k()
    fw.nc.manual_seed(0)
    seconds = epoch_seconds(fw, fw.mlp(), X, y, repeat)
    flops = 48000 * 3 * 2.0 * (784 * 128 + 128 * 64 + 64 * 10)
    return [{"name": "mlp_train_epoch", "seconds": seconds, "flops": flops}]


def load_weights(fw, model, weights):
    """Copies numpy (weight, bias) pairs into the model's Conv2d/Linear layers, in order."""
    layers = [m for m in model.modules() if type(m).__name__ in ("Conv2d", "Linear")]
    with fw.no_grad():
        for layer, (w, b) in zip(layers, weights):
            layer.weight.copy_(fw.tensor(w))
            layer.bias.copy_(fw.tensor(b))


def mlp_weights():
    rng = np.random.default_rng(1)
    dims = [(784, 128), (128, 64), (64, 10)]
    return [(rng.standard_normal((o, i), dtype=np.float32) * 0.05, rng.standard_normal(o, dtype=np.float32) * 0.05)
            for i, o in dims]


def mlp_infer_b1(fw, repeat):
    model = fw.mlp()
    model.eval()
    load_weights(fw, model, mlp_weights())
    x = fw.tensor(np.random.default_rng(2).standard_normal((1, 784), dtype=np.float32))

    def call():
        with fw.no_grad():
            return model(x)
    flops = 2.0 * (784 * 128 + 128 * 64 + 64 * 10)
    return [{"name": "mlp_infer_b1", "seconds": timeit(call, repeat), "flops": flops}]


# ---- convolutional networks -------------------------------------------------------------------

CNN_LAYERS = [("conv", 3, 32), ("conv", 32, 64), ("linear", 64 * 8 * 8, 128), ("linear", 128, 10)]
CNN_FWD_FLOPS = 2.0 * (32 * 32 * 32 * 3 * 9 + 16 * 16 * 64 * 32 * 9 + 4096 * 128 + 128 * 10)  # per image


def cnn_weights():
    rng = np.random.default_rng(4)
    out = []
    for kind, i, o in CNN_LAYERS:
        shape = (o, i, 3, 3) if kind == "conv" else (o, i)
        fan_in = i * (9 if kind == "conv" else 1)
        out.append(((rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32),
                    (rng.standard_normal(o) * 0.05).astype(np.float32)))
    return out


def cnn_images(n, seed=5):
    return np.random.default_rng(seed).standard_normal((n, 3, 32, 32), dtype=np.float32)


def cnn_train_b64(fw, repeat):
    """SimpleCNN, batch 64: one Adam step (forward, cross-entropy, backward, update)."""
    model = fw.simple_cnn()
    load_weights(fw, model, cnn_weights())
    opt = fw.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = fw.nn.CrossEntropyLoss()
    x = fw.tensor(cnn_images(64))
    y = fw.tensor(np.random.default_rng(6).integers(0, 10, 64))

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    # backward: input gradient of every layer but the first, and all weight gradients
    flops = 64 * (3 * CNN_FWD_FLOPS - 2.0 * 32 * 32 * 32 * 3 * 9)
    return [{"name": "cnn_train_b64", "seconds": timeit(step, repeat), "flops": flops}]


def cnn_infer(fw, repeat, batch):
    model = fw.simple_cnn()
    model.eval()
    load_weights(fw, model, cnn_weights())
    x = fw.tensor(cnn_images(batch))

    def call():
        with fw.no_grad():
            return model(x)
    return [{"name": f"cnn_infer_b{batch}", "seconds": timeit(call, repeat), "flops": batch * CNN_FWD_FLOPS}]


def mnist_12k():
    X, y = mnist_48k()
    return np.ascontiguousarray(X[:12000].reshape(-1, 1, 28, 28)), y[:12000]


def keras_cnn_epoch(fw, repeat):
    """The seed's Keras CNN in PyTorch form, Adam, cross-entropy, batch 32, one epoch over 12,000
    MNIST images (MNIST 5k repeated)."""
    X, y = mnist_12k()
    fw.nc.manual_seed(0)
    seconds = epoch_seconds(fw, fw.keras_cnn(), X, y, repeat)
    fwd = 2.0 * (26 * 26 * 32 * 9 + 11 * 11 * 64 * 32 * 9 + 1600 * 64 + 64 * 10)
    flops = 12000 * (3 * fwd - 2.0 * 26 * 26 * 32 * 9)
    return [{"name": "keras_cnn_epoch", "seconds": seconds, "flops": flops}]


CONV_LAYERS = [(3, 32, 32), (32, 64, 32), (64, 64, 16)]  # in channels, out channels, image size; 3x3, batch 64


def conv_layer(fw, repeat):
    """Single 3x3 Conv2d layers (padding 1, batch 64): forward, and forward + backward (input,
    weight and bias gradients)."""
    rows = []
    rng = np.random.default_rng(7)
    for ci, co, hw in CONV_LAYERS:
        conv = fw.nn.Conv2d(ci, co, 3, padding=1)
        x = fw.tensor(rng.standard_normal((64, ci, hw, hw), dtype=np.float32))
        xg = fw.tensor(rng.standard_normal((64, ci, hw, hw), dtype=np.float32)).requires_grad_(True)
        g = fw.tensor(rng.standard_normal((64, co, hw, hw), dtype=np.float32))
        flops = 2.0 * 64 * co * hw * hw * ci * 9

        def fwd():
            with fw.no_grad():
                return conv(x)
        name = f"conv {ci}->{co} {hw}x{hw}"
        rows.append({"name": name + " fwd", "seconds": timeit(fwd, repeat), "flops": flops})
        rows.append({"name": name + " fwd+bwd", "seconds": timeit(lambda: conv(xg).backward(g), repeat),
                     "flops": 3 * flops})
    return rows


def elementwise(fw, repeat):
    rng = np.random.default_rng(3)
    a = fw.tensor(rng.standard_normal(ELEMENTWISE_N, dtype=np.float32))
    b = fw.tensor(rng.standard_normal(ELEMENTWISE_N, dtype=np.float32))
    nbytes = {"add": 12, "relu": 8, "exp": 8, "softmax": 8}
    return [{"name": f"elementwise {k} 1M", "seconds": timeit(fn, repeat), "bytes": nbytes[k] * ELEMENTWISE_N}
            for k, fn in fw.elementwise(a, b).items()]


def ort_mlp_infer_b1(threads, repeat):
    """The same MLP as an ONNX graph (Gemm/Relu) run by ONNX Runtime."""
    from onnx import helper, numpy_helper
    nodes, inits, prev = [], [], "x"
    for i, (w, b) in enumerate(mlp_weights()):
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [f"g{i}"], transB=1))
        prev = f"g{i}"
        if i < 2:
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    sess = ort_session(nodes, inits, (1, 784), prev, (1, 10), threads)
    x = np.random.default_rng(2).standard_normal((1, 784), dtype=np.float32)
    flops = 2.0 * (784 * 128 + 128 * 64 + 64 * 10)
    return [{"name": "mlp_infer_b1", "seconds": timeit(lambda: sess.run(None, {"x": x}), repeat), "flops": flops}]


def ort_session(nodes, inits, x_shape, out, out_shape, threads):
    import onnx  # noqa: F401  (onnxruntime takes the serialized model)
    import onnxruntime as ort
    from onnx import TensorProto, helper
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(out_shape))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def ort_cnn_infer(threads, repeat, batch):
    """SimpleCNN as an ONNX graph (Conv/Relu/MaxPool/Flatten/Gemm) run by ONNX Runtime."""
    from onnx import helper, numpy_helper
    nodes, inits, prev = [], [], "x"
    for i, ((kind, _, _), (w, b)) in enumerate(zip(CNN_LAYERS, cnn_weights())):
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        if kind == "conv":
            nodes.append(helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
            nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
            nodes.append(helper.make_node("MaxPool", [f"r{i}"], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]))
            prev = f"p{i}"
            if i == 1:
                nodes.append(helper.make_node("Flatten", [prev], ["flat"]))
                prev = "flat"
        else:
            nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [f"g{i}"], transB=1))
            prev = f"g{i}"
            if i == 2:
                nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
                prev = f"r{i}"
    sess = ort_session(nodes, inits, (batch, 3, 32, 32), prev, (batch, 10), threads)
    x = cnn_images(batch)
    return [{"name": f"cnn_infer_b{batch}", "seconds": timeit(lambda: sess.run(None, {"x": x}), repeat),
             "flops": batch * CNN_FWD_FLOPS}]


# ---- Keras fit (neurocore.keras against Keras 3 on TensorFlow) --------------------------------

def keras_module(framework, threads):
    if framework == "tensorflow":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        import keras
        keras.utils.set_random_seed(0)
        return keras
    import neurocore as nc
    from neurocore import keras
    nc.set_num_threads(threads)
    nc.manual_seed(0)
    return keras


def fit_seconds(model, X, y, repeat, **kw):
    """Median seconds of one fit epoch (verbose 0) after a warm-up epoch."""
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, y, epochs=1, batch_size=32, verbose=0, **kw)
    samples = []
    for _ in range(max(1, repeat // 2)):
        t0 = time.perf_counter()
        model.fit(X, y, epochs=1, batch_size=32, verbose=0, **kw)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def keras_mlp_fit_epoch(keras, repeat):
    """The seed's Keras MLP: fit one epoch with validation_split=0.2 on 60,000 samples (MNIST 5k
    repeated), i.e. 48,000 training samples at batch 32 and 12,000 validation samples."""
    X, y = mnist_48k()
    X, y = np.concatenate([X, X[:12000]]), np.concatenate([y, y[:12000]])
    model = keras.Sequential([
        keras.Input((784,)), keras.layers.Dense(128, activation="relu"), keras.layers.Dropout(0.2),
        keras.layers.Dense(64, activation="relu"), keras.layers.Dropout(0.2),
        keras.layers.Dense(10, activation="softmax")])
    seconds = fit_seconds(model, X, y, repeat, validation_split=0.2)
    flops = 2.0 * (784 * 128 + 128 * 64 + 64 * 10) * (48000 * 3 + 12000)
    return [{"name": "keras_mlp_fit_epoch", "seconds": seconds, "flops": flops}]


def keras_cnn_fit_epoch(keras, repeat):
    """The seed's Keras CNN (channels-last 28x28x1): fit one epoch of 12,000 images, batch 32."""
    X, y = mnist_12k()
    X = np.ascontiguousarray(X.reshape(-1, 28, 28, 1))
    model = keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Conv2D(32, (3, 3), activation="relu"), keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Conv2D(64, (3, 3), activation="relu"), keras.layers.MaxPooling2D((2, 2)), keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    seconds = fit_seconds(model, X, y, repeat)
    fwd = 2.0 * (26 * 26 * 32 * 9 + 11 * 11 * 64 * 32 * 9 + 1600 * 64 + 64 * 10)
    return [{"name": "keras_cnn_fit_epoch", "seconds": seconds, "flops": 12000 * (3 * fwd - 2.0 * 26 * 26 * 32 * 9)}]


KERAS_WORKLOADS = {"keras_mlp_fit_epoch": keras_mlp_fit_epoch, "keras_cnn_fit_epoch": keras_cnn_fit_epoch}

WORKLOADS = {"gemm": gemm, "mlp_train_epoch": mlp_train_epoch, "mlp_infer_b1": mlp_infer_b1,
             "elementwise": elementwise, "cnn_train_b64": cnn_train_b64,
             "cnn_infer_b64": lambda fw, r: cnn_infer(fw, r, 64), "cnn_infer_b1": lambda fw, r: cnn_infer(fw, r, 1),
             "keras_cnn_epoch": keras_cnn_epoch, "conv_layer": conv_layer}
ORT_WORKLOADS = {"mlp_infer_b1": ort_mlp_infer_b1, "cnn_infer_b64": lambda t, r: ort_cnn_infer(t, r, 64),
                 "cnn_infer_b1": lambda t, r: ort_cnn_infer(t, r, 1)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("framework", choices=["neurocore", "torch", "onnxruntime", "tensorflow"])
    p.add_argument("workload", choices=sorted(WORKLOADS) + sorted(KERAS_WORKLOADS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    if args.workload in KERAS_WORKLOADS:
        rows = [] if args.framework in ("torch", "onnxruntime") else \
            KERAS_WORKLOADS[args.workload](keras_module(args.framework, args.threads), args.repeat)
    elif args.framework == "tensorflow":
        rows = []
    elif args.framework == "onnxruntime":
        if args.workload not in ORT_WORKLOADS:
            rows = []
        else:
            rows = ORT_WORKLOADS[args.workload](args.threads, args.repeat)
    else:
        fw = (NeurocoreFW if args.framework == "neurocore" else TorchFW)(args.threads)
        rows = WORKLOADS[args.workload](fw, args.repeat)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    for r in rows:
        r["peak_rss_mb"] = rss
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
