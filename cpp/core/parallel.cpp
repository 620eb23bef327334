#include "core/parallel.h"
#include "core/thread_limit.h"

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>

namespace nc {

static int cgroup_cpu_limit() {
  std::ifstream f("/sys/fs/cgroup/cpu.max");  // cgroup v2: "<quota> <period>" or "max <period>"
  std::string quota;
  long period = 0;
  if (f >> quota >> period && quota != "max" && period > 0) {
    long q = std::atol(quota.c_str());
    if (q > 0) return static_cast<int>(std::max(1L, (q + period - 1) / period));
  }
  return 0;
}

int default_num_threads() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  int n = 1;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
  int limit = cgroup_cpu_limit();
  if (limit > 0) n = std::min(n, limit);
  return std::max(n, 1);
}

static std::atomic<int>& thread_setting() {
  static std::atomic<int> n{default_num_threads()};
  return n;
}

// libgomp's thread pool does not survive fork(): the child has only the forking thread while
// libgomp still counts the parent's workers, so the child's first parallel region would wait for
// them forever (multiprocessing and DataLoader workers fork). A forked child therefore runs every
// op on its calling thread, as PyTorch's do; set_num_threads there is kept but has no effect.
static std::atomic<bool> in_forked_child{false};
[[maybe_unused]] static const bool fork_handler_registered =
    pthread_atfork(nullptr, nullptr, [] { in_forked_child.store(true); }) == 0;

// The calling thread's own count while a ThreadLimit guard is alive (0: none).
static thread_local int thread_override = 0;

ThreadLimit::ThreadLimit(int n) : prev_(thread_override) { thread_override = n > 0 ? n : prev_; }
ThreadLimit::~ThreadLimit() { thread_override = prev_; }

int get_num_threads() {
  if (in_forked_child.load(std::memory_order_relaxed)) return 1;
  if (thread_override > 0) return thread_override;
  return thread_setting().load(std::memory_order_relaxed);
}

void set_num_threads(int n) { thread_setting().store(std::max(n, 1)); }

}  // namespace nc
