"""Benchmark workloads, one framework per process: ``python bench/workloads.py FRAMEWORK WORKLOAD``.

Prints one JSON list of rows {name, seconds, flops or bytes, peak_rss_mb}. Every framework runs
the same computation on the same data; the runner (bench/run.py) alternates the processes and
takes medians. Frameworks: neurocore, torch, onnxruntime (inference workloads only),
neurocore-runtime (inference workloads: the model exported with neurocore.export and run by the
C++ runtime through its Python binding, NumPy in and out), neurocore-cli (the same file timed by
the C++ tool bench/runtime_cli, no Python in the loop; each row is the median of the tool's p50
latencies) and tensorflow (Keras 3 on TensorFlow;
the keras_*_fit_epoch workloads, which neurocore runs with neurocore.keras and, as the
keras_*_fit_epoch_nn rows, with the same model and epoch written in neurocore.nn).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
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


class NumpyFW:
    """NumPy's matmul (its BLAS: OpenBLAS in the wheels; threads from OPENBLAS_NUM_THREADS, which
    bench/run.py sets): a peer for the GEMM rows only."""
    name = "numpy"

    def tensor(self, a):
        return np.ascontiguousarray(a)

    def mm(self, a, b):
        return lambda: a @ b


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


def train_epoch(fw, model, X, y, batch=32):
    """(epoch, steps): epoch() runs one epoch of the eager loop (Adam, cross-entropy) over X, y in
    `steps` batches of `batch`, made here, before any timing."""
    batches = [(fw.tensor(X[i:i + batch]), fw.tensor(y[i:i + batch])) for i in range(0, len(X), batch)]
    opt = fw.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = fw.nn.CrossEntropyLoss()

    def epoch():
        for xb, yb in batches:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    return epoch, len(batches)


def epoch_seconds(fw, model, X, y, repeat):
    """Median seconds of one epoch of the eager loop (batch 32) after a warm-up epoch."""
    return time_epochs(train_epoch(fw, model, X, y)[0], repeat)


def time_epochs(epoch, repeat):
    """Median seconds of max(1, repeat // 2) calls of epoch() after one warm-up call."""
    epoch()
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


# ---- busy neighbours ------------------------------------------------------------------------------

BUSY_NEIGHBOURS = 2  # busy-loop processes beside the contention rows (one per core of a 2-core machine)
# A neighbour spins until killed, and leaves by itself if its parent (this process) goes away.
BUSY_LOOP = ("import os\nparent = os.getppid()\ni = 0\nwhile True:\n    i += 1\n"
             "    if i % 1000000 == 0 and os.getppid() != parent:\n        break\n")


def beside_busy_neighbours(measure, count=BUSY_NEIGHBOURS):
    """measure() run once while `count` busy-loop processes keep the cores busy; they are always
    stopped afterwards."""
    procs = []
    try:
        for _ in range(count):
            procs.append(subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdin=subprocess.DEVNULL))
        time.sleep(0.3)  # the neighbours are up and spinning
        return measure()
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def contention_rows(measure):
    """`cnn_infer_b1` timed quietly, then beside the busy neighbours: rows "<name> quiet" and
    "<name> busy", and "<name> busy/quiet" whose `ratio` is the slowdown."""
    quiet = measure()[0]
    busy = beside_busy_neighbours(measure)[0]
    name = quiet["name"]
    return [dict(quiet, name=f"{name} quiet"), dict(busy, name=f"{name} busy", neighbours=BUSY_NEIGHBOURS),
            {"name": f"{name} busy/quiet", "ratio": busy["seconds"] / quiet["seconds"]}]


def contention(fw, repeat):
    """The batch-1 SimpleCNN (cnn_infer_b1), quietly and beside BUSY_NEIGHBOURS busy processes."""
    return contention_rows(lambda: cnn_infer(fw, repeat, 1))


def ort_contention(threads, repeat):
    return contention_rows(lambda: ort_cnn_infer(threads, repeat, 1))


# ---- the embedded runtime (neurocore.export) ----------------------------------------------------

def runtime_session(model, x_shape):
    """`model` (eval, weights loaded) exported at a fixed input shape and loaded by the runtime."""
    import tempfile
    import neurocore as nc
    model.eval()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.ncm")
        nc.export.save(model, path, (np.zeros(x_shape, np.float32),), dynamic_batch=False)
        return nc.export.load(path)


def rt_mlp_infer_b1(fw, repeat):
    model = fw.mlp()
    load_weights(fw, model, mlp_weights())
    session = runtime_session(model, (1, 784))
    x = np.random.default_rng(2).standard_normal((1, 784), dtype=np.float32)
    flops = 2.0 * (784 * 128 + 128 * 64 + 64 * 10)
    return [{"name": "mlp_infer_b1", "seconds": timeit(lambda: session(x), repeat), "flops": flops}]


def rt_cnn_infer(fw, repeat, batch):
    model = fw.simple_cnn()
    load_weights(fw, model, cnn_weights())
    session = runtime_session(model, (batch, 3, 32, 32))
    x = cnn_images(batch)
    return [{"name": f"cnn_infer_b{batch}", "seconds": timeit(lambda: session(x), repeat),
             "flops": batch * CNN_FWD_FLOPS}]


def rt_concurrent(fw, repeat):
    """Batch-1 SimpleCNN: 1, 2 and 4 Python threads calling one session; seconds per inference
    (the inverse of the throughput of all threads together)."""
    import threading
    model = fw.simple_cnn()
    load_weights(fw, model, cnn_weights())
    session = runtime_session(model, (1, 3, 32, 32))
    x = cnn_images(1)
    rows = []
    for threads in (1, 2, 4):
        samples = []
        for _ in range(repeat):
            counts = [0] * threads
            stop = time.perf_counter() + 0.3

            def work(t):
                while time.perf_counter() < stop:
                    session(x)
                    counts[t] += 1
            workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
            t0 = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            samples.append((time.perf_counter() - t0) / max(sum(counts), 1))
        rows.append({"name": f"runtime_concurrent_t{threads}", "seconds": statistics.median(samples),
                     "flops": CNN_FWD_FLOPS})
    return rows


RUNTIME_WORKLOADS = {"mlp_infer_b1": rt_mlp_infer_b1, "cnn_infer_b1": lambda fw, r: rt_cnn_infer(fw, r, 1),
                     "cnn_infer_b64": lambda fw, r: rt_cnn_infer(fw, r, 64), "runtime_concurrent": rt_concurrent}
# ---- recurrent networks -----------------------------------------------------------------------

RNN_GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def rnn_flops(kind, batch, steps, inp, hidden, layers=1, directions=1, train=True):
    """Multiply-adds x 2 of the input and recurrent GEMMs (x 3 with backward)."""
    g = RNN_GATES[kind] * hidden
    total, layer_in = 0.0, inp
    for _ in range(layers):
        total += directions * 2.0 * batch * steps * g * (layer_in + hidden)
        layer_in = hidden * directions
    return total * (3 if train else 1)


def rnn_train(fw, repeat, kind, batch=32, steps=100, inp=32, hidden=128, layers=1, bidirectional=False):
    """`kind` layer (batch_first) + a linear head on the last output: forward, MSE, backward, Adam."""
    nn = fw.nn
    fw.nc.manual_seed(0)
    rnn = getattr(nn, kind)(inp, hidden, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    head = nn.Linear(hidden * (2 if bidirectional else 1), 1)
    opt = fw.optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=1e-3)
    rng = np.random.default_rng(7)
    x = fw.tensor(rng.standard_normal((batch, steps, inp), dtype=np.float32))
    y = fw.tensor(rng.standard_normal((batch, 1), dtype=np.float32))

    def step():
        opt.zero_grad()
        out, _ = rnn(x)
        ((head(out[:, -1, :]) - y) ** 2).mean().backward()
        opt.step()
    return timeit(step, repeat), rnn_flops(kind, batch, steps, inp, hidden, layers, 2 if bidirectional else 1)


def rnn_train_row(name, kind, **kw):
    def run(fw, repeat):
        seconds, flops = rnn_train(fw, repeat, kind, **kw)
        return [{"name": name, "seconds": seconds, "flops": flops}]
    return run


def lstm_infer_weights(inp=32, hidden=128, out=10):
    rng = np.random.default_rng(8)
    s = 1 / np.sqrt(hidden)
    w = {"weight_ih_l0": (4 * hidden, inp), "weight_hh_l0": (4 * hidden, hidden), "bias_ih_l0": (4 * hidden,),
         "bias_hh_l0": (4 * hidden,)}
    w = {k: rng.uniform(-s, s, v).astype(np.float32) for k, v in w.items()}
    head = (rng.uniform(-s, s, (out, hidden)).astype(np.float32), rng.uniform(-s, s, out).astype(np.float32))
    return w, head


def lstm_infer_input(steps=100, inp=32):
    return np.random.default_rng(9).standard_normal((1, steps, inp), dtype=np.float32)


def lstm_infer_b1(fw, repeat):
    """Batch 1, 100 steps, input 32, hidden 128, eval: LSTM, then a linear head on h_n."""
    nn = fw.nn
    lstm, head = nn.LSTM(32, 128, batch_first=True), nn.Linear(128, 10)
    w, (hw, hb) = lstm_infer_weights()
    with fw.no_grad():
        for k, v in w.items():
            getattr(lstm, k).copy_(fw.tensor(v))
        head.weight.copy_(fw.tensor(hw))
        head.bias.copy_(fw.tensor(hb))
    lstm.eval()
    x = fw.tensor(lstm_infer_input())

    def call():
        with fw.no_grad():
            _, (h, _) = lstm(x)
            return head(h[0])
    return [{"name": "lstm_infer_b1", "seconds": timeit(call, repeat),
             "flops": rnn_flops("LSTM", 1, 100, 32, 128, train=False)}]


def ort_lstm_infer_b1(threads, repeat):
    """The same LSTM as one ONNX LSTM node (gates reordered i,f,g,o -> i,o,f,c) and a Gemm head."""
    from onnx import helper, numpy_helper
    w, (hw, hb) = lstm_infer_weights()
    order = lambda a: np.concatenate([a[0:128], a[384:512], a[128:256], a[256:384]])  # noqa: E731
    inits = [numpy_helper.from_array(order(w["weight_ih_l0"])[None], "W"),
             numpy_helper.from_array(order(w["weight_hh_l0"])[None], "R"),
             numpy_helper.from_array(np.concatenate([order(w["bias_ih_l0"]), order(w["bias_hh_l0"])])[None], "B"),
             numpy_helper.from_array(hw, "hw"), numpy_helper.from_array(hb, "hb"),
             numpy_helper.from_array(np.array([1, 128], dtype=np.int64), "shape")]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["xt", "W", "R", "B"], ["", "h"], hidden_size=128),
             helper.make_node("Reshape", ["h", "shape"], ["h2"]),
             helper.make_node("Gemm", ["h2", "hw", "hb"], ["y"], transB=1)]
    sess = ort_session(nodes, inits, (1, 100, 32), "y", (1, 10), threads)
    x = lstm_infer_input()
    return [{"name": "lstm_infer_b1", "seconds": timeit(lambda: sess.run(None, {"x": x}), repeat),
             "flops": rnn_flops("LSTM", 1, 100, 32, 128, train=False)}]


def charlm_epoch(fw, repeat):
    """The char-LSTM language model (Embedding 64, 2-layer LSTM 256, Linear 65): one pass of Adam
    steps over a fixed 200k-character slice of the Shakespeare text, batch 32, sequence 128."""
    import gzip
    nn = fw.nn
    with gzip.open(os.path.join(HERE, "..", "python", "neurocore", "datasets", "data", "tinyshakespeare.txt.gz"),
                   "rt", encoding="utf-8") as f:
        text = f.read()[:200_000]
    chars = sorted(set(text))
    data = np.array([chars.index(c) for c in text], dtype=np.int64)
    n = (len(data) - 1) // (32 * 128) * (32 * 128)
    X = data[:n].reshape(-1, 32, 128)
    Y = data[1:n + 1].reshape(-1, 32, 128)
    fw.nc.manual_seed(0)
    embed, lstm, head = nn.Embedding(len(chars), 64), nn.LSTM(64, 256, 2, batch_first=True), nn.Linear(256, len(chars))
    opt = fw.optim.Adam(list(embed.parameters()) + list(lstm.parameters()) + list(head.parameters()), lr=2e-3)
    batches = [(fw.tensor(x), fw.tensor(y)) for x, y in zip(X, Y)]

    def epoch():
        for x, y in batches:
            opt.zero_grad()
            out, _ = lstm(embed(x))
            fw.nn.functional.cross_entropy(head(out).reshape(-1, len(chars)), y.reshape(-1)).backward()
            opt.step()
    flops = len(batches) * (rnn_flops("LSTM", 32, 128, 64, 256, layers=2) + 3 * 2.0 * 32 * 128 * 256 * len(chars))
    return [{"name": "charlm_epoch", "seconds": timeit(epoch, repeat, min_time=0), "flops": flops}]
# ---- attention and Transformers (issue 10) ----

def seed_block(nn, d_model, num_heads, d_ff, dropout=0.1):
    """The seed guide's TransformerBlock, built on the framework's nn."""
    class TransformerBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = nn.MultiheadAttention(d_model, num_heads)
            self.norm1 = nn.LayerNorm(d_model)
            self.norm2 = nn.LayerNorm(d_model)
            self.feed_forward = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model))
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            attn_output, _ = self.attention(x, x, x)
            x = self.norm1(x + self.dropout(attn_output))
            return self.norm2(x + self.dropout(self.feed_forward(x)))
    return TransformerBlock()


def random_state(model, seed=7):
    """Numpy weights for every entry of the model's state_dict: uniform(+-1/sqrt(fan_in)) matrices,
    small biases, norm weights near 1 (the same arrays in every framework)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, t in model.state_dict().items():
        shape = tuple(t.shape)
        if len(shape) >= 2:
            out[name] = rng.uniform(-1, 1, shape).astype(np.float32) / np.float32(np.sqrt(shape[-1]))
        elif "norm" in name and name.endswith("weight"):
            out[name] = (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            out[name] = (0.02 * rng.standard_normal(shape)).astype(np.float32)
    return out


def load_state(fw, model, state):
    model.load_state_dict({k: fw.tensor(v) for k, v in state.items()})


BLOCK = dict(d_model=256, num_heads=8, d_ff=1024, seq=128, batch=16)


def block_forward_flops():
    d, f, L, n = BLOCK["d_model"], BLOCK["d_ff"], BLOCK["seq"], BLOCK["batch"]
    # projections (4 d^2) and feed-forward (2 d f) per token, plus q k^T and p v (2 L d) per token
    return 2.0 * n * L * (4 * d * d + 2 * d * f + 2 * L * d)


def block_input(fw):
    return fw.tensor(np.random.default_rng(3).standard_normal((BLOCK["seq"], BLOCK["batch"], BLOCK["d_model"]),
                                                              dtype=np.float32))


def transformer_block_train(fw, repeat):
    """The seed's TransformerBlock (d_model 256, 8 heads, d_ff 1024, dropout 0.1), sequence 128,
    batch 16, (L, N, E) input: forward, MSE loss, backward, Adam step."""
    model = seed_block(fw.nn, BLOCK["d_model"], BLOCK["num_heads"], BLOCK["d_ff"])
    load_state(fw, model, random_state(model))
    opt = fw.optim.Adam(model.parameters(), lr=1e-4)
    x = block_input(fw)
    target = fw.tensor(np.random.default_rng(4).standard_normal(tuple(x.shape), dtype=np.float32))
    loss_fn = fw.nn.MSELoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x), target).backward()
        opt.step()
    return [{"name": "transformer_block_train", "seconds": timeit(step, repeat), "flops": 3 * block_forward_flops()}]


def transformer_block_infer(fw, repeat):
    """The same block in eval mode under no_grad."""
    model = seed_block(fw.nn, BLOCK["d_model"], BLOCK["num_heads"], BLOCK["d_ff"])
    load_state(fw, model, random_state(model))
    model.eval()
    x = block_input(fw)

    def call():
        with fw.no_grad():
            return model(x)
    return [{"name": "transformer_block_infer", "seconds": timeit(call, repeat), "flops": block_forward_flops()}]


def ort_transformer_block_infer(threads, repeat):
    """The seed's block as an ONNX graph (MatMul/Softmax/LayerNormalization, opset 17) on the
    same weights as the other frameworks (taken from a neurocore model's state_dict keys)."""
    from onnx import helper, numpy_helper
    import neurocore as nc
    E, H, L, N = BLOCK["d_model"], BLOCK["num_heads"], BLOCK["seq"], BLOCK["batch"]
    hd = E // H
    w = random_state(seed_block(nc.nn, E, H, BLOCK["d_ff"]))
    inits = {
        "wq": w["attention.in_proj_weight"][:E].T, "wk": w["attention.in_proj_weight"][E:2 * E].T,
        "wv": w["attention.in_proj_weight"][2 * E:].T, "bq": w["attention.in_proj_bias"][:E],
        "bk": w["attention.in_proj_bias"][E:2 * E], "bv": w["attention.in_proj_bias"][2 * E:],
        "wo": w["attention.out_proj.weight"].T, "bo": w["attention.out_proj.bias"],
        "g1": w["norm1.weight"], "b1n": w["norm1.bias"], "g2": w["norm2.weight"], "b2n": w["norm2.bias"],
        "w1": w["feed_forward.0.weight"].T, "b1": w["feed_forward.0.bias"],
        "w2": w["feed_forward.2.weight"].T, "b2": w["feed_forward.2.bias"],
        "heads": np.array([L, N, H, hd], dtype=np.int64), "merged": np.array([L, N, E], dtype=np.int64),
        "scale": np.array(1.0 / np.sqrt(hd), dtype=np.float32)}
    n = helper.make_node
    nodes = []
    for t in "qkv":
        nodes += [n("MatMul", ["x", f"w{t}"], [f"{t}m"]), n("Add", [f"{t}m", f"b{t}"], [f"{t}b"]),
                  n("Reshape", [f"{t}b", "heads"], [f"{t}r"]),
                  n("Transpose", [f"{t}r"], [f"{t}h"], perm=[1, 2, 3, 0] if t == "k" else [1, 2, 0, 3])]
    nodes += [n("MatMul", ["qh", "kh"], ["s"]), n("Mul", ["s", "scale"], ["ss"]), n("Softmax", ["ss"], ["p"], axis=-1),
              n("MatMul", ["p", "vh"], ["o"]), n("Transpose", ["o"], ["ot"], perm=[2, 0, 1, 3]),
              n("Reshape", ["ot", "merged"], ["om"]), n("MatMul", ["om", "wo"], ["a"]), n("Add", ["a", "bo"], ["ab"]),
              n("Add", ["x", "ab"], ["r1"]), n("LayerNormalization", ["r1", "g1", "b1n"], ["y1"], axis=-1, epsilon=1e-5),
              n("MatMul", ["y1", "w1"], ["f1"]), n("Add", ["f1", "b1"], ["f1b"]), n("Relu", ["f1b"], ["f1r"]),
              n("MatMul", ["f1r", "w2"], ["f2"]), n("Add", ["f2", "b2"], ["f2b"]), n("Add", ["y1", "f2b"], ["r2"]),
              n("LayerNormalization", ["r2", "g2", "b2n"], ["y"], axis=-1, epsilon=1e-5)]
    sess = ort_session(nodes, [numpy_helper.from_array(np.ascontiguousarray(v), k) for k, v in inits.items()],
                       (L, N, E), "y", (L, N, E), threads)
    x = np.random.default_rng(3).standard_normal((L, N, E), dtype=np.float32)
    return [{"name": "transformer_block_infer", "seconds": timeit(lambda: sess.run(None, {"x": x}), repeat),
             "flops": block_forward_flops()}]


SDPA_SEQS = (512, 2048, 8192)


def sdpa_causal_step(fw, L):
    """Forward + backward of causal attention (batch 4, 8 heads, length L, head dim 64) on fixed
    random inputs, as a function."""
    rng = np.random.default_rng(L)
    q, k, v = (fw.tensor(rng.standard_normal((4, 8, L, 64), dtype=np.float32)) for _ in range(3))
    for t in (q, k, v):
        t.requires_grad_(True)
    g = fw.tensor(rng.standard_normal((4, 8, L, 64), dtype=np.float32))

    def step():
        for t in (q, k, v):
            t.grad = None
        fw.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True).backward(g)
    return step


def sdpa_causal(fw, repeat, seqs=SDPA_SEQS):
    """Causal scaled-dot-product attention, batch 4, 8 heads, head dim 64: forward + backward per
    sequence length (increasing, so each row's peak RSS is the peak up to that length)."""
    rows = []
    for L in seqs:
        step = sdpa_causal_step(fw, L)
        seconds = timeit(step, repeat if L < 8192 else min(repeat, 3), min_time=0.0 if L >= 8192 else 0.2)
        # forward q k^T and p v over half the matrix, backward five such products: 7 L^2/2 d MACs
        flops = 2.0 * 4 * 8 * 7 * (L * L / 2) * 64
        rows.append({"name": f"sdpa_causal L={L}", "seconds": seconds, "flops": flops,
                     "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0})
    return rows


GPT = dict(vocab=65, context=256, d_model=384, layers=6, heads=6, batch=16)


def char_gpt(fw):
    """The model of examples/char_gpt.py (token + position embeddings, norm_first GELU blocks with
    causal self-attention, tied head) on the framework's nn."""
    nn, lib = fw.nn, fw.nc
    d, ctx = GPT["d_model"], GPT["context"]

    class CharGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok_emb, self.pos_emb = nn.Embedding(GPT["vocab"], d), nn.Embedding(ctx, d)
            self.drop = nn.Dropout(0.1)
            self.blocks = nn.ModuleList([nn.TransformerEncoderLayer(d, GPT["heads"], 4 * d, 0.1, activation="gelu",
                                                                    batch_first=True, norm_first=True)
                                         for _ in range(GPT["layers"])])
            self.ln_f = nn.LayerNorm(d)
            self.head = nn.Linear(d, GPT["vocab"], bias=False)
            self.head.weight = self.tok_emb.weight

        def forward(self, idx):
            T = idx.shape[1]
            x = self.drop(self.tok_emb(idx) + self.pos_emb(lib.arange(T)))
            mask = nn.Transformer.generate_square_subsequent_mask(T)
            for block in self.blocks:
                x = block(x, src_mask=mask, is_causal=True)
            return self.head(self.ln_f(x))
    return CharGPT()


def gpt_char_train_step(fw):
    """One AdamW training step of the char GPT on fixed random tokens, as a function."""
    model = char_gpt(fw)
    load_state(fw, model, random_state(model))
    opt = fw.optim.AdamW(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(8)
    B, T = GPT["batch"], GPT["context"]
    x = fw.tensor(rng.integers(0, GPT["vocab"], (B, T)))
    y = fw.tensor(rng.integers(0, GPT["vocab"], (B * T,)))
    loss_fn = fw.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x).reshape(B * T, GPT["vocab"]), y).backward()
        opt.step()
    return step


def gpt_char_step(fw, repeat):
    """One AdamW training step of the char GPT (6 layers, d_model 384, 6 heads, context 256,
    batch 16): forward, cross-entropy, backward, update."""
    B, T, d = GPT["batch"], GPT["context"], GPT["d_model"]
    tokens = B * T
    fwd = 2.0 * tokens * (GPT["layers"] * (12 * d * d + 2 * (T / 2) * d) + d * GPT["vocab"])
    return [{"name": "gpt_char_step", "seconds": timeit(gpt_char_train_step(fw), repeat), "flops": 3 * fwd}]

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


def nn_fit_seconds(fw, model, X, y, repeat, validation_split=0.0):
    """Median seconds of the epoch keras fit runs, written with neurocore.nn: the last
    `validation_split` of the samples held out, the rest shuffled into batches of 32 (Adam,
    cross-entropy, running loss and accuracy), then loss and accuracy on the held-out part."""
    nc = fw.nc
    n_train = len(X) - int(len(X) * validation_split)
    opt = fw.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = fw.nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)

    def epoch():
        model.train()
        order = rng.permutation(n_train)
        seen, loss_sum, correct = 0, 0.0, 0
        for i in range(0, n_train, 32):
            idx = order[i:i + 32]
            xb, yb = nc.tensor(X[idx]), nc.tensor(y[idx])
            opt.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
            correct += int((out.argmax(1) == yb).sum().item())
        model.eval()
        with nc.no_grad():
            for i in range(n_train, len(X), 32):
                xb, yb = nc.tensor(X[i:i + 32]), nc.tensor(y[i:i + 32])
                out = model(xb)
                loss_sum += loss_fn(out, yb).item()
                correct += int((out.argmax(1) == yb).sum().item())
        return loss_sum / seen, correct
    return time_epochs(epoch, repeat)


def keras_mlp_fit_epoch_nn(fw, repeat):
    """keras_mlp_fit_epoch's model and epoch in neurocore.nn (the peer Keras must stay within 10% of)."""
    X, y = mnist_48k()
    X, y = np.concatenate([X, X[:12000]]), np.concatenate([y, y[:12000]])
    fw.nc.manual_seed(0)
    seconds = nn_fit_seconds(fw, fw.mlp(), X, y, repeat, validation_split=0.2)
    flops = 2.0 * (784 * 128 + 128 * 64 + 64 * 10) * (48000 * 3 + 12000)
    return [{"name": "keras_mlp_fit_epoch_nn", "seconds": seconds, "flops": flops}]


def keras_cnn_fit_epoch_nn(fw, repeat):
    """keras_cnn_fit_epoch's model and epoch in neurocore.nn (channels-first, as nn.Conv2d takes)."""
    X, y = mnist_12k()
    fw.nc.manual_seed(0)
    seconds = nn_fit_seconds(fw, fw.keras_cnn(), X, y, repeat)
    fwd = 2.0 * (26 * 26 * 32 * 9 + 11 * 11 * 64 * 32 * 9 + 1600 * 64 + 64 * 10)
    return [{"name": "keras_cnn_fit_epoch_nn", "seconds": seconds, "flops": 12000 * (3 * fwd - 2.0 * 26 * 26 * 32 * 9)}]


KERAS_WORKLOADS = {"keras_mlp_fit_epoch": keras_mlp_fit_epoch, "keras_cnn_fit_epoch": keras_cnn_fit_epoch}
KERAS_NN_PEERS = {"keras_mlp_fit_epoch": keras_mlp_fit_epoch_nn, "keras_cnn_fit_epoch": keras_cnn_fit_epoch_nn}

WORKLOADS = {"gemm": gemm, "mlp_train_epoch": mlp_train_epoch, "mlp_infer_b1": mlp_infer_b1,
             "elementwise": elementwise, "cnn_train_b64": cnn_train_b64,
             "cnn_infer_b64": lambda fw, r: cnn_infer(fw, r, 64), "cnn_infer_b1": lambda fw, r: cnn_infer(fw, r, 1),
             "keras_cnn_epoch": keras_cnn_epoch, "conv_layer": conv_layer,
             "rnn_train": rnn_train_row("rnn_train", "RNN"), "lstm_train": rnn_train_row("lstm_train", "LSTM"),
             "gru_train": rnn_train_row("gru_train", "GRU"), "lstm_infer_b1": lstm_infer_b1,
             "lstm_2layer_bidir_train": rnn_train_row("lstm_2layer_bidir_train", "LSTM", batch=64, steps=50, inp=64,
                                                      hidden=256, layers=2, bidirectional=True),
             "charlm_epoch": charlm_epoch,
             "transformer_block_train": transformer_block_train, "transformer_block_infer": transformer_block_infer,
             "sdpa_causal": sdpa_causal, "gpt_char_step": gpt_char_step, "contention": contention}
ORT_WORKLOADS = {"mlp_infer_b1": ort_mlp_infer_b1, "cnn_infer_b64": lambda t, r: ort_cnn_infer(t, r, 64),
                 "cnn_infer_b1": lambda t, r: ort_cnn_infer(t, r, 1), "lstm_infer_b1": ort_lstm_infer_b1,
                 "transformer_block_infer": ort_transformer_block_infer, "contention": ort_contention}


# ---- the embedded runtime on the sequence models, and from C++ (neurocore-cli) -------------------

def rt_lstm_model(fw):
    """lstm_infer_b1's model and weights as one module: the LSTM, then the head on h_n."""
    nn = fw.nn

    class LstmHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = nn.LSTM(32, 128, batch_first=True), nn.Linear(128, 10)

        def forward(self, x):
            _, (h, _) = self.lstm(x)
            return self.head(h[0])
    model = LstmHead()
    w, (hw, hb) = lstm_infer_weights()
    with fw.no_grad():
        for k, v in w.items():
            getattr(model.lstm, k).copy_(fw.tensor(v))
        model.head.weight.copy_(fw.tensor(hw))
        model.head.bias.copy_(fw.tensor(hb))
    return model


def rt_block_model(fw):
    """transformer_block_infer's block and weights."""
    model = seed_block(fw.nn, BLOCK["d_model"], BLOCK["num_heads"], BLOCK["d_ff"])
    load_state(fw, model, random_state(model))
    return model


def rt_models(fw):
    """The inference workloads' models (weights loaded) with their inputs and forward flops."""
    def mlp():
        model = fw.mlp()
        load_weights(fw, model, mlp_weights())
        return model, np.random.default_rng(2).standard_normal((1, 784), dtype=np.float32), \
            2.0 * (784 * 128 + 128 * 64 + 64 * 10)

    def cnn(batch):
        model = fw.simple_cnn()
        load_weights(fw, model, cnn_weights())
        return model, cnn_images(batch), batch * CNN_FWD_FLOPS
    return {
        "mlp_infer_b1": mlp,
        "cnn_infer_b1": lambda: cnn(1),
        "cnn_infer_b64": lambda: cnn(64),
        "lstm_infer_b1": lambda: (rt_lstm_model(fw), lstm_infer_input(), rnn_flops("LSTM", 1, 100, 32, 128, train=False)),
        "transformer_block_infer": lambda: (rt_block_model(fw), block_input(fw).numpy(), block_forward_flops()),
    }


def rt_sequence_row(name):
    def run(fw, repeat):
        model, x, flops = rt_models(fw)[name]()
        session = runtime_session(model, x.shape)
        return [{"name": name, "seconds": timeit(lambda: session(x), repeat), "flops": flops}]
    return run


RUNTIME_WORKLOADS.update({"lstm_infer_b1": rt_sequence_row("lstm_infer_b1"),
                          "transformer_block_infer": rt_sequence_row("transformer_block_infer")})


def cli_tool():
    """bench/runtime_cli (the C++ timing tool) built against the package's CMake config, as an app
    embedding the runtime is; kept in build/bench-cli and rebuilt when the package changed."""
    import subprocess
    import sys
    build = os.path.join(HERE, os.pardir, "build", "bench-cli")
    cmake_dir = subprocess.run([sys.executable, "-m", "neurocore.config", "--cmakedir"], capture_output=True,
                               text=True, check=True).stdout.strip()
    subprocess.run(["cmake", "-S", os.path.join(HERE, "runtime_cli"), "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                    f"-Dneurocore_DIR={cmake_dir}"], capture_output=True, check=True)
    subprocess.run(["cmake", "--build", build], capture_output=True, check=True)
    return os.path.join(build, "neurocore-run-cpp")


def cli_p50(tool, path, threads, runs):
    """Median latency (seconds) the C++ tool reports over `runs` calls."""
    import subprocess
    out = subprocess.run([tool, path, "--bench", str(runs), "--threads", str(threads)], capture_output=True,
                         text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("latency over"))
    return float(line.split("p50")[1].split()[0]) * 1e-6


def cli_row(name, threads, repeat):
    """The model exported at its bench input shape and timed by neurocore-run-cpp: the median over
    `repeat` tool runs of each run's p50, each run lasting about 0.2 s."""
    import tempfile
    import neurocore as nc
    model, x, flops = rt_models(NeurocoreFW(threads))[name]()
    model.eval()
    tool = cli_tool()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.ncm")
        nc.export.save(model, path, (x,), dynamic_batch=False)
        guess = cli_p50(tool, path, threads, 20)
        runs = int(min(max(0.2 / max(guess, 1e-7), 20), 200000))
        seconds = statistics.median(cli_p50(tool, path, threads, runs) for _ in range(repeat))
    return [{"name": name, "seconds": seconds, "flops": flops}]


CLI_WORKLOADS = ("mlp_infer_b1", "cnn_infer_b1", "cnn_infer_b64", "lstm_infer_b1", "transformer_block_infer")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("framework", choices=["neurocore", "torch", "onnxruntime", "neurocore-runtime", "neurocore-cli",
                                         "tensorflow", "numpy"])
    p.add_argument("workload", choices=sorted(set(WORKLOADS) | set(RUNTIME_WORKLOADS) | set(KERAS_WORKLOADS)))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    if args.workload in KERAS_WORKLOADS:
        rows = [] if args.framework not in ("neurocore", "tensorflow") else \
            KERAS_WORKLOADS[args.workload](keras_module(args.framework, args.threads), args.repeat)
        if args.framework == "neurocore":
            rows += KERAS_NN_PEERS[args.workload](NeurocoreFW(args.threads), args.repeat)
    elif args.framework == "tensorflow":
        rows = []
    elif args.framework == "numpy":
        rows = gemm(NumpyFW(), args.repeat) if args.workload == "gemm" else []
    elif args.framework == "onnxruntime":
        fn = ORT_WORKLOADS.get(args.workload)
        rows = fn(args.threads, args.repeat) if fn else []
    elif args.framework == "neurocore-runtime":
        fn = RUNTIME_WORKLOADS.get(args.workload)
        rows = fn(NeurocoreFW(args.threads), args.repeat) if fn else []
    elif args.framework == "neurocore-cli":
        rows = cli_row(args.workload, args.threads, args.repeat) if args.workload in CLI_WORKLOADS else []
    else:
        fw = (NeurocoreFW if args.framework == "neurocore" else TorchFW)(args.threads)
        rows = WORKLOADS[args.workload](fw, args.repeat) if args.workload in WORKLOADS else []
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    # Where this process's two threads ran just now: sharing a cache (~100 ns) or not (~400 ns).
    trip = sys.modules["neurocore"]._core._core_round_trip_ns(0.05) if "neurocore" in sys.modules else None
    for r in rows:
        r.setdefault("peak_rss_mb", rss)
        if trip is not None:
            r["round_trip_ns"] = trip
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
