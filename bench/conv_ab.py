"""A/B timing of single conv2d layers between neurocore builds and kernel ISAs.

Each round starts one fresh process per (build, ISA), one after the other, so they alternate in
time; a row keeps the minimum over all samples of all rounds. Per layer it times the forward
(no_grad), the forward plus the weight gradient alone (x without grad, the weight with grad) and
the forward plus the input gradient alone (x with grad, the weight without), and reports each
gradient as the difference from the forward. GFLOP/s count 2*N*og*L*CK per pass (for Winograd
layers: direct-equivalent FLOPs); % is of the FMA probe of the first build's ISA at that thread count.

  python bench/conv_ab.py --builds main=/work/main/python,new=python --isas avx2,avx512 --rounds 3
  python bench/conv_ab.py --threads 1 --cputime ...   (less noisy on a shared machine)
"""
import argparse
import json
import os
import subprocess
import sys

# name, batch, in, out, image, kernel, stride, padding
LAYERS = [
    ("keras conv1 1->32 28", 32, 1, 32, 28, 3, 1, 0),
    ("keras conv2 32->64 13", 32, 32, 64, 13, 3, 1, 0),
    ("simple conv1 3->32 32p1", 64, 3, 32, 32, 3, 1, 1),
    ("simple conv2 32->64 16p1", 64, 32, 64, 16, 3, 1, 1),
    ("implicit 8->16 16p1", 64, 8, 16, 16, 3, 1, 1),
    ("implicit 32->64 32s2p1", 64, 32, 64, 32, 3, 2, 1),
    ("implicit 1x1 64->64 16", 64, 64, 64, 16, 1, 1, 0),
    # the Keras conv2's input gradient (a Winograd convolution of gy) and batch-1 inference
    ("keras conv2-dx 64->32 11p2", 32, 64, 32, 11, 3, 1, 2),
    ("simple conv2 b1 32->64 16p1", 1, 32, 64, 16, 3, 1, 1),
]

CHILD = r'''
import json, os, sys, time
import numpy as np
import neurocore as nc
threads, reps, layers = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
clock = time.thread_time if os.environ.get("CONV_AB_CPUTIME") else time.perf_counter
nc.set_num_threads(threads)
rng = np.random.default_rng(0)
out = {}
def tmin(f):
    f(); f()
    best = 1e9
    for _ in range(reps):
        t = clock(); f(); best = min(best, clock() - t)
    return best
for name, n, ci, co, hw, k, s, p in layers:
    x = nc.tensor(rng.standard_normal((n, ci, hw, hw), dtype=np.float32))
    w = nc.tensor(rng.standard_normal((co, ci, k, k), dtype=np.float32) * 0.1)
    b = nc.tensor(rng.standard_normal(co, dtype=np.float32))
    conv = lambda: nc.nn.functional.conv2d(x, w, b, stride=s, padding=p)
    with nc.no_grad():
        g = nc.tensor(rng.standard_normal(tuple(conv().shape), dtype=np.float32))
    def fwd():
        with nc.no_grad():
            conv()
    def backward_of(t):  # the forward and the gradient of t alone
        def run():
            t.grad = None
            conv().backward(g)
        t.requires_grad_(True)
        best = tmin(run)
        t.requires_grad_(False)
        return best
    out[name] = [tmin(fwd), backward_of(w), backward_of(x)]
print(json.dumps(out))
'''


PEAK = "import sys, neurocore as nc; print(nc._core._fma_peak_gflops(int(sys.argv[1])))"


def flops(n, ci, co, hw, k, s, p):
    o = (hw + 2 * p - k) // s + 1
    return 2.0 * n * co * o * o * ci * k * k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--builds", default="new=python")
    ap.add_argument("--isas", default="avx2,avx512")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--only", default="", help="substring filter on layer names")
    ap.add_argument("--cputime", action="store_true",
                    help="time with the thread's CPU clock (1 thread only): a neighbour's time-slices are not counted")
    a = ap.parse_args()
    if a.cputime and a.threads != 1:
        ap.error("--cputime needs --threads 1")
    layers = [l for l in LAYERS if a.only in l[0]]
    runs = [(b.split("=")[0], b.split("=")[1], isa) for b in a.builds.split(",") for isa in a.isas.split(",")]
    best = {}
    for _ in range(a.rounds):
        for bname, path, isa in runs:
            env = dict(os.environ, PYTHONPATH=os.path.abspath(path), NEUROCORE_CPU=isa)
            if a.cputime:
                env["CONV_AB_CPUTIME"] = "1"
            r = subprocess.run([sys.executable, "-c", CHILD, str(a.threads), str(a.reps), json.dumps(layers)],
                               env=env, capture_output=True, text=True, check=True)
            for name, ts in json.loads(r.stdout.strip().splitlines()[-1]).items():
                key = (name, bname, isa)
                best[key] = [min(u, v) for u, v in zip(best.get(key, ts), ts)]
    env = dict(os.environ, PYTHONPATH=os.path.abspath(runs[0][1]), NEUROCORE_CPU=runs[0][2])
    peak = float(subprocess.run([sys.executable, "-c", PEAK, str(a.threads)], env=env, capture_output=True,
                                text=True, check=True).stdout)
    print(f"FMA probe ({runs[0][2]}, {a.threads} thread(s)): {peak:.1f} GFLOP/s")
    head = "".join(f" {c + ' ms':>9s} {'GF/s':>6s} {'%pk':>4s}" for c in ("fwd", "wgrad", "igrad"))
    print(f"{'layer':28s} {'build':10s}{head}")
    for l in layers:
        f = flops(*l[1:])
        for bname, _, isa in runs:
            tf, tfw, tfi = best[(l[0], bname, isa)]
            cols = "".join(f" {t * 1e3:9.3f} {f / t / 1e9:6.0f} {100 * f / t / 1e9 / peak:4.0f}"
                           for t in (tf, max(tfw - tf, 1e-9), max(tfi - tf, 1e-9)))
            print(f"{l[0]:28s} {bname + '/' + isa:10s}{cols}")


if __name__ == "__main__":
    main()
