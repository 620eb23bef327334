"""Threads and processes: one model used from several Python threads, the thread count changed
during training, fork() after multi-threaded ops (multiprocessing and DataLoader-style workers),
and a soak run with flat memory. Every case runs under a timeout, so a hang fails the test instead
of hanging CI.
"""
import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn

TIMEOUT = 120


def run_isolated(code, timeout=TIMEOUT, env=None):
    r = subprocess.run([sys.executable, "-c", "import numpy as np, neurocore as nc\n" + textwrap.dedent(code)],
                       capture_output=True, text=True, timeout=timeout, env=env)
    return r.returncode, r.stdout + r.stderr


def make_model():
    nc.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, 10))


def make_cached_model():
    """make_model with a Winograd layer (16 -> 16 3x3): in eval its weight transform, and the 16-row
    Linear's packed panels, are made on first use and kept on the weights (core/derived_copy.h)."""
    nc.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, 10))


def test_one_eval_model_from_four_threads_equals_serial():
    # The threads' model is a second copy, so its cached weight copies are made while the four
    # threads race to use them; the serial results come from the first copy.
    inputs = [nc.tensor(np.random.default_rng(i).normal(size=(16, 3, 16, 16)).astype(np.float32)) for i in range(8)]
    with nc.no_grad():
        reference = make_cached_model().eval()
        serial = [reference(x).numpy() for x in inputs]
    model = make_cached_model().eval()
    results, errors = {}, []

    def work(k):
        try:
            with nc.no_grad():
                for rep in range(5):
                    for i in range(k, len(inputs), 4):
                        results[(k, rep, i)] = model(inputs[i]).numpy()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    assert len(results) == 5 * len(inputs)
    for (k, rep, i), out in results.items():
        np.testing.assert_array_equal(out, serial[i])
    assert nc._core._has_winograd_weight(model[2].weight) and nc._core._has_packed_weight(model[6].weight)


def test_training_while_another_thread_changes_thread_count():
    def train(losses):
        model = make_model()
        opt = nc.optim.SGD(model.parameters(), lr=0.01)
        x = nc.tensor(np.random.default_rng(0).normal(size=(32, 3, 16, 16)).astype(np.float32))
        y = nc.tensor(np.random.default_rng(1).integers(0, 10, size=32))
        for _ in range(15):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())

    reference = []
    train(reference)
    original = nc.get_num_threads()
    losses, stop = [], threading.Event()

    def flip_threads():
        n = 0
        while not stop.is_set():
            nc.set_num_threads(1 + n % 3)
            n += 1

    flipper = threading.Thread(target=flip_threads)
    trainer = threading.Thread(target=train, args=(losses,))
    flipper.start()
    trainer.start()
    trainer.join(TIMEOUT)
    stop.set()
    flipper.join(TIMEOUT)
    nc.set_num_threads(original)
    assert not trainer.is_alive(), "training hung"
    # Results do not depend on the thread count, so changing it mid-run changes nothing.
    np.testing.assert_array_equal(losses, reference)


FORK_CHILD_WORK = """
def child_work(seed):
    import neurocore as nc
    x = nc.tensor(np.random.default_rng(seed).normal(size=(256, 256)).astype(np.float32))
    return float((x @ x).sum().item()) + float(nc.nn.functional.max_pool2d(x.reshape(1, 1, 256, 256), 2).sum().item())
"""


def test_fork_after_parallel_ops():
    # The parent runs multi-threaded ops first (GEMM, pooling), then forks: os.fork, a
    # multiprocessing pool with the fork start method, and a DataLoader-style worker loop.
    rc, out = run_isolated(FORK_CHILD_WORK + textwrap.dedent("""
        import multiprocessing as mp, os
        nc.set_num_threads(2)
        expected = [child_work(s) for s in range(4)]   # also warms the OpenMP pool
        pid = os.fork()
        if pid == 0:
            os._exit(0 if child_work(0) == expected[0] else 3)
        _, status = os.waitpid(pid, 0)
        print("os.fork child exit", os.waitstatus_to_exitcode(status))
        with mp.get_context("fork").Pool(2) as pool:
            got = pool.map(child_work, range(4))
        print("pool equal", got == expected)

        class Squares(nc.utils.data.Dataset):
            def __len__(self):
                return 8
            def __getitem__(self, i):
                x = nc.full((64, 64), float(i))
                return (x @ x).sum()

        def worker(ids, q):
            q.put([float(Squares()[i].item()) for i in ids])

        ctx = mp.get_context("fork")
        q = ctx.Queue()
        procs = [ctx.Process(target=worker, args=(range(k, 8, 2), q)) for k in range(2)]
        for p in procs:
            p.start()
        got = sorted(v for _ in procs for v in q.get(timeout=60))
        for p in procs:
            p.join(60)
        print("loader equal", got == sorted(float(Squares()[i].item()) for i in range(8)))
        print("parent threads", nc.get_num_threads())
    """))
    assert rc == 0, out
    assert "os.fork child exit 0" in out and "pool equal True" in out and "loader equal True" in out, out
    assert "parent threads 2" in out, out  # the parent keeps its pool


def without_asan_quarantine():
    """The environment, with AddressSanitizer's quarantine off where the tests run under it
    (.ci/sanitize preloads libasan): ASan holds up to 256 MiB of freed blocks (the interpreter's
    too) to catch use-after-free, which reads as RSS growth although nothing leaks."""
    env = dict(os.environ)
    if "libasan" in env.get("LD_PRELOAD", ""):
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "quarantine_size_mb=0"]))
    return env


def test_soak_training_memory_is_flat():
    # 5,000 small training steps: RSS is printed (not timed); growth must stay small.
    rc, out = run_isolated("""
        import resource
        def rss_mb():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        import os
        nc.manual_seed(0)
        model = nc.nn.Sequential(nc.nn.Linear(20, 32), nc.nn.ReLU(), nc.nn.BatchNorm1d(32), nc.nn.Linear(32, 3))
        opt = nc.optim.Adam(model.parameters(), lr=1e-3)
        x = nc.randn(16, 20)
        y = nc.randint(0, 3, (16,))
        for step in range(5000):
            if step == 500:
                start = rss_mb()
            opt.zero_grad()
            loss = nc.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        end = rss_mb()
        print(f"soak: 5000 steps, RSS after warm-up {start:.1f} MiB, at end {end:.1f} MiB, loss {loss.item():.4f}")
    """, timeout=300, env=without_asan_quarantine())
    assert rc == 0, out
    print(out.strip())
    start, end = (float(v) for v in out.split("warm-up ")[1].replace(" MiB, at end", "").split(" MiB")[0].split())
    assert end - start < 20, out
