"""A/B timing of the GEMM kernel between two neurocore builds (and PyTorch / NumPy as peers).

Each round starts one fresh process per build (and per peer), one after the other, so the builds
alternate in time; a row keeps the minimum over all samples of all rounds. Every sample of a shape
is preceded by a short run of the FMA probe in the same process, and `eff` is the sample's
GFLOP/s over that probe's (median and 90th percentile over samples): a ratio that survives a VM
whose speed drifts.

--cputime (single-threaded only) times with the thread's CPU clock instead of the wall clock: on a
machine shared with other busy processes the time-slices given to them are then not counted, which
on the 2-core development VM cut the spread between two identical builds from about +-25% to a
few percent. Caches shared with the neighbours still add noise: repeat, and trust only large or
repeated differences. --raw calls the kernel through `_core._gemm` on NumPy arrays (no tensor,
autograd or allocation overhead); without it the row times `a @ b` on tensors as bench/run.py does.

To keep a build to compare against, copy its package first, e.g.
  mkdir -p /tmp/base && cp -r python/neurocore /tmp/base/
  python bench/gemm_ab.py --builds base=/tmp/base,new=python --raw --cputime --rounds 4
  python bench/gemm_ab.py --builds new=python --peers torch,numpy --threads 2
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r'''
import json, os, sys, time
import numpy as np
which, threads, shapes, reps, mintime = (sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]),
                                        int(sys.argv[4]), float(sys.argv[5]))
cputime = bool(os.environ.get("GEMM_AB_CPUTIME"))
clock = time.thread_time if cputime else time.perf_counter
import neurocore as nc
nc.set_num_threads(threads)


def probe(iterations):
    """The FMA probe's GFLOP/s, on this process's clock."""
    w0, c0 = time.perf_counter(), clock()
    gflops = nc._core._fma_peak_gflops(threads, iterations)  # on the wall clock
    wall, own = time.perf_counter() - w0, clock() - c0
    return gflops * wall / own if cputime else gflops


if which == "torch":
    import torch
    torch.set_num_threads(threads)
out = {"peak": max(probe(5000000) for _ in range(3)), "t": {}, "eff": {}}
rng = np.random.default_rng(0)
for m, k, n in shapes:
    A = rng.standard_normal((m, k), dtype=np.float32)
    B = rng.standard_normal((k, n), dtype=np.float32)
    if which == "torch":
        a, b = torch.from_numpy(A), torch.from_numpy(B)
        f = lambda: torch.mm(a, b)
    elif which == "numpy":
        f = lambda: A @ B
    elif os.environ.get("GEMM_AB_RAW"):
        C = np.empty((m, n), np.float32)
        g = nc._core._gemm
        f = lambda: g(False, False, 1.0, A, B, 0.0, C)
    else:
        a, b = nc.tensor(A), nc.tensor(B)
        f = lambda: a @ b
    f(), f()
    t0, calls = clock(), 0
    while clock() - t0 < mintime:
        f()
        calls += 1
    calls = max(1, calls)
    best, effs = float("inf"), []
    for _ in range(reps):
        peak = probe(1000000)
        t0 = clock()
        for _ in range(calls):
            f()
        t = (clock() - t0) / calls
        best = min(best, t)
        effs.append(2.0 * m * n * k / t / 1e9 / peak)
    key = f"{m}x{k}x{n}"
    out["t"][key], out["eff"][key] = best, sorted(effs)
print(json.dumps(out))
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--builds", required=True, help="name=package_parent_dir,... (the first is the baseline)")
    ap.add_argument("--peers", default="", help="torch,numpy: run with the first build on the path")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5, help="samples per shape per process")
    ap.add_argument("--mintime", type=float, default=0.02, help="seconds per sample at least")
    ap.add_argument("--shapes", default="1024x1024x1024,2048x2048x2048,32x160x512,64x4096x128,16x512x512",
                    help="m x k x n, comma separated")
    ap.add_argument("--cpu", default="0", help="taskset CPU list for single-threaded runs ('' for none)")
    ap.add_argument("--cputime", action="store_true", help="thread CPU time (single-threaded only)")
    ap.add_argument("--raw", action="store_true", help="neurocore through _core._gemm on NumPy arrays")
    args = ap.parse_args()
    if args.cputime and args.threads != 1:
        ap.error("--cputime needs --threads 1 (other threads' time would be missed)")
    shapes = [[int(x) for x in s.split("x")] for s in args.shapes.split(",")]
    builds = [b.split("=", 1) for b in args.builds.split(",")]
    runs = [(name, path, "nc") for name, path in builds]
    runs += [(peer, builds[0][1], peer) for peer in args.peers.split(",") if peer]
    results = {name: [] for name, _, _ in runs}
    for _ in range(args.rounds):
        for name, path, which in runs:
            env = dict(os.environ, PYTHONPATH=os.path.abspath(path), OMP_NUM_THREADS=str(args.threads),
                       OPENBLAS_NUM_THREADS=str(args.threads))
            env.update({"GEMM_AB_RAW": "1"} if args.raw else {})
            env.update({"GEMM_AB_CPUTIME": "1"} if args.cputime else {})
            cmd = [sys.executable, "-c", CHILD, which, str(args.threads), json.dumps(shapes), str(args.reps),
                   str(args.mintime)]
            if args.threads == 1 and args.cpu:
                cmd = ["taskset", "-c", args.cpu] + cmd
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"{name} failed:\n{proc.stderr}")
            results[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    base = runs[0][0]
    print(f"threads={args.threads} rounds={args.rounds} clock={'thread CPU' if args.cputime else 'wall'} "
          f"{'raw _gemm' if args.raw else 'a @ b'}; time = min over samples; GFLOP/s (% of the median probe); speed = base time / this time")
    for m, k, n in shapes:
        key, flops = f"{m}x{k}x{n}", 2.0 * m * n * k
        t_base = min(r["t"][key] for r in results[base])
        cells = []
        for name, _, _ in runs:
            t = min(r["t"][key] for r in results[name])
            peak = statistics.median(r["peak"] for r in results[name])
            effs = sorted(e for r in results[name] for e in r["eff"][key])
            cells.append(f"{name} {t * 1e6:.1f} us {flops / t / 1e9:.1f} ({100 * flops / t / 1e9 / peak:.0f}%)"
                         f" eff med {100 * statistics.median(effs):.0f}% p90 {100 * effs[int(0.9 * (len(effs) - 1))]:.0f}%"
                         + (f" speed vs {base} {t_base / t:.3f}x" if name != base else ""))
        print(f"{key}:\n  " + "\n  ".join(cells))
    print("probe GFLOP/s per round:", {name: [round(r["peak"], 1) for r in rs] for name, rs in results.items()})


if __name__ == "__main__":
    main()
