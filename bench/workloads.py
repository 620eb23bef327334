"""Benchmark workloads, one framework per process: ``python bench/workloads.py FRAMEWORK WORKLOAD``.

Prints one JSON list of rows {name, seconds, flops or bytes, peak_rss_mb}. Every framework runs
the same computation on the same data; the runner (bench/run.py) alternates the processes and
takes medians. Frameworks: neurocore, torch, onnxruntime (inference workloads only).
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


def mlp_train_epoch(fw, repeat):
    """The seed's Keras MLP (784-128-64-10, ReLU, Dropout 0.2, Adam, cross-entropy), batch 32,
    one epoch over 48,000 samples in the eager PyTorch-style loop. Batches are made before timing."""
    X, y = mnist_48k()
    batches = [(fw.tensor(X[i:i + 32]), fw.tensor(y[i:i + 32])) for i in range(0, len(X), 32)]
    fw.nc.manual_seed(0)
    model = fw.mlp()
    opt = fw.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = fw.nn.CrossEntropyLoss()

    def epoch():
        for xb, yb in batches:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
    samples = []
    epoch()  # warm-up
    for _ in range(max(1, repeat // 2)):
        t0 = time.perf_counter()
        epoch()
        samples.append(time.perf_counter() - t0)
    flops = 48000 * 3 * 2.0 * (784 * 128 + 128 * 64 + 64 * 10)
    return [{"name": "mlp_train_epoch", "seconds": statistics.median(samples), "flops": flops}]


def mlp_weights():
    rng = np.random.default_rng(1)
    dims = [(784, 128), (128, 64), (64, 10)]
    return [(rng.standard_normal((o, i), dtype=np.float32) * 0.05, rng.standard_normal(o, dtype=np.float32) * 0.05)
            for i, o in dims]


def mlp_infer_b1(fw, repeat):
    model = fw.mlp()
    model.eval()
    linears = [m for m in model.modules() if type(m).__name__ == "Linear"]
    with fw.no_grad():
        for layer, (w, b) in zip(linears, mlp_weights()):
            layer.weight.copy_(fw.tensor(w))
            layer.bias.copy_(fw.tensor(b))
    x = fw.tensor(np.random.default_rng(2).standard_normal((1, 784), dtype=np.float32))

    def call():
        with fw.no_grad():
            return model(x)
    flops = 2.0 * (784 * 128 + 128 * 64 + 64 * 10)
    return [{"name": "mlp_infer_b1", "seconds": timeit(call, repeat), "flops": flops}]


def elementwise(fw, repeat):
    rng = np.random.default_rng(3)
    a = fw.tensor(rng.standard_normal(ELEMENTWISE_N, dtype=np.float32))
    b = fw.tensor(rng.standard_normal(ELEMENTWISE_N, dtype=np.float32))
    nbytes = {"add": 12, "relu": 8, "exp": 8, "softmax": 8}
    return [{"name": f"elementwise {k} 1M", "seconds": timeit(fn, repeat), "bytes": nbytes[k] * ELEMENTWISE_N}
            for k, fn in fw.elementwise(a, b).items()]


def ort_mlp_infer_b1(threads, repeat):
    """The same MLP as an ONNX graph (Gemm/Relu) run by ONNX Runtime."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    nodes, inits, prev = [], [], "x"
    for i, (w, b) in enumerate(mlp_weights()):
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [f"g{i}"], transB=1))
        prev = f"g{i}"
        if i < 2:
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 784])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(2).standard_normal((1, 784), dtype=np.float32)
    flops = 2.0 * (784 * 128 + 128 * 64 + 64 * 10)
    return [{"name": "mlp_infer_b1", "seconds": timeit(lambda: sess.run(None, {"x": x}), repeat), "flops": flops}]


WORKLOADS = {"gemm": gemm, "mlp_train_epoch": mlp_train_epoch, "mlp_infer_b1": mlp_infer_b1,
             "elementwise": elementwise}
ORT_WORKLOADS = {"mlp_infer_b1": ort_mlp_infer_b1}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("framework", choices=["neurocore", "torch", "onnxruntime"])
    p.add_argument("workload", choices=sorted(WORKLOADS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    if args.framework == "onnxruntime":
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
