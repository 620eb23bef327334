"""Benchmark runner: neurocore beside PyTorch (and ONNX Runtime for inference, NumPy's BLAS for GEMM) in one run.

    python bench/run.py [--suite gemm,mlp_train_epoch,mlp_infer_b1,elementwise] [--threads 2]
                        [--repeat 5] [--rounds 2] [--json results.json]

Each framework runs in its own process; processes alternate A B A B for --rounds rounds and each
row keeps the median over rounds of per-process medians. The machine's fp32 FMA peak is measured
first (neurocore's probe kernel), so "% peak" means a share of what this CPU sustains.
A framework that is not installed is reported as missing.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FRAMEWORKS = ["neurocore", "torch", "onnxruntime", "neurocore-runtime", "neurocore-cli", "tensorflow", "numpy"]
SUITES = ["gemm", "mlp_train_epoch", "mlp_infer_b1", "elementwise", "cnn_train_b64", "cnn_infer_b64", "cnn_infer_b1",
          "keras_cnn_epoch", "conv_layer", "runtime_concurrent", "rnn_train", "lstm_train", "gru_train",
          "lstm_infer_b1", "lstm_2layer_bidir_train", "charlm_epoch", "transformer_block_train",
          "transformer_block_infer", "sdpa_causal", "gpt_char_step", "keras_mlp_fit_epoch", "keras_cnn_fit_epoch",
          "contention"]


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure_peak(threads):
    """The fp32 FMA peak of the kernel build in use (GFLOP/s), and that build's name."""
    code = ("import neurocore as nc; nc.set_num_threads(%d); "
            "print(max(nc._core._fma_peak_gflops(%d, 20000000) for _ in range(3)), nc.cpu_capability())"
            % (threads, threads))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak, isa = out.stdout.split()
    return float(peak), isa


def available(framework):
    module = {"neurocore": "neurocore", "torch": "torch", "onnxruntime": "onnxruntime",
              "neurocore-runtime": "neurocore.export", "neurocore-cli": "neurocore.export",
              "tensorflow": "tensorflow", "numpy": "numpy"}[framework]
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    return r.returncode == 0


def run_one(framework, workload, threads, repeat):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    r = subprocess.run([sys.executable, os.path.join(HERE, "workloads.py"), framework, workload,
                        "--threads", str(threads), "--repeat", str(repeat)],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
    return {row["name"]: row for row in json.loads(r.stdout.strip().splitlines()[-1])}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default=",".join(SUITES))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    suites = [s.strip() for s in args.suite.split(",") if s.strip()]
    for s in suites:
        if s not in SUITES:
            p.error(f"unknown suite {s!r}; choose from {', '.join(SUITES)}")

    present = {fw: available(fw) for fw in FRAMEWORKS}
    peak, isa = measure_peak(args.threads)
    print(f"# {datetime.date.today()} | {cpu_model()} | neurocore kernels: {isa} | {args.threads} threads | "
          f"measured fp32 FMA peak {peak:.1f} GFLOP/s")
    missing = [fw for fw, ok in present.items() if not ok]
    if missing:
        print(f"# missing peers (not installed): {', '.join(missing)}")

    results, contention, trips = [], None, set()
    for suite in suites:
        per_fw = {fw: [] for fw in FRAMEWORKS if present[fw]}
        for _ in range(args.rounds):
            for fw in per_fw:  # A B A B: frameworks alternate within every round
                per_fw[fw].append(run_one(fw, suite, args.threads, args.repeat))
        if suite == "contention":
            contention = contention_summary(per_fw)
            continue
        names = []
        for runs in per_fw.values():
            for run in runs:
                names += [n for n in run if n != "error" and n not in names]
        for name in names:
            row = {"workload": name}
            for fw, runs in per_fw.items():
                times = [run[name]["seconds"] for run in runs if name in run]
                errors = [run["error"] for run in runs if "error" in run]
                if times:
                    row[fw] = statistics.median(times)
                    row[fw + "_rss_mb"] = max(run[name]["peak_rss_mb"] for run in runs if name in run)
                    ref = next(run[name] for run in runs if name in run)
                    row.setdefault("flops", ref.get("flops"))
                    row.setdefault("bytes", ref.get("bytes"))
                    trips.update(run[name]["round_trip_ns"] for run in runs if "round_trip_ns" in run.get(name, {}))
                elif errors:
                    row[fw + "_error"] = errors[0]
            results.append(row)

    header = (f"{'workload':<24}{'neurocore':>12}{'torch':>12}{'onnxrt':>12}{'nc-runtime':>12}{'nc-cli':>12}"
              f"{'tf-keras':>12}{'numpy':>12}"
              f"{'peer/nc':>10}{'GFLOP/s':>10}{'% peak':>8}{'GB/s':>8}")
    if results:  # (a contention-only run has just its own table)
        print(header)
        print("-" * len(header))
    for r in results:
        def fmt(fw):
            if fw in r:
                return _fmt_time(r[fw])
            if fw + "_error" in r:
                return "error"
            return "missing" if not present.get(fw) else "-"
        nc_t = r.get("neurocore")
        peer = "torch" if "torch" in r else "tensorflow"  # Keras workloads have TensorFlow as their peer
        ratio = f"{r[peer] / nc_t:.2f}x" if nc_t and peer in r else "-"
        gflops = r["flops"] / nc_t / 1e9 if nc_t and r.get("flops") else None
        gbs = r["bytes"] / nc_t / 1e9 if nc_t and r.get("bytes") else None
        print(f"{r['workload']:<24}{fmt('neurocore'):>12}{fmt('torch'):>12}{fmt('onnxruntime'):>12}"
              f"{fmt('neurocore-runtime'):>12}{fmt('neurocore-cli'):>12}{fmt('tensorflow'):>12}{fmt('numpy'):>12}{ratio:>10}"
              f"{(f'{gflops:.1f}' if gflops else '-'):>10}{(f'{100 * gflops / peak:.0f}%' if gflops else '-'):>8}"
              f"{(f'{gbs:.1f}' if gbs else '-'):>8}")
        for fw in FRAMEWORKS:
            if fw + "_error" in r:
                print(f"    {fw} error: {r[fw + '_error']}")
    if trips:
        print(f"# core-to-core round trip in the neurocore processes: {min(trips):.0f}-{max(trips):.0f} ns (~100 ns: "
              f"the threads' cores share a cache; ~400 ns: they do not, as a VM's vCPUs may be placed for a while, "
              f"and 2-thread rows run slower then)")
    if contention:
        print_contention(contention)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": str(datetime.date.today()), "cpu": cpu_model(), "threads": args.threads,
                       "peak_gflops": peak, "kernels": isa, "results": results, "contention": contention,
                       "round_trip_ns": sorted(trips)}, f,
                      indent=1)


def contention_summary(per_fw, name="cnn_infer_b1"):
    """Per framework: medians over rounds of the quiet and busy times and of the busy/quiet ratio
    (the `contention` workload's rows), or the error."""
    out = {}
    for fw, runs in per_fw.items():
        ok = [run for run in runs if f"{name} busy/quiet" in run]
        if ok:
            out[fw] = {"quiet": statistics.median(run[f"{name} quiet"]["seconds"] for run in ok),
                       "busy": statistics.median(run[f"{name} busy"]["seconds"] for run in ok),
                       "ratio": statistics.median(run[f"{name} busy/quiet"]["ratio"] for run in ok),
                       "neighbours": ok[0][f"{name} busy"]["neighbours"]}
        elif any("error" in run for run in runs):
            out[fw] = {"error": next(run["error"] for run in runs if "error" in run)}
    return out


def print_contention(summary):
    neighbours = next((r["neighbours"] for r in summary.values() if "neighbours" in r), "?")
    print(f"\ncontention: cnn_infer_b1 quiet and beside {neighbours} busy-loop processes")
    print(f"{'framework':<20}{'quiet':>12}{'busy':>12}{'busy/quiet':>12}")
    for fw, r in summary.items():
        if "error" in r:
            print(f"{fw:<20}{'error':>12}    {r['error']}")
        else:
            print(f"{fw:<20}{_fmt_time(r['quiet']):>12}{_fmt_time(r['busy']):>12}{r['ratio']:>11.2f}x")


def _fmt_time(s):
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.2f} us"


if __name__ == "__main__":
    main()
