"""A/B of training steps (bench/workloads.py's models, batches and Adam loop) between neurocore builds.

Each round runs one fresh process per build, one after the other, so the builds alternate in time
on a VM whose speed drifts; a build's figure is the minimum over rounds of its per-process best
pass (4 passes over the batches: 40 Keras CNN steps of 32, 10 SimpleCNN steps of 64, 100 MLP steps
of 32), in microseconds per step, 2 threads.
  python bench/train_ab.py start=/path/to/old/python,new=python [rounds] [keras|simple|mlp] [isa]
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = r'''
import sys, time, numpy as np
sys.path.insert(0, sys.argv[2])
from bench import workloads as W
fw = W.NeurocoreFW(2)
kind = sys.argv[1]
if kind == "mlp":
    X, y = W.mnist_48k(); X, y, model, bs = X[:3200], y[:3200], fw.mlp(), 32
elif kind == "keras":
    X, y = W.mnist_12k(); X, y, model, bs = X[:1280], y[:1280], fw.keras_cnn(), 32
else:
    X, y, model, bs = W.cnn_images(640), np.random.default_rng(1).integers(0, 10, 640), fw.simple_cnn(), 64
batches = [(fw.tensor(X[i:i + bs]), fw.tensor(y[i:i + bs])) for i in range(0, len(X), bs)]
opt = fw.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = fw.nn.CrossEntropyLoss()
best = float("inf")
for _ in range(4):
    t0 = time.perf_counter()
    for xb, yb in batches:
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()
    best = min(best, (time.perf_counter() - t0) / len(batches))
print(best * 1e6)
'''


def main():
    builds = dict(kv.split("=", 1) for kv in sys.argv[1].split(","))
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    kind = sys.argv[3] if len(sys.argv) > 3 else "keras"
    isa = sys.argv[4] if len(sys.argv) > 4 else "auto"
    best = {name: float("inf") for name in builds}
    for _ in range(rounds):
        for name, path in builds.items():
            env = dict(os.environ, PYTHONPATH=os.path.abspath(path), NEUROCORE_CPU=isa)
            out = subprocess.run([sys.executable, "-c", CHILD, kind, os.path.dirname(HERE)], env=env,
                                 capture_output=True, text=True, check=True)
            best[name] = min(best[name], float(out.stdout.split()[-1]))
    first, *rest = builds
    print(f"{kind} ({isa}): " + ", ".join(f"{n} {t:.1f} us/step" for n, t in best.items())
          + "".join(f"; {first}/{n} = {best[first] / best[n]:.3f}" for n in rest))


if __name__ == "__main__":
    main()
