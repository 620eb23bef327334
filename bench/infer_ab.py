"""A/B of eager SimpleCNN inference (batch 1 and 64, 2 threads, under no_grad) between neurocore builds.

Each round runs one fresh process per build, one after the other, so the builds alternate in time on
a VM whose speed drifts; each row keeps the minimum over its samples and prints the per-round minima.
To keep a build to compare against, copy its package first:
  mkdir -p /tmp/base && cp -r python/neurocore /tmp/base/
  python bench/infer_ab.py base=/tmp/base,new=python [rounds]
"""
import subprocess, sys, json
CHILD = r'''
import sys, time, json, numpy as np
sys.path.insert(0, sys.argv[1])
import neurocore as nc
nc.set_num_threads(2)
nn = nc.nn
def simple_cnn():
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
                         nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10))
nc.manual_seed(0)
m = simple_cnn().eval()
out = {}
for b, n in ((1, 2000), (64, 60)):
    x = nc.randn(b, 3, 32, 32)
    with nc.no_grad():
        for _ in range(5): m(x)
        best = 1e9
        for _ in range(n):
            t0 = time.perf_counter(); m(x); best = min(best, time.perf_counter() - t0)
    out[b] = best * 1e6
print(json.dumps(out))
'''
builds = dict(kv.split("=") for kv in sys.argv[1].split(","))
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 4
res = {k: {} for k in builds}
for r in range(rounds):
    for name, path in builds.items():
        o = json.loads(subprocess.run([sys.executable, "-c", CHILD, path], capture_output=True, text=True, check=True).stdout)
        for b, t in o.items():
            res[name].setdefault(b, []).append(t)
for name in builds:
    print(name, {b: "min %.1f us, per-round %s" % (min(v), [round(x, 1) for x in v]) for b, v in res[name].items()})
