#include "core/parallel.h"
#include "core/thread_limit.h"

#include <immintrin.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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
// True while the thread runs a chunk or a team body: work it starts stays on it.
static thread_local bool in_pool_job = false;

ThreadLimit::ThreadLimit(int n) : prev_(thread_override) { thread_override = n > 0 ? n : prev_; }
ThreadLimit::~ThreadLimit() { thread_override = prev_; }

int get_num_threads() {
  if (in_pool_job || in_forked_child.load(std::memory_order_relaxed)) return 1;
  if (thread_override > 0) return thread_override;
  return thread_setting().load(std::memory_order_relaxed);
}

void set_num_threads(int n) { thread_setting().store(std::max(n, 1)); }

// ---------------------------------------------------------------------------------------------
// The pool

namespace detail {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

class Pool;

// The job being run. Its fields are atomics because a pool thread that wakes up late may read
// them while the next job is being set up; it then finds its claim refused (see Pool::claim).
struct Job {
  enum Kind { kChunks, kTeam };
  std::atomic<Kind> kind{kChunks};
  std::atomic<int> helpers{0};
  std::atomic<int64_t> tickets{0}, done{0};
  std::atomic<int64_t> begin{0}, end{0}, chunk{1};
  std::atomic<ChunkFn> chunk_fn{nullptr};
  std::atomic<void (*)(const void*)> team_fn{nullptr};
  std::atomic<const void*> ctx{nullptr};
  std::exception_ptr error;  // the first exception a chunk or team body threw

  void serve(Pool& pool, uint64_t gen);
};

// Pool threads wait for work spinning this long after their last job (eager code calls op after
// op with microseconds between them), then sleep on a condition variable.
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(200);
constexpr auto kSpinBeforeYield = std::chrono::microseconds(20);

class Pool {
 public:
  static Pool& instance() {
    static Pool* pool = new Pool();  // never destroyed: threads may still spin at exit
    return *pool;
  }

  // One job at a time; a caller that finds the pool busy (another thread's job) runs inline.
  bool try_acquire() { return !busy_.test_and_set(std::memory_order_acquire); }
  void release() { busy_.clear(std::memory_order_release); }

  // Runs the job with `helpers` pool threads invited; `tickets` is the number of claims the
  // job hands out (chunks, or team seats). caller_work() is what the calling thread does.
  template <class CallerWork>
  void run(Job::Kind kind, int helpers, int64_t tickets, const CallerWork& caller_work) {
    ensure_threads(helpers);
    if (++generation_ == 0) ++generation_;  // 0 is the generation before the first job
    const uint64_t gen = generation_;
    job_.helpers.store(helpers, std::memory_order_relaxed);
    job_.tickets.store(tickets, std::memory_order_relaxed);
    job_.kind.store(kind, std::memory_order_relaxed);
    job_.done.store(0, std::memory_order_relaxed);
    job_.error = nullptr;
    claim_.store(gen << 32, std::memory_order_seq_cst);  // publishes the job
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      wake_.notify_all();
    }
    caller_work(gen);
    // No more claims: late pool threads find the job closed. Then wait for the claimed ones.
    const uint64_t last = claim_.exchange((gen << 32) | kClosed, std::memory_order_acq_rel);
    const int64_t claimed = std::min<int64_t>(static_cast<int64_t>(last & kClosed), tickets);
    for (int spins = 0; job_.done.load(std::memory_order_acquire) < claimed; ++spins) {
      if (spins < 2000) cpu_relax();
      else std::this_thread::yield();  // a set-aside pool thread is finishing its claim
    }
    if (job_.error) std::rethrow_exception(job_.error);
  }

  // Claims the next ticket of job `gen`: its index, or -1 when none is left (or the job is gone).
  int64_t claim(uint64_t gen, int64_t tickets) {
    uint64_t c = claim_.load(std::memory_order_acquire);
    for (;;) {
      if ((c >> 32) != gen || static_cast<int64_t>(c & kClosed) >= tickets) return -1;
      if (claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire))
        return static_cast<int64_t>(c & kClosed);
    }
  }

  void finish_ticket() { job_.done.fetch_add(1, std::memory_order_release); }

  void record_error() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!job_.error) job_.error = std::current_exception();
  }

  Job job_;

 private:
  static constexpr uint64_t kClosed = 0xffffffffu;

  void ensure_threads(int helpers) {
    while (static_cast<int>(threads_.size()) < helpers) {
      const int index = static_cast<int>(threads_.size());
      threads_.emplace_back([this, index] { worker(index); });
      threads_.back().detach();
    }
  }

  void worker(int index) {
    in_pool_job = true;  // everything a pool thread runs is part of some job
    uint64_t seen = 0;
    for (;;) {
      uint64_t gen = claim_.load(std::memory_order_acquire) >> 32;
      if (gen == seen) {
        const auto start = std::chrono::steady_clock::now();
        for (int spins = 0; (gen = claim_.load(std::memory_order_acquire) >> 32) == seen; ++spins) {
          if ((spins & 63) != 63) {
            cpu_relax();
            continue;
          }
          const auto waited = std::chrono::steady_clock::now() - start;
          if (waited > kSpinBeforeSleep) break;
          // Past the first microseconds, spin politely: a busy machine's other runnable threads
          // (our caller among them) get this core first.
          if (waited > kSpinBeforeYield) std::this_thread::yield();
        }
        if (gen == seen) {
          std::unique_lock<std::mutex> lock(mutex_);
          sleepers_.fetch_add(1, std::memory_order_seq_cst);
          wake_.wait(lock, [&] { return (gen = claim_.load(std::memory_order_seq_cst) >> 32) != seen; });
          sleepers_.fetch_sub(1, std::memory_order_relaxed);
        }
      }
      seen = gen;
      if (index < job_.helpers.load(std::memory_order_relaxed)) job_.serve(*this, gen);
    }
  }

  std::atomic<uint64_t> claim_{0};  // (generation << 32) | next ticket; only ever grows
  uint32_t generation_ = 0;         // written by the pool's holder only
  std::atomic_flag busy_ = ATOMIC_FLAG_INIT;
  std::atomic<int> sleepers_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::thread> threads_;
};

void Job::serve(Pool& pool, uint64_t gen) {
  const int64_t n = tickets.load(std::memory_order_relaxed);
  const void* const c = ctx.load(std::memory_order_relaxed);
  if (kind.load(std::memory_order_relaxed) == kTeam) {
    auto* const fn = team_fn.load(std::memory_order_relaxed);
    if (pool.claim(gen, n) < 0) return;
    try {
      fn(c);
    } catch (...) {
      pool.record_error();
    }
    pool.finish_ticket();
    return;
  }
  auto* const fn = chunk_fn.load(std::memory_order_relaxed);
  const int64_t b = begin.load(std::memory_order_relaxed), e = end.load(std::memory_order_relaxed);
  const int64_t size = chunk.load(std::memory_order_relaxed);
  for (int64_t i; (i = pool.claim(gen, n)) >= 0;) {
    try {
      fn(c, b + i * size, std::min(e, b + (i + 1) * size));
    } catch (...) {
      pool.record_error();
    }
    pool.finish_ticket();
  }
}

// Marks the calling thread as inside a job for its scope (its own work stays on it).
struct InJob {
  bool prev = in_pool_job;
  InJob() { in_pool_job = true; }
  ~InJob() { in_pool_job = prev; }
};

}  // namespace

void run_chunks(int64_t begin, int64_t end, int64_t chunk, int threads, ChunkFn fn, const void* ctx) {
  const int64_t chunks = (end - begin + chunk - 1) / chunk;
  Pool& pool = Pool::instance();
  InJob in_job;
  if (chunks <= 1 || !pool.try_acquire()) {  // another thread holds the pool: run here
    for (int64_t b = begin; b < end; b += chunk) fn(ctx, b, std::min(end, b + chunk));
    return;
  }
  Job& job = pool.job_;
  job.begin.store(begin, std::memory_order_relaxed);
  job.end.store(end, std::memory_order_relaxed);
  job.chunk.store(chunk, std::memory_order_relaxed);
  job.chunk_fn.store(fn, std::memory_order_relaxed);
  job.ctx.store(ctx, std::memory_order_relaxed);
  try {
    pool.run(Job::kChunks, static_cast<int>(std::min<int64_t>(threads, chunks)) - 1, chunks,
             [&](uint64_t gen) { job.serve(pool, gen); });
  } catch (...) {
    pool.release();
    throw;
  }
  pool.release();
}

void run_team(int threads, void (*fn)(const void* ctx), const void* ctx) {
  Pool& pool = Pool::instance();
  InJob in_job;
  if (threads <= 1 || !pool.try_acquire()) return fn(ctx);
  Job& job = pool.job_;
  job.team_fn.store(fn, std::memory_order_relaxed);
  job.ctx.store(ctx, std::memory_order_relaxed);
  try {
    pool.run(Job::kTeam, threads - 1, threads - 1, [&](uint64_t) {
      try {
        fn(ctx);
      } catch (...) {
        pool.record_error();
      }
    });
  } catch (...) {
    pool.release();
    throw;
  }
  pool.release();
}

}  // namespace detail

}  // namespace nc
