"""Peak resident memory of attention workloads, neurocore against PyTorch, each measurement in a
fresh subprocess (so one run's peak cannot hide another's).

    python bench/peak_memory.py [--seqs 1024,4096] [--threads 2] [--skip-gpt]

Rows: `sdpa L=<n>` (causal F.scaled_dot_product_attention forward + backward, batch 4, 8 heads,
head dim 64, float32, as bench's sdpa_causal) and `gpt_char_step` (one AdamW step of the
examples/char_gpt.py model, bench's configuration). For each: the process's resident set after
building the inputs/model (`base`), its high-water mark after the step (VmHWM of
/proc/self/status: `peak`), and their difference (`step`). A seq x seq float32 matrix per head at
L = 4096 is 64 MiB, 2 GiB over the 32 heads: a `step` far below that shows none is held.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import json, sys
sys.path.insert(0, {root!r})
from bench import workloads as W

def status_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0

fw = (W.NeurocoreFW if {framework!r} == "neurocore" else W.TorchFW)({threads})
if {workload!r} == "gpt_char_step":
    step = W.gpt_char_train_step(fw)
else:
    step = W.sdpa_causal_step(fw, {seq})
base = status_mib("VmRSS")
step()
step()
print(json.dumps(dict(base=base, peak=status_mib("VmHWM"))))
"""


def measure(framework, workload, seq, threads):
    code = CHILD.format(root=os.path.dirname(HERE), framework=framework, workload=workload, seq=seq,
                        threads=threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800)
    if res.returncode != 0:
        raise RuntimeError(f"{framework} {workload} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seqs", default="1024,4096")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-gpt", action="store_true")
    args = p.parse_args()
    jobs = [("sdpa", int(s)) for s in args.seqs.split(",") if s]
    if not args.skip_gpt:
        jobs.append(("gpt_char_step", 0))
    rows = []
    print(f"{'workload':<16}{'framework':<11}{'base MiB':>10}{'peak MiB':>10}{'step MiB':>10}")
    for workload, seq in jobs:
        for framework in ("neurocore", "torch"):
            r = measure(framework, workload, seq, args.threads)
            name = workload if workload == "gpt_char_step" else f"sdpa L={seq}"
            rows.append(dict(name=name, framework=framework, **r))
            print(f"{name:<16}{framework:<11}{r['base']:>10.1f}{r['peak']:>10.1f}{r['peak'] - r['base']:>10.1f}",
                  flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
