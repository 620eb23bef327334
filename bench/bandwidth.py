"""Large-tensor elementwise throughput against the machine's memory bandwidth, neurocore beside torch.

    python bench/bandwidth.py [--n 16777216] [--threads 2] [--rounds 7]

Every operand is N float32 values (64 MB at the default N: far beyond the caches), so each op is a
stream through DRAM. GB/s counts the bytes the op must move once: inputs read plus output written
(add: 12 bytes per element, relu: 8). The write-allocate read a CPU does for an ordinary store is
not counted, so an op that moves 3 x 4 bytes per element on the bus while the table counts 2 x 4
can report at most about 2/3 of the copy bandwidth below.

Bandwidth references, measured in the same run:
  copy np   np.copyto(dst, src), one thread (counted as read + write, 8 bytes per element)
  copy torch / copy nc   dst.copy_(src) with the thread count of the run
  sum torch   torch.sum(src): reads only (4 bytes per element)

Rows ending in "new out" allocate their output on every call (the usual `a + b`); rows ending in
"into" write into an existing tensor (torch: out=, neurocore: the in-place form), which shows what
first-touch page faults of fresh allocations cost. Frameworks alternate (A B A B) for --rounds
rounds and each row is the median over rounds of per-round medians.
"""
import argparse
import statistics
import time

import numpy as np


def per_call(fn, calls=5):
    fn()
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def workloads(nc, torch, n):
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal(n, dtype=np.float32)
    b_np = rng.standard_normal(n, dtype=np.float32)
    dst_np = np.empty_like(a_np)
    a, b, c = nc.tensor(a_np), nc.tensor(b_np), nc.tensor(a_np)
    ta, tb, tc = torch.from_numpy(a_np.copy()), torch.from_numpy(b_np.copy()), torch.empty(n)
    nb = 4 * n
    return {
        "copy np": (lambda: np.copyto(dst_np, a_np), 2 * nb, None),
        "copy torch": (None, 2 * nb, lambda: tc.copy_(ta)),
        "copy nc": (lambda: c.copy_(a), 2 * nb, None),
        "sum torch": (None, nb, lambda: torch.sum(ta)),
        "sum": (lambda: nc.sum(a), nb, lambda: torch.sum(ta)),
        "add new out": (lambda: a + b, 3 * nb, lambda: ta + tb),
        "add into": (lambda: c.add_(b), 3 * nb, lambda: torch.add(ta, tb, out=tc)),
        "mul new out": (lambda: a * b, 3 * nb, lambda: ta * tb),
        "mul into": (lambda: c.mul_(b), 3 * nb, lambda: torch.mul(ta, tb, out=tc)),
        "add scalar new out": (lambda: a + 0.5, 2 * nb, lambda: ta + 0.5),
        "relu new out": (lambda: nc.relu(a), 2 * nb, lambda: torch.relu(ta)),
        "exp new out": (lambda: nc.exp(a), 2 * nb, lambda: torch.exp(ta)),
        "gelu new out": (lambda: nc.nn.functional.gelu(a), 2 * nb, lambda: torch.nn.functional.gelu(ta)),
        "silu new out": (lambda: nc.nn.functional.silu(a), 2 * nb, lambda: torch.nn.functional.silu(ta)),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1 << 24)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    import neurocore as nc
    import torch
    nc.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rows = workloads(nc, torch, args.n)
    times = {name: ([], []) for name in rows}
    for _ in range(args.rounds):
        for name, (f_nc, _, f_torch) in rows.items():
            if f_nc is not None:
                times[name][0].append(per_call(f_nc))
            if f_torch is not None:
                times[name][1].append(per_call(f_torch))
    print(f"n = {args.n} float32 ({4 * args.n / 2**20:.0f} MiB per operand), {args.threads} threads, "
          f"{args.rounds} rounds")
    print("median (and best) time per call; GB/s from the medians")
    print(f"{'workload':20s} {'neurocore':>20s} {'torch':>20s} {'nc GB/s':>8s} {'torch GB/s':>10s} {'torch/nc':>8s}")
    for name, (_, nbytes, _) in rows.items():
        t_nc = statistics.median(times[name][0]) if times[name][0] else None
        t_torch = statistics.median(times[name][1]) if times[name][1] else None
        best = {k: min(v) if v else None for k, v in zip(("nc", "torch"), times[name])}
        cell = lambda t, b: f"{t * 1e3:8.2f} ({b * 1e3:6.2f})ms" if t else f"{'-':>20s}"  # noqa: E731
        gbs = lambda t: f"{nbytes / t / 1e9:8.1f}" if t else f"{'-':>8s}"  # noqa: E731
        ratio = f"{t_torch / t_nc:7.2f}x" if t_nc and t_torch else f"{'-':>8s}"
        print(f"{name:20s} {cell(t_nc, best['nc'])} {cell(t_torch, best['torch'])} {gbs(t_nc)} {gbs(t_torch):>10s} {ratio}")


if __name__ == "__main__":
    main()
