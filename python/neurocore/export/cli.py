"""``neurocore-run``: run an exported model on NumPy files, optionally timing it.

    neurocore-run model.ncm --input x.npy --output y.npy --bench 1000

Inputs are ``.npy`` files (one ``--input`` per model input, in order); each output is written to
its ``--output`` file. ``--bench N`` runs the model N more times on the same inputs and prints
latency percentiles (the call through the Python binding included).
"""
import argparse
import sys
import time

import numpy as np


def main(argv=None):
    from . import load
    parser = argparse.ArgumentParser(prog="neurocore-run", description="Run an exported neurocore model.")
    parser.add_argument("model", help="model file written by neurocore.export.save")
    parser.add_argument("--input", action="append", default=[], help=".npy file of an input (repeat per input)")
    parser.add_argument("--output", action="append", default=[], help=".npy file for an output (repeat per output)")
    parser.add_argument("--bench", type=int, default=0, metavar="N", help="time N runs and print percentiles")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs before --bench (default 10)")
    args = parser.parse_args(argv)
    try:
        session = load(args.model)
        inputs = [np.load(path, allow_pickle=False) for path in args.input]
        outputs = session(*inputs)
    except (ValueError, OSError) as e:
        print(f"neurocore-run: {e}", file=sys.stderr)
        return 1
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    if len(args.output) > len(outputs):
        print(f"neurocore-run: {len(args.output)} --output files for {len(outputs)} outputs", file=sys.stderr)
        return 1
    for path, out in zip(args.output, outputs):
        np.save(path, out)
    for name, out in zip(session.output_names, outputs):
        print(f"{name}: shape {tuple(out.shape)}")
    if args.bench > 0:
        for _ in range(args.warmup):
            session(*inputs)
        times = np.empty(args.bench)
        for i in range(args.bench):
            t0 = time.perf_counter_ns()
            session(*inputs)
            times[i] = time.perf_counter_ns() - t0
        us = times / 1e3
        p50, p90, p99 = np.percentile(us, [50, 90, 99])
        print(f"latency over {args.bench} runs (us): p50 {p50:.1f}  p90 {p90:.1f}  p99 {p99:.1f}  "
              f"min {us.min():.1f}  mean {us.mean():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
