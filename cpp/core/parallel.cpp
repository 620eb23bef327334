#include "core/parallel.h"
#include "core/thread_limit.h"

#include <immintrin.h>
#include <pthread.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
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
// True on the pool's own threads (the test hook of team_block_done delays only them).
static thread_local bool is_pool_thread = false;
// The thread's seat while it runs a team body (StepTeam); 0 otherwise and on the caller.
static thread_local int seat_in_team = 0;

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

// Sleeping and waking on a 32-bit word (Linux futex): a waiter sleeps only while the word still
// holds the value it saw, so a wake between its check and its sleep is never lost.
inline void futex_wait(std::atomic<uint32_t>& word, uint32_t seen) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
}
inline void futex_wake_all(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
}

using Clock = std::chrono::steady_clock;

// How long a thread spins before it sleeps, and the gap between two looks at the clock (a few
// hundred nanoseconds apart when the thread runs) that means the scheduler set it aside. A set-
// aside spinner is on a core that other processes want: spinning on would only take their time
// (and its own share, which a sleeping thread keeps for when there is work), so it sleeps at once.
// Pool threads spin after a job because eager code calls op after op microseconds apart; the
// caller spins for claimed chunks only briefly, as a pool thread that stays longer is inside its
// chunk or set aside, and either takes longer than a sleep and a wake.
constexpr auto kPoolSpin = std::chrono::microseconds(200);
constexpr auto kCallerSpin = std::chrono::microseconds(30);
constexpr auto kDescheduledGap = std::chrono::microseconds(20);

// Threads that share one job at most (the caller and 255 pool threads); more are not started.
constexpr int kMaxParticipants = 256;

// Spins until done() or the budget runs out or a look at the clock shows that the thread was set
// aside or that it runs on the core `avoid_cpu` names (where its spinning would delay the thread
// that will give it work); returns done(). No sched_yield: beside a busy process it hands that
// process the core for a whole time slice (measured beside two busy loops, one per core, on a
// loaded 2-core machine: batch-1 CNN inference 1.6-2.4 ms with it, 0.6-0.9 ms without).
template <class Done>
bool spin_until(const Done& done, Clock::duration budget, const std::atomic<int>* avoid_cpu = nullptr) {
  const auto start = Clock::now();
  auto last = start;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    const auto now = Clock::now();
    if (now - start > budget || now - last > kDescheduledGap) return done();
    if (avoid_cpu && sched_getcpu() == avoid_cpu->load(std::memory_order_relaxed)) return done();
    last = now;
  }
}

// Test hooks (tests/test_parallel.py): NEUROCORE_POOL_TEST_LATE_US makes every pool thread wait
// that long before it looks at a new job (a thread the scheduler set aside, so the caller runs the
// chunks left), NEUROCORE_POOL_TEST_SLOW_US that long after it claimed a chunk and before it runs
// it (the caller waits for a claimed chunk, sleeping), NEUROCORE_POOL_TEST_TEAM_SLOW_US that long
// before it counts a StepTeam block done (its team mates wait for it, sleeping).
int test_delay_us(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::max(0, std::atoi(v)) : 0;
}

class Pool;

// The job being run. Its fields are atomics because a pool thread that wakes up late may read
// them while the next job is being set up; it then finds its claim refused (see Pool::claim).
struct Job {
  enum Kind { kChunks, kTeam };
  std::atomic<Kind> kind{kChunks};
  std::atomic<int> helpers{0};
  std::atomic<int64_t> tickets{0};
  std::atomic<int64_t> begin{0}, end{0}, chunk{1};
  std::atomic<ChunkFn> chunk_fn{nullptr};
  std::atomic<void (*)(const void*)> team_fn{nullptr};
  std::atomic<const void*> ctx{nullptr};
  std::exception_ptr error;  // the first exception a chunk or team body threw

  // Claims and runs tickets of job `gen` as participant `self` (0: the caller, k: pool thread
  // k-1) until none is left; returns how many it ran.
  int64_t serve(Pool& pool, uint64_t gen, int self);
};

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
  // job hands out (chunks, or team seats), split into one range per thread. caller_work() is
  // what the calling thread does: it claims the tickets of its own range from the start, then
  // whatever the pool threads have not claimed of theirs; then it closes the job and waits only
  // for the tickets that pool threads claimed.
  template <class CallerWork>
  void run(Job::Kind kind, int helpers, int64_t tickets, const CallerWork& caller_work) {
    helpers = std::min(helpers, kMaxParticipants - 1);
    ensure_threads(helpers);
    if (++generation_ == 0) ++generation_;  // 0 is the generation before the first job
    const uint64_t gen = generation_;
    const int parts = helpers + 1;
    job_.helpers.store(helpers, std::memory_order_relaxed);
    job_.tickets.store(tickets, std::memory_order_relaxed);
    job_.kind.store(kind, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    job_.error = nullptr;
    for (int p = 0; p < parts; ++p) ranges_[p].next.store((gen << 32) | range_begin(p, tickets, parts));
    wake_word_.store(static_cast<uint32_t>(gen), std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) futex_wake_all(wake_word_);
    jobs_.fetch_add(1, std::memory_order_relaxed);
    caller_chunks_.fetch_add(caller_work(gen), std::memory_order_relaxed);
    caller_cpu_.store(sched_getcpu(), std::memory_order_relaxed);
    // No more claims: late pool threads find the job closed. Then wait for the claimed ones.
    uint32_t claimed = 0;
    for (int p = 0; p < parts; ++p) {
      const int64_t last = static_cast<int64_t>(ranges_[p].next.exchange((gen << 32) | kClosed) & kClosed);
      claimed += static_cast<uint32_t>(std::min(last, range_begin(p + 1, tickets, parts)) - range_begin(p, tickets, parts));
    }
    const auto finished = [&] { return done_.load(std::memory_order_acquire) >= claimed; };
    if (!spin_until(finished, kCallerSpin)) {
      caller_sleeping_.store(true, std::memory_order_seq_cst);
      for (uint32_t d; (d = done_.load(std::memory_order_seq_cst)) < claimed;) futex_wait(done_, d);
      caller_sleeping_.store(false, std::memory_order_relaxed);
    }
    if (job_.error) std::rethrow_exception(job_.error);
  }

  // The first ticket of participant p's range when `tickets` are shared by `parts` participants
  // (range_begin(parts, ...) == tickets). A team job has one ticket fewer than participants, and
  // the caller (participant 0) gets none.
  static int64_t range_begin(int p, int64_t tickets, int parts) { return p * tickets / parts; }

  // Claims the next ticket of job `gen` for participant `self`: from its own range while any is
  // left, then from the others' in turn. Returns its index, or -1 when none is left (or the job
  // is gone). Owning a range keeps each thread on the same part of every job from call to call,
  // so the memory a chunk writes stays in that thread's cache (threads whose cores share no cache
  // passed a quarter of a batch-1 CNN's outputs between them when chunks went to whoever came
  // first), and each thread claims on its own cache line.
  int64_t claim(uint64_t gen, int64_t tickets, int parts, int self) {
    for (int k = 0; k < parts; ++k) {
      const int p = self + k < parts ? self + k : self + k - parts;
      const int64_t end = range_begin(p + 1, tickets, parts);
      std::atomic<uint64_t>& next = ranges_[p].next;
      uint64_t c = next.load(std::memory_order_acquire);
      for (;;) {
        if ((c >> 32) != gen) return -1;  // the job is over: a later one owns the ranges
        if (static_cast<int64_t>(c & kClosed) >= end) break;
        if (next.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire))
          return static_cast<int64_t>(c & kClosed);
      }
    }
    return -1;
  }

  // A thread is done with `n` tickets it claimed; wakes the caller if it sleeps on them.
  void finish_tickets(int64_t n) {
    if (n == 0) return;
    done_.fetch_add(static_cast<uint32_t>(n), std::memory_order_seq_cst);
    if (caller_sleeping_.load(std::memory_order_seq_cst)) futex_wake_all(done_);
  }

  void record_error() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!job_.error) job_.error = std::current_exception();
  }

  void count_pool_chunks(int64_t n) {
    if (n > 0) pool_chunks_.fetch_add(n, std::memory_order_relaxed);
    else late_visits_.fetch_add(1, std::memory_order_relaxed);
  }

  PoolStats stats() const {
    return {jobs_.load(), caller_chunks_.load(), pool_chunks_.load(), late_visits_.load(), team_sleeps_.load()};
  }

  std::atomic<int64_t> team_sleeps_{0};

  Job job_;
  const int test_slow_us_ = test_delay_us("NEUROCORE_POOL_TEST_SLOW_US");

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
    is_pool_thread = true;
    uint32_t seen = 0;
    for (;;) {
      // Spin for the next job a while, then sleep until the caller publishes one.
      const auto fresh = [&] { return wake_word_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(fresh, kPoolSpin, &caller_cpu_)) {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        while (wake_word_.load(std::memory_order_seq_cst) == seen) futex_wait(wake_word_, seen);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
      }
      seen = wake_word_.load(std::memory_order_acquire);
      if (test_late_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(test_late_us_));
      if (index < job_.helpers.load(std::memory_order_relaxed)) count_pool_chunks(job_.serve(*this, seen, index + 1));
    }
  }

  // Per participant, (generation << 32) | its next ticket; each on its own cache line. Fixed in
  // size: a pool thread that wakes up late may still read them.
  struct alignas(64) Range {
    std::atomic<uint64_t> next{0};
  };
  Range ranges_[kMaxParticipants];
  std::atomic<uint32_t> wake_word_{0};   // the latest job's generation: pool threads sleep on it
  std::atomic<uint32_t> done_{0};        // tickets of the current job finished (by any thread)
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<int> caller_cpu_{-1};      // where the last job's caller ran: pool threads don't spin there
  uint32_t generation_ = 0;              // written by the pool's holder only
  std::atomic_flag busy_ = ATOMIC_FLAG_INIT;
  std::atomic<int> sleepers_{0};
  std::atomic<int64_t> jobs_{0}, caller_chunks_{0}, pool_chunks_{0}, late_visits_{0};
  std::mutex mutex_;
  std::vector<std::thread> threads_;
  const int test_late_us_ = test_delay_us("NEUROCORE_POOL_TEST_LATE_US");
};

int64_t Job::serve(Pool& pool, uint64_t gen, int self) {
  const int64_t n = tickets.load(std::memory_order_relaxed);
  const int parts = helpers.load(std::memory_order_relaxed) + 1;
  const void* const c = ctx.load(std::memory_order_relaxed);
  const int slow_us = self > 0 ? pool.test_slow_us_ : 0;
  if (kind.load(std::memory_order_relaxed) == kTeam) {
    auto* const fn = team_fn.load(std::memory_order_relaxed);
    const int64_t ticket = pool.claim(gen, n, parts, self);
    if (ticket < 0) return 0;
    seat_in_team = static_cast<int>(ticket) + 1;  // ticket k is pool thread k's own: a stable seat
    try {
      fn(c);
    } catch (...) {
      pool.record_error();
    }
    seat_in_team = 0;
    pool.finish_tickets(1);
    return 1;
  }
  auto* const fn = chunk_fn.load(std::memory_order_relaxed);
  const int64_t b = begin.load(std::memory_order_relaxed), e = end.load(std::memory_order_relaxed);
  const int64_t size = chunk.load(std::memory_order_relaxed);
  int64_t ran = 0;
  for (int64_t i; (i = pool.claim(gen, n, parts, self)) >= 0; ++ran) {
    if (slow_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(slow_us));
    try {
      fn(c, b + i * size, std::min(e, b + (i + 1) * size));
    } catch (...) {
      pool.record_error();
    }
  }
  pool.finish_tickets(ran);  // once: the caller waits for all claimed chunks, not for each
  return ran;
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
             [&](uint64_t gen) { return job.serve(pool, gen, 0); });
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
    pool.run(Job::kTeam, threads - 1, threads - 1, [&](uint64_t) -> int64_t {
      try {
        fn(ctx);
      } catch (...) {
        pool.record_error();
      }
      return 0;  // the caller's seat is not a ticket
    });
  } catch (...) {
    pool.release();
    throw;
  }
  pool.release();
}

PoolStats pool_stats() { return Pool::instance().stats(); }

int team_seat() { return seat_in_team; }

void team_block_done(TeamCounter& c) {
  if (is_pool_thread) {
    static const int slow_us = test_delay_us("NEUROCORE_POOL_TEST_TEAM_SLOW_US");
    if (slow_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(slow_us));
  }
  c.done.fetch_add(1, std::memory_order_seq_cst);
  if (c.sleepers.load(std::memory_order_seq_cst) > 0) futex_wake_all(c.done);
}

// A team mate's block takes a few microseconds: spin for it as the pool's caller spins for its
// claimed chunks, then sleep (a mate that takes longer is set aside or slow, and the core is
// better left to whoever the scheduler runs instead). The team's memory outlives every wait:
// StepTeam::run returns only after all its threads have left their last phase.
void team_wait(TeamCounter& c, uint32_t count) {
  const auto finished = [&] { return c.done.load(std::memory_order_acquire) >= count; };
  if (spin_until(finished, kCallerSpin)) return;
  Pool::instance().team_sleeps_.fetch_add(1, std::memory_order_relaxed);
  c.sleepers.fetch_add(1, std::memory_order_seq_cst);
  for (uint32_t d; (d = c.done.load(std::memory_order_seq_cst)) < count;) futex_wait(c.done, d);
  c.sleepers.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace detail

}  // namespace nc
