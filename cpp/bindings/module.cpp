// The neurocore._core extension module: registers each family's bindings.
#include "bindings/common.h"
#include "core/allocator.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/thread_choice.h"
#include "kernels/dispatch.h"
#include "kernels/peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>
#include <omp.h>

namespace py = pybind11;
using namespace nc::py_bindings;

PYBIND11_MODULE(_core, m) {
  m.doc() = "neurocore C++ core";
  nc::kernels::active_isa();  // a bad NEUROCORE_CPU fails the import, not a later op
  // nc::TypeError derives from std::invalid_argument, which pybind11 would turn into ValueError.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const nc::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const nc::MemoryError& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    }
  });
  m.def("cpu_capability", [] { return nc::kernels::isa_name(nc::kernels::active_isa()); },
        "The kernel build in use: 'avx512', 'avx2' or 'generic' (NEUROCORE_CPU forces one).");
  m.def("cpu_supports_avx2", &nc::kernels::cpu_supports_avx2);
  m.def("_cpu_supports", [](const std::string& isa) {
    for (int i = 0; i < nc::kernels::kIsaCount; ++i) {
      const auto k = static_cast<nc::kernels::Isa>(i);
      if (nc::kernels::isa_name(k) == isa) return nc::kernels::cpu_supports(k);
    }
    throw nc::ValueError("[_cpu_supports] unknown kernel build '" + isa + "'");
  }, "Whether this CPU has the instructions of a kernel build ('generic', 'avx2', 'avx512').");
  m.def("_avx512_emulated", &nc::kernels::avx512_emulated,
        "True in the test build that emulates the avx512 kernels with AVX2 (CMake NC_AVX512_EMULATE).");
  m.def("get_num_threads", &nc::get_num_threads);
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw nc::ValueError("[set_num_threads] expected a positive number of threads, got " + std::to_string(n));
    nc::set_num_threads(n);
  });
  m.def("empty_cache", &nc::empty_cache,
        "Returns the memory that the tensor allocator keeps cached for reuse to the system.");
  m.def("set_cache_limit", [](int64_t nbytes) {
    if (nbytes < 0) throw nc::ValueError("[set_cache_limit] expected a non-negative number of bytes, got " + std::to_string(nbytes));
    nc::set_cache_limit(static_cast<size_t>(nbytes));
  }, py::arg("nbytes"), "Caps the bytes the tensor allocator keeps cached for reuse (0 disables the cache).");
  m.def("memory_stats", [] {
    const nc::CacheStats s = nc::cache_stats();
    py::dict d;
    d["cached_bytes"] = s.cached_bytes;
    d["cache_limit_bytes"] = s.limit_bytes;
    d["cache_hits"] = s.hits;
    d["cache_misses"] = s.misses;
    return d;
  }, "Counters of the tensor allocator's cache: bytes held, the cap, and requests served from it or not.");
  m.def("_pool_stats", [] {
    const nc::detail::PoolStats s = nc::detail::pool_stats();
    py::dict d;
    d["jobs"] = s.jobs;
    d["caller_chunks"] = s.caller_chunks;
    d["pool_chunks"] = s.pool_chunks;
    d["late_visits"] = s.late_visits;
    d["team_sleeps"] = s.team_sleeps;
    return d;
  }, "Counters of the work-sharing pool since start: jobs, chunks run by callers and by pool threads, "
     "pool-thread visits that found their job closed, and StepTeam waits that went to sleep.");
  py::class_<nc::ThreadChoice>(m, "_ThreadChoice",
                                "choice(fn): fn() run on the calling thread alone or shared with the pool, whichever "
                                "this object's timings of earlier calls say is faster (core/thread_choice.h)")
      .def(py::init<>())
      .def("__call__", [](nc::ThreadChoice& choice, const py::function& fn) {
        if (nc::get_num_threads() <= 1) return fn();
        return choice.run([&] { return py::object(fn()); });
      });
  m.def("_thread_choice_for_test", [](const std::vector<int64_t>& single_ns, const std::vector<int64_t>& shared_ns) {
    // A ThreadChoice (core/thread_choice.h) fed call i's time from single_ns[i] or shared_ns[i],
    // as the arm it picked ran: the thread limit of every call (1: alone, 0: shared).
    nc::ThreadChoice choice;
    std::vector<int> limits;
    for (size_t i = 0; i < std::min(single_ns.size(), shared_ns.size()); ++i) {
      const nc::ThreadChoice::Pick pick = choice.pick();
      limits.push_back(pick.limit);
      if (pick.record)
        choice.record(pick, std::chrono::nanoseconds(pick.limit == 1 ? single_ns[i] : shared_ns[i]));
    }
    return limits;
  }, py::arg("single_ns"), py::arg("shared_ns"));
  m.def("_pool_chunks_for_test", [](int64_t n, int64_t grain, int64_t fail_at) {
    // parallel_for over [0, n) whose chunks record their bounds (sorted on return) and whose chunk
    // holding item fail_at (if any) throws: tests/test_parallel.py checks the chunks are fixed by
    // n and grain alone and that a chunk's exception reaches the caller from any thread.
    std::vector<std::pair<int64_t, int64_t>> seen;
    std::mutex m;
    {
      py::gil_scoped_release release;
      nc::parallel_for(0, n, grain, [&](int64_t b, int64_t e) {
        if (b <= fail_at && fail_at < e) throw nc::ValueError("[_pool_chunks_for_test] chunk [" + std::to_string(b) + ", " + std::to_string(e) + ") failed");
        std::lock_guard<std::mutex> lock(m);
        seen.emplace_back(b, e);
      });
    }
    std::sort(seen.begin(), seen.end());
    return seen;
  }, py::arg("n"), py::arg("grain"), py::arg("fail_at") = -1);
  m.def("_fma_peak_gflops", [](int threads, int64_t iterations) {
    // Every thread runs the FMA probe; the peak is total flops over the slowest thread's time.
    py::gil_scoped_release release;
    double flops = 0;
    float sink = 0;
    auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    {
      float local;
      flops += nc::kernels::peak().fma_chains(iterations, &local);
      if (local == 12345.f) sink = local;  // keeps the work observable
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return flops / secs / 1e9 + sink * 0;
  }, py::arg("threads"), py::arg("iterations") = 20000000);
  m.def("_core_round_trip_ns", [](double seconds) {
    // Two threads pass a cache line back and forth: nanoseconds per round trip. On a VM whose
    // host moves the vCPUs between cores that share a cache and cores that do not, it reads
    // ~100 ns or ~400 ns, and every 2-thread timing moves with it (bench/run.py reports it).
    py::gil_scoped_release release;
    alignas(64) std::atomic<int64_t> ball{0};
    std::atomic<bool> stop{false};
    std::thread partner([&] {
      for (int64_t v = 1; !stop.load(std::memory_order_relaxed);)
        if (ball.load(std::memory_order_acquire) == v) {
          ball.store(v + 1, std::memory_order_release);
          v += 2;
        }
    });
    int64_t trips = 0;
    const auto start = std::chrono::steady_clock::now();
    std::chrono::duration<double> elapsed{0};
    do {
      for (int i = 0; i < 16; ++i, ++trips) {  // few: on one core each trip waits for a time slice
        ball.store(2 * trips + 1, std::memory_order_release);
        while (ball.load(std::memory_order_acquire) != 2 * trips + 2) {
        }
      }
      elapsed = std::chrono::steady_clock::now() - start;
    } while (elapsed.count() < seconds);
    stop.store(true);
    partner.join();
    return elapsed.count() * 1e9 / static_cast<double>(trips);
  }, py::arg("seconds") = 0.05);
  TensorClass cls(m, "Tensor");
  bind_tensor(m, cls);
  bind_core_ops(m, cls);
  bind_kernels(m);
  bind_gemm(m);
  bind_elementwise(m, cls);
  bind_reduce(m, cls);
  bind_loss(m, cls);
  bind_shape(m, cls);
  bind_optim(m, cls);
  bind_conv(m, cls);
  bind_norm(m, cls);
  bind_attention(m, cls);
  bind_linear_act(m);
  bind_inference_plan(m);
  bind_embedding(m, cls);
  bind_rnn(m, cls);
  bind_autograd(m, cls);
  bind_runtime(m);
  bind_image(m);
  bind_sort(m);
}
