"""Fuzz of the public API against PyTorch: random shapes (empty and 0-d included), dtypes, strided,
transposed and negative-stride NumPy sources, NaN/Inf values, broadcasting, bad dims and indices,
negative and overflowing sizes (cases: fuzz_worker.py).

The cases run in worker subprocesses in batches, so a crash (a segfault, an abort) fails this test
naming the case that caused it instead of killing pytest; the worker then restarts after that case.
NEUROCORE_FUZZ_SEED picks the seed (default: a new one each run, printed, so any failure can be
replayed with ``python fuzz_worker.py SEED CASE CASE+1 -v``); NEUROCORE_FUZZ_CASES the count.
"""
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from helpers import require_torch

HERE = os.path.dirname(os.path.abspath(__file__))


def run_range(seed, start, stop):
    """Runs cases [start, stop); returns (cases run, crashes, findings) with a worker restart after each crash."""
    crashes, findings, ran = [], [], 0
    while start < stop:
        r = subprocess.run([sys.executable, os.path.join(HERE, "fuzz_worker.py"), str(seed), str(start), str(stop)],
                           capture_output=True, text=True, timeout=600)
        last = None
        for line in r.stdout.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "CASE":
                last = int(rest)
            elif kind in ("OK", "BAD"):
                ran += 1
                last = None
                if kind == "BAD":
                    findings.append(rest)
        if r.returncode == 0 and last is None:
            break
        if last is None:  # died between cases or before the first: a harness failure
            raise AssertionError(f"fuzz worker failed (rc {r.returncode}): {r.stderr[-2000:]}")
        crashes.append(f"case {last}: exit code {r.returncode}; {r.stderr.strip()[-300:]}")
        ran += 1
        start = last + 1
    return ran, crashes, findings


def test_fuzz_public_api_against_torch():
    require_torch()
    seed = int(os.environ.get("NEUROCORE_FUZZ_SEED", random.SystemRandom().randrange(2**31)))
    cases = int(os.environ.get("NEUROCORE_FUZZ_CASES", "3000"))
    workers = 2
    bounds = [cases * k // workers for k in range(workers + 1)]
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda k: run_range(seed, bounds[k], bounds[k + 1]), range(workers)))
    ran = sum(r[0] for r in results)
    crashes = [c for r in results for c in r[1]]
    findings = [f for r in results for f in r[2]]
    print(f"\nfuzz seed {seed}: {ran} cases, {len(crashes)} crashes, {len(findings)} wrong results "
          f"(replay one: python tests/fuzz_worker.py {seed} CASE CASE+1 -v)")
    assert ran == cases
    assert not crashes, f"seed {seed}: crashes:\n" + "\n".join(crashes[:20])
    assert not findings, f"seed {seed}: {len(findings)} results differ from PyTorch:\n" + "\n".join(findings[:30])
