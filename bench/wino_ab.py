"""A/B timing of the Winograd convolution layers of the seed models between builds and kernel ISAs.

Layers: the Keras CNN's conv2 (batch 32, 32 -> 64, 13x13 valid) and its input gradient's shape
(64 -> 32, 11x11, padding 2), the SimpleCNN's conv2 (batch 64 and 1, 32 -> 64, 16x16, padding 1);
each forward (no grad) and forward + input gradient. Figures are direct-equivalent GFLOP/s
(2*N*OC*OH*OW*C*9 per convolution / time), the best of all rounds; each round starts one fresh
process per build, one after the other. --cputime (1 thread only) times with the thread's CPU
clock, which leaves out the time-slices given to other processes on a shared machine.

  mkdir -p /tmp/base && cp -r python/neurocore /tmp/base/     # (a build to compare against)
  python bench/wino_ab.py --builds base:avx2=/tmp/base,base:avx512=/tmp/base,new:avx512=python
  python bench/wino_ab.py --builds ... --threads 1 --cputime --rounds 6
"""
import argparse
import json
import os
import subprocess
import sys

CHILD = r'''
import json, sys, time
import numpy as np
import neurocore as nc
import neurocore.nn.functional as F
threads, reps = int(sys.argv[1]), int(sys.argv[2])
clock = time.thread_time if sys.argv[3] == "1" else time.perf_counter
nc.set_num_threads(threads)
layers = {"keras conv2": (32, 32, 64, 13, 0), "keras conv2 dx": (32, 64, 32, 11, 2),
          "cnn conv2 b64": (64, 32, 64, 16, 1), "cnn conv2 b1": (1, 32, 64, 16, 1)}
rng = np.random.default_rng(0)
out = {}
for name, (n, c, oc, hw, pad) in layers.items():
    x = nc.tensor(rng.standard_normal((n, c, hw, hw), dtype=np.float32))
    xg = nc.tensor(rng.standard_normal((n, c, hw, hw), dtype=np.float32), requires_grad=True)
    w = nc.tensor(rng.standard_normal((oc, c, 3, 3), dtype=np.float32) * 0.1)
    b = nc.tensor(rng.standard_normal((oc,), dtype=np.float32))
    flops = 2.0 * n * oc * (hw + 2 * pad - 2) ** 2 * c * 9

    def fwd():
        with nc.no_grad():
            F.conv2d(x, w, b, padding=pad)

    def fwd_dx():
        F.conv2d(xg, w, b, padding=pad).sum().backward()
        xg.grad = None

    for key, f, fl in (("fwd", fwd, flops), ("fwd+dx", fwd_dx, 2 * flops)):
        f(), f()
        t0, calls = clock(), 0
        while clock() - t0 < 0.03:
            f()
            calls += 1
        best = float("inf")
        for _ in range(reps):
            t0 = clock()
            for _ in range(calls):
                f()
            best = min(best, (clock() - t0) / calls)
        out[f"{name} {key}"] = fl / best / 1e9
print(json.dumps(out))
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--builds", required=True, help="name:isa=package_parent_dir,... (the first is the baseline)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=7, help="samples per layer per process")
    ap.add_argument("--cputime", action="store_true", help="thread CPU time (1 thread only)")
    args = ap.parse_args()
    if args.cputime and args.threads != 1:
        ap.error("--cputime needs --threads 1 (other threads' time would be missed)")
    builds = [b.split("=", 1) for b in args.builds.split(",")]
    res = {}
    for _ in range(args.rounds):
        for name, path in builds:
            env = dict(os.environ, PYTHONPATH=os.path.abspath(path), NEUROCORE_CPU=name.split(":")[1],
                       OMP_NUM_THREADS=str(args.threads))
            cmd = [sys.executable, "-c", CHILD, str(args.threads), str(args.reps), str(int(args.cputime))]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"{name}: {proc.stderr}")
            for k, v in json.loads(proc.stdout).items():
                res.setdefault(k, {}).setdefault(name, []).append(v)
    names = [n for n, _ in builds]
    clock = "thread CPU time" if args.cputime else "wall clock"
    print(f"direct-equivalent GFLOP/s, best of {args.rounds} rounds, {args.threads} thread(s), {clock}; "
          f"(ratio to {names[0]})")
    print(f"{'layer':24s}" + "".join(f"{n:>18s}" for n in names))
    for k, d in res.items():
        base = max(d[names[0]])
        print(f"{k:24s}" + "".join(f"{max(d[n]):10.1f} ({max(d[n]) / base:4.2f})" for n in names))


if __name__ == "__main__":
    main()
