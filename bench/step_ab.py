"""A/B of whole steps of the bench's models (bench/workloads.py) between neurocore builds.

Each round runs one fresh process per build, one after the other, so the builds alternate in time
on a VM whose speed drifts; a build's figure is the minimum over rounds of its per-process best, in
microseconds per step, 2 threads. Kinds:
  keras, simple, mlp   training steps (Adam, cross-entropy): 40 Keras CNN steps of 32, 10 SimpleCNN
                       steps of 64, 100 MLP steps of 32 per pass, best of 4 passes;
  infer                eager SimpleCNN inference under no_grad, batch 1 and 64 (min of calls);
  lstm, lstm_bidir     the lstm_train and lstm_2layer_bidir_train steps (Adam, MSE; median of 5
                       samples of >= 0.2 s, as bench/run.py times them).
  python bench/step_ab.py start=/path/to/old/python,new=python [rounds] [kind] [isa]
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = r'''
import json, sys, time, numpy as np
sys.path.insert(0, sys.argv[2])
from bench import workloads as W
fw = W.NeurocoreFW(2)
kind = sys.argv[1]

def best_of(fn, n):
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e6

if kind == "infer":
    model = fw.simple_cnn().eval()
    out = {}
    with fw.no_grad():
        for b, n in ((1, 2000), (64, 60)):
            x = fw.tensor(W.cnn_images(b))
            for _ in range(5):
                model(x)
            out[f"batch {b}"] = best_of(lambda: model(x), n)
    print(json.dumps(out))
    sys.exit()
if kind in ("lstm", "lstm_bidir"):
    kw = dict(batch=64, steps=50, inp=64, hidden=256, layers=2, bidirectional=True) if kind == "lstm_bidir" else {}
    print(json.dumps({"train step": W.rnn_train(fw, 5, "LSTM", **kw)[0] * 1e6}))
    sys.exit()
if kind == "mlp":
    X, y = W.mnist_48k(); X, y, model, bs = X[:3200], y[:3200], fw.mlp(), 32
elif kind == "keras":
    X, y = W.mnist_12k(); X, y, model, bs = X[:1280], y[:1280], fw.keras_cnn(), 32
else:
    X, y, model, bs = W.cnn_images(640), np.random.default_rng(1).integers(0, 10, 640), fw.simple_cnn(), 64
epoch, steps = W.train_epoch(fw, model, X, y, bs)
print(json.dumps({"train step": best_of(epoch, 4) / steps}))
'''


def main():
    builds = dict(kv.split("=", 1) for kv in sys.argv[1].split(","))
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    kind = sys.argv[3] if len(sys.argv) > 3 else "keras"
    isa = sys.argv[4] if len(sys.argv) > 4 else "auto"
    best = {}
    for _ in range(rounds):
        for name, path in builds.items():
            env = dict(os.environ, PYTHONPATH=os.path.abspath(path), NEUROCORE_CPU=isa)
            out = subprocess.run([sys.executable, "-c", CHILD, kind, os.path.dirname(HERE)], env=env,
                                 capture_output=True, text=True, check=True)
            for label, t in json.loads(out.stdout.strip().splitlines()[-1]).items():
                best.setdefault(label, {})[name] = min(best.get(label, {}).get(name, float("inf")), t)
    first, *rest = builds
    for label, times in best.items():
        print(f"{kind} {label} ({isa}): " + ", ".join(f"{n} {t:.1f} us" for n, t in times.items())
              + "".join(f"; {first}/{n} = {times[first] / times[n]:.3f}" for n in rest))


if __name__ == "__main__":
    main()
