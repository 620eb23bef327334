"""The work-sharing pool behind parallel_for (cpp/core/parallel.{h,cpp}) seen through ops.

Ranges are cut into chunks fixed by the range and the grain; any thread claims the next chunk.
So every op must give the same bits whatever the thread count (1, 2, more threads than cores)
and however the chunks were shared out, including when busy neighbour processes keep the cores
busy and pool threads run late. Sizes sit around the chunk boundaries (the grain, the 64-chunk
cap). No timing is asserted: a neighbour only changes who runs which chunk, never the result,
and a hang fails through the timeout of the subprocess that runs the busy case.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neurocore as nc
from neurocore import nn
from neurocore.nn import functional as F

from helpers import with_threads

GRAIN = 32768  # kElementwiseGrain (cpp/core/iter.h)
SIZES = [GRAIN, GRAIN + 1, 2 * GRAIN + 7, 64 * GRAIN + 5, 131 * GRAIN + 3]
THREADS = [1, 2, 3, 5]


def same_for_all_thread_counts(fn):
    results = [with_threads(n, fn) for n in THREADS]
    for n, r in zip(THREADS[1:], results[1:]):
        for a, b in zip(results[0], r):
            assert np.array_equal(a, b, equal_nan=True), f"{n} threads differ from 1"
    return results[0]


def _arrays(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)


@pytest.mark.parametrize("n", SIZES)
def test_elementwise_chunks(n):
    a, b = _arrays(n)
    x, y = nc.tensor(a), nc.tensor(b)
    out = same_for_all_thread_counts(lambda: [(x + y).numpy(), nc.exp(x).numpy(), nc.relu(x).numpy(),
                                              nc.tanh(x).numpy()])
    assert np.array_equal(out[0], a + b) and np.array_equal(out[2], np.maximum(a, 0))
    np.testing.assert_allclose(out[1], np.exp(a), rtol=1e-6)


@pytest.mark.parametrize("rows,cols", [(1, 3 * GRAIN + 1), (4099, 33), (64 * 8 + 3, 1024)])
def test_reductions_and_softmax(rows, cols):
    a = np.random.default_rng(1).standard_normal((rows, cols)).astype(np.float32)
    x = nc.tensor(a)
    out = same_for_all_thread_counts(lambda: [x.sum().numpy(), x.sum(dim=1).numpy(), x.amax(dim=0).numpy(),
                                              nc.softmax(x, dim=1).numpy(), F.layer_norm(x, (cols,)).numpy()])
    np.testing.assert_allclose(out[0], a.astype(np.float64).sum(), rtol=1e-5, atol=1e-3)
    assert np.array_equal(out[2], a.max(axis=0))


@pytest.mark.parametrize("batch,m,k,n", [(2, 300, 260, 270), (3, 100, 90, 110), (37, 20, 9, 33), (128, 16, 8, 16)])
def test_batched_matmul_forward_and_backward(batch, m, k, n):
    # Batched products run whole, one per thread, when they are small or many (bmm_raw), else each
    # split inside; either way the same bits for any thread count, and float64 NumPy's values.
    # Operands: a transposed view, a broadcast batch (stride 0) and a copy-needing strided view.
    rng = np.random.default_rng(batch)
    a0 = rng.standard_normal((batch, k, m)).astype(np.float32)
    b0 = rng.standard_normal((1, k, n)).astype(np.float32)
    c0 = rng.standard_normal((batch, m, 2 * n)).astype(np.float32)
    g0 = rng.standard_normal((batch, m, n)).astype(np.float32)

    def run():
        a, b = nc.tensor(a0, requires_grad=True), nc.tensor(b0, requires_grad=True)
        y = nc.matmul(a.transpose(1, 2), b)
        y.backward(nc.tensor(g0))
        z = nc.matmul(nc.tensor(c0)[:, :, ::2], nc.tensor(g0).transpose(1, 2))  # no unit stride: copied
        return [y.detach().numpy(), a.grad.numpy(), b.grad.numpy(), z.numpy()]
    y, ga, gb, z = same_for_all_thread_counts(run)
    a64, b64, g64 = a0.astype(np.float64), b0.astype(np.float64), g0.astype(np.float64)
    np.testing.assert_allclose(y, a64.transpose(0, 2, 1) @ b64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ga, (g64 @ b64.transpose(0, 2, 1)).transpose(0, 2, 1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gb, (a64 @ g64).sum(0, keepdims=True), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(z, c0[:, :, ::2].astype(np.float64) @ g64.transpose(0, 2, 1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch", [1, 3, 64])
def test_conv_pool_linear_forward_and_backward(batch):
    # conv2d's implicit GEMM (weight panels and column blocks claimed by any thread), max pooling
    # and the GEMM's direct and dot paths (batch 1: few rows); forward and all gradients.
    nc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 8 * 8, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    x0 = np.random.default_rng(2).standard_normal((batch, 3, 32, 32)).astype(np.float32)

    def run():
        x = nc.tensor(x0, requires_grad=True)
        for p in model.parameters():
            p.grad = None
        with nc.no_grad():
            fused = model(x).numpy()  # Conv+ReLU and Linear+ReLU fused
        out = model(x)
        out.square().sum().backward()
        return [fused, out.detach().numpy(), x.grad.numpy()] + [p.grad.numpy() for p in model.parameters()]
    out = same_for_all_thread_counts(run)
    assert np.array_equal(out[0], out[1])


@pytest.mark.parametrize("batch,padding", [(1, 1), (5, 0), (2, 2)])
def test_winograd_conv_forward_and_input_grad(batch, padding):
    # 3x3 stride-1 layers with >= 16 channels run on the Winograd kernel (tiles across the batch in
    # fixed panels; out-channel blocks for batch 1), forward, fused ReLU and input gradient.
    nc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(32, 48, 3, padding=padding), nn.ReLU())
    x0 = np.random.default_rng(3).standard_normal((batch, 32, 15, 13)).astype(np.float32)

    def run():
        x = nc.tensor(x0, requires_grad=True)
        with nc.no_grad():
            fused = model(x).numpy()
        out = model[0](x)
        out.square().sum().backward()
        return [fused, out.detach().numpy(), x.grad.numpy()]
    out = same_for_all_thread_counts(run)
    assert np.array_equal(out[0], np.maximum(out[1], 0))


def test_random_fill_and_optimizer_step():
    def run():
        nc.manual_seed(7)
        r = [nc.randn(3 * GRAIN + 11).numpy(), nc.rand(5, GRAIN + 1).numpy()]
        lin = nn.Linear(700, 300)
        opt = nc.optim.Adam(lin.parameters(), lr=1e-2)
        for _ in range(3):
            opt.zero_grad()
            lin(nc.ones(4, 700)).sum().backward()
            opt.step()
        return r + [lin.weight.detach().numpy(), lin.bias.detach().numpy()]
    same_for_all_thread_counts(run)


def test_errors_in_parallel_ops_still_raise():
    # Bad input is refused before any chunk runs; the pool must stay usable afterwards.
    x = nc.randn(4 * GRAIN)
    with pytest.raises(Exception):
        x.take(nc.tensor(np.array([0, 4 * GRAIN], dtype=np.int64)))
    assert np.array_equal(with_threads(2, lambda: (x + x).numpy()), (x.numpy() * 2))


BUSY_CASE = r"""
import subprocess, sys
import numpy as np
import neurocore as nc
from neurocore import nn

def outputs():
    nc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(),
                          nn.Linear(128, 10)).eval()
    x = nc.tensor(np.random.default_rng(5).standard_normal((1, 3, 32, 32)).astype(np.float32))
    big = nc.tensor(np.random.default_rng(6).standard_normal(40 * 32768).astype(np.float32))
    with nc.no_grad():
        return [model(x).numpy() for _ in range(50)] + [nc.exp(big).numpy(), nc.softmax(big.reshape(1280, 1024), dim=1).numpy()]

nc.set_num_threads(1)
reference = outputs()
nc.set_num_threads(2)
spin = "import os\nparent = os.getppid()\ni = 0\nwhile True:\n    i += 1\n    if i % 1000000 == 0 and os.getppid() != parent:\n        break\n"
busy = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(2)]
try:
    got = outputs()
finally:
    for p in busy:
        p.kill()
        p.wait()
assert all(np.array_equal(a, b) for a, b in zip(reference, got)), "results changed beside busy neighbours"
print("ok")
"""


def test_same_results_beside_busy_neighbours():
    # Two busy-loop processes on a 2-core machine make the scheduler set pool threads aside, so
    # chunks are claimed in varying orders (often all by the caller): same bits, no hang.
    r = subprocess.run([sys.executable, "-c", BUSY_CASE], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, OMP_NUM_THREADS="2"))
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_pool_from_several_python_threads_and_after_fork():
    # One caller at a time holds the pool, the others run their chunks inline; a forked child
    # runs its ops on its own thread. Same results in every case.
    code = textwrap.dedent("""
        import os, threading
        import numpy as np
        import neurocore as nc
        nc.set_num_threads(2)
        x = nc.tensor(np.random.default_rng(0).standard_normal(50 * 32768).astype(np.float32))
        ref = nc.exp(x).numpy()
        bad = []
        def work():
            for _ in range(20):
                if not np.array_equal(nc.exp(x).numpy(), ref):
                    bad.append(1)
        ts = [threading.Thread(target=work) for _ in range(4)]
        for t in ts: t.start()
        for t in ts: t.join()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if np.array_equal(nc.exp(x).numpy(), ref) else 3)
        _, status = os.waitpid(pid, 0)
        print("ok" if not bad and os.WEXITSTATUS(status) == 0 else f"bad {bad} {status}")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


@pytest.mark.parametrize("n,grain", [(1, 1), (100, 100), (101, 100), (64 * 7 + 3, 1), (100000, 1000), (100000, 7)])
def test_chunks_fixed_by_range_and_grain(n, grain):
    # The bounds parallel_for hands to its body are the same on 1, 2 or 5 threads (whoever ran
    # them), tile [0, n) in order, and hold at least `grain` items and at most 64 chunks.
    chunks = [with_threads(t, lambda: nc._core._pool_chunks_for_test(n, grain)) for t in (1, 2, 5)]
    assert chunks[0] == chunks[1] == chunks[2]
    assert chunks[0][0][0] == 0 and chunks[0][-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(chunks[0], chunks[0][1:]))
    size = max(grain, -(-n // 64))
    assert all(e - b == min(size, n - b) for b, e in chunks[0]) and len(chunks[0]) <= 64


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_exception_inside_a_chunk_reaches_the_caller(threads):
    # Whichever thread runs the failing chunk (caller or pool thread), its exception is raised
    # to Python and the pool keeps working afterwards.
    for fail_at in (0, 50000, 99999):
        with pytest.raises(ValueError, match=r"_pool_chunks_for_test\] chunk \["):
            with_threads(threads, lambda: nc._core._pool_chunks_for_test(100000, 1000, fail_at))
    assert len(with_threads(threads, lambda: nc._core._pool_chunks_for_test(100000, 1000))) == 64


# Runs the ops of BUSY_CASE with one thread, then with two under a pool test hook (see
# cpp/core/parallel.cpp), and prints the pool's counters of the second part as JSON.
HOOKED_CASE = r"""
import json
import os
import time
import numpy as np
import neurocore as nc
from neurocore import nn

def outputs():
    nc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    x = nc.tensor(np.random.default_rng(5).standard_normal((4, 3, 32, 32)).astype(np.float32))
    big = nc.tensor(np.random.default_rng(6).standard_normal(40 * 32768).astype(np.float32))
    out = model(x)
    out.square().sum().backward()
    lstm = nn.LSTM(16, 128, batch_first=True)  # its steps run on a StepTeam
    seq, _ = lstm(nc.tensor(np.random.default_rng(7).standard_normal((8, 128, 16)).astype(np.float32)))
    seq.square().sum().backward()
    return [out.detach().numpy(), seq.detach().numpy(), nc.exp(big).numpy(),
            nc.softmax(big.reshape(1280, 1024), dim=1).numpy(), big.sum().numpy()] + [
            p.grad.numpy() for p in list(model.parameters()) + list(lstm.parameters())]

nc.set_num_threads(1)
reference = outputs()
nc.set_num_threads(2)
before = nc._core._pool_stats()
got = outputs()
# A pool thread joins a recurrent layer's team only if it comes while the layer runs; on a busy
# machine it can miss all the steps: run again (bounded) until a team mate has waited for it.
for _ in range(20):
    if (not os.environ.get("NEUROCORE_POOL_TEST_TEAM_SLOW_US") or
            nc._core._pool_stats()["team_sleeps"] > before["team_sleeps"]):
        break
    assert all(np.array_equal(a, b) for a, b in zip(reference, got)), "results changed with the hook"
    got = outputs()
# A late pool thread records its visit only when its delay is over, which on a fast machine can
# be after the last job: wait for it (bounded) rather than read the counters too early.
deadline = time.monotonic() + 5
while (os.environ.get("NEUROCORE_POOL_TEST_LATE_US") and time.monotonic() < deadline and
       nc._core._pool_stats()["late_visits"] == before["late_visits"]):
    time.sleep(0.005)
after = nc._core._pool_stats()
assert all(np.array_equal(a, b) for a, b in zip(reference, got)), "results changed with the hook"
print(json.dumps({k: after[k] - before[k] for k in after}))
"""


def _hooked_run(hook, us):
    r = subprocess.run([sys.executable, "-c", HOOKED_CASE], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, **{hook: str(us)}))
    assert r.returncode == 0, r.stdout + r.stderr
    import json
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_caller_runs_the_chunks_of_late_pool_threads():
    # Pool threads look at each new job only 20 ms after it was published (as when the scheduler
    # has set them aside): the caller runs the chunks they did not claim, a late thread finds its
    # job closed and goes back, and every result has the same bits as on one thread.
    stats = _hooked_run("NEUROCORE_POOL_TEST_LATE_US", 20000)
    assert stats["jobs"] > 10 and stats["caller_chunks"] > 10 * stats["pool_chunks"], stats
    assert stats["late_visits"] > 0, stats


def test_caller_waits_for_slow_claimed_chunks():
    # A pool thread stalls 2 ms inside every chunk it claimed: the caller runs the rest, then
    # sleeps until the claimed chunks are done (no result taken early, none lost), same bits.
    stats = _hooked_run("NEUROCORE_POOL_TEST_SLOW_US", 2000)
    assert stats["pool_chunks"] > 0 and stats["caller_chunks"] > stats["pool_chunks"], stats


def test_team_waits_for_slow_step_blocks():
    # A pool thread stalls 0.5 ms inside every recurrent-step block it claimed: its team mate
    # sleeps until the block is done instead of yielding its core, same bits.
    stats = _hooked_run("NEUROCORE_POOL_TEST_TEAM_SLOW_US", 500)
    assert stats["team_sleeps"] > 0, stats


def test_thread_choice_follows_the_faster_arrangement():
    # A compiled no_grad plan runs each call on the calling thread alone or shared with the pool,
    # whichever its own timings say is faster (core/thread_choice.h); the policy fed given times.
    C = nc._core
    us = 1000

    def pairs_of(limits, value, start):
        """Indices of the calls from `start` on that ran `value`, checked to come in pairs."""
        idx = [i for i in range(start, len(limits)) if limits[i] == value]
        assert idx[::2] == [i - 1 for i in idx[1::2]], idx
        return idx[::2]

    # Shared 40 us, alone 60 us: after the first 64 calls (which explore every 16), every call shares
    # but the pair that opens each period of 128, which runs alone to keep its estimate fresh.
    limits = C._thread_choice_for_test([60 * us] * 1024, [40 * us] * 1024)
    assert 0 < limits[:64].count(1) <= 2 * 64 // 16 + 6
    starts = pairs_of(limits, 1, 256)
    assert len(starts) == 6 and {b - a for a, b in zip(starts, starts[1:])} == {128}
    # Alone 2.5x slower: the pair runs once per 1024 calls (it costs a large model more).
    limits = C._thread_choice_for_test([100 * us] * 4096, [40 * us] * 4096)
    starts = pairs_of(limits, 1, 256)
    assert len(starts) == 3 and {b - a for a, b in zip(starts, starts[1:])} == {1024}
    # The host moves the threads: from call 1024 on sharing takes 70 us. Within a few periods the
    # plan runs alone, exploring the shared arrangement in each period's opening pair.
    limits = C._thread_choice_for_test([60 * us] * 2048, [40 * us] * 1024 + [70 * us] * 1024)
    switched = next(i for i in range(1024, 2048) if all(limits[j] == 1 for j in range(i, i + 64)))
    assert switched < 1024 + 4 * 128, switched
    starts = pairs_of(limits, 0, switched)
    assert len(starts) >= 3 and {b - a for a, b in zip(starts, starts[1:])} == {128}
    # A run the scheduler interrupted (10 ms, on timed calls of the shared arm) counts as at most
    # twice the average: no switch.
    shared = [40 * us] * 1024
    for i in range(256, 1024):
        if (i - 2) % 128 == 71:
            shared[i] = 10000 * us
    limits = C._thread_choice_for_test([60 * us] * 1024, shared)
    assert len(pairs_of(limits, 1, 256)) == 6


def test_plan_gives_the_same_bits_alone_and_shared():
    # Batch 1 through Sequential's compiled plan, many calls (both arrangements run, whichever the
    # timings pick), against the same model at 1 thread.
    nc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8 * 8 * 8, 10))
    model.eval()
    x = nc.tensor(np.random.default_rng(3).standard_normal((1, 3, 16, 16)).astype(np.float32))

    def calls():
        with nc.no_grad():
            return [model(x).numpy() for _ in range(300)]
    alone = with_threads(1, calls)
    for y in with_threads(2, calls):
        assert np.array_equal(y, alone[0])


def test_thread_choice_object_runs_both_arrangements_and_raises():
    # nc._core._ThreadChoice (recurrent layers' inference): fn runs under the chosen thread limit;
    # the first calls measure both arrangements, and fn's exception reaches the caller.
    choice = nc._core._ThreadChoice()
    seen = with_threads(2, lambda: [choice(nc.get_num_threads) for _ in range(20)])
    assert set(seen) == {1, 2}
    with pytest.raises(ZeroDivisionError):
        with_threads(2, lambda: choice(lambda: 1 / 0))


def test_lstm_inference_gives_the_same_bits_alone_and_shared():
    nc.manual_seed(0)
    lstm = nn.LSTM(8, 32, num_layers=2, batch_first=True)
    x = nc.tensor(np.random.default_rng(4).standard_normal((1, 20, 8)).astype(np.float32))

    def calls():
        with nc.no_grad():
            return [np.concatenate([t.numpy().ravel() for t in (lambda o: (o[0], *o[1]))(lstm(x))])
                    for _ in range(200)]
    alone = with_threads(1, calls)
    for y in with_threads(2, calls):
        assert np.array_equal(y, alone[0])
