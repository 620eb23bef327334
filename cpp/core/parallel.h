#pragma once
// Intra-op parallelism on neurocore's own work-sharing pool (not OpenMP teams).
//
// parallel_for cuts [begin, end) into fixed chunks, whose size follows from the range and the
// grain only (never from the thread count). Each thread of the job, the calling thread included,
// owns a contiguous range of them and claims its own first (so it writes the same part of the
// output on every call and the data stays in its cache), then claims what is left of the others'
// (work sharing: whoever is free takes it). The caller waits only for chunks that were claimed:
// a pool thread the scheduler has put aside (other processes keeping the cores busy) holds
// nobody up unless it is inside a chunk, and one that wakes up late finds the work
// done and leaves, where a statically partitioned OpenMP loop would wait at its barrier for every
// thread to arrive (measured: batch-1 CNN inference 15x slower beside two busy processes).
// Waiting: pool threads spin up to 200 us for the next job, then sleep on a futex that the next
// job's caller wakes; the caller spins up to 30 us for chunks pool threads still run, then sleeps
// until the last one wakes it. A spinner that notices it was set aside by the scheduler (a gap of
// 20 us between two looks at the clock) sleeps at once: its core is wanted by other processes; so
// does a pool thread on the core where the caller last ran (it would hold the caller up).
// A range of up to `grain` items is one call on the calling thread. Larger ones are always cut
// into the same chunks, which run on the calling thread alone with one thread, inside a chunk
// (no nested parallelism) or while another thread is using the pool. The body is called once per
// chunk, so results do not depend on which thread ran which chunk nor on how many threads there
// are.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

namespace nc {

int get_num_threads();  // 1 inside a parallel_for chunk or a StepTeam (no nested parallelism)
void set_num_threads(int n);
// Cores this process may use: sched affinity, capped by a cgroup CPU quota, or OMP_NUM_THREADS.
int default_num_threads();

namespace detail {

constexpr int64_t kMaxChunks = 64;  // chunks per parallel_for at most: enough to balance load

// Items per chunk of a range of n items with the given grain.
inline int64_t chunk_size(int64_t n, int64_t grain) {
  return std::max<int64_t>(std::max<int64_t>(grain, 1), (n + kMaxChunks - 1) / kMaxChunks);
}

using ChunkFn = void (*)(const void* ctx, int64_t begin, int64_t end);

// Runs fn(ctx, b, e) for the chunks [begin + i*chunk, ...) of [begin, end) on the pool with up to
// `threads` threads (the caller one of them); returns when every chunk is done. Rethrows the
// first exception a chunk threw.
void run_chunks(int64_t begin, int64_t end, int64_t chunk, int threads, ChunkFn fn, const void* ctx);

// Runs fn(ctx) on the calling thread and on up to threads-1 pool threads that join while the
// caller's own call runs (a team for StepTeam); returns once the caller's call and those of every
// pool thread that joined have returned.
void run_team(int threads, void (*fn)(const void* ctx), const void* ctx);

// Counts since the process started (tests check who ran the chunks): jobs handed to the pool,
// chunks (or team seats) the calling threads and the pool threads ran, and pool-thread visits
// that found their job already closed or without chunks left; and StepTeam waits that slept.
struct PoolStats {
  int64_t jobs, caller_chunks, pool_chunks, late_visits, team_sleeps;
};
PoolStats pool_stats();

// A StepTeam phase's count of finished blocks: team_block_done adds one (waking the threads that
// sleep on it), team_wait returns once it reaches `count`, spinning briefly and then sleeping.
struct TeamCounter {
  std::atomic<uint32_t> done{0}, sleepers{0};
};
void team_block_done(TeamCounter& c);
void team_wait(TeamCounter& c, uint32_t count);
// The calling thread's seat in the team it runs a body of: 0 for the caller, 1.. for pool threads
// (the same seat for the same pool thread from call to call, unless one came late).
int team_seat();

}  // namespace detail

template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& body) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  if (n <= grain) {
    body(begin, end);
    return;
  }
  const int64_t chunk = detail::chunk_size(n, grain);
  const int threads = get_num_threads();
  if (threads <= 1 || omp_in_parallel()) {  // the same chunks, in order, on this thread
    for (int64_t b = begin; b < end; b += chunk) body(b, std::min(end, b + chunk));
    return;
  }
  detail::run_chunks(begin, end, chunk, threads,
                     [](const void* ctx, int64_t b, int64_t e) { (*static_cast<const F*>(ctx))(b, e); }, &body);
}

// A team of threads that runs a sequence of phases (e.g. the steps of a recurrent layer). Each
// phase is a set of fixed blocks; each seat of the team owns a contiguous range of them and claims
// its own first, then what is left of the others' (work sharing), so a thread the scheduler has
// set aside (a busy machine) holds nobody up unless it is inside a block, and otherwise every
// thread runs the same blocks at every step (the weights and state they read stay in its cache).
// Every thread leaves a phase once all its blocks are done. Which thread ran a block never changes
// its result, so results do not depend on the thread count when the blocks don't.
class StepTeam {
 public:
  StepTeam(int threads, int64_t phases)
      : nt_(std::max(threads, 1)),
        phases_(new Phase[std::max<int64_t>(phases, 1)]),
        next_(new std::atomic<int64_t>[std::max<int64_t>(phases, 1) * nt_]()) {}

  // Runs body() on the calling thread and on the team threads that join in time (inline for
  // one): blocks are claimed, so a team member that never shows up is not waited for.
  template <class F>
  void run(const F& body) {
    if (nt_ <= 1 || omp_in_parallel()) return body();
    detail::run_team(nt_, [](const void* ctx) { (*static_cast<const F*>(ctx))(); }, &body);
  }

  // The next phase of the calling thread (`phase` counts them; every thread passes through the
  // same phases in the same order): fn(b) for the blocks b < count it claims, then it waits
  // for the rest.
  template <class F>
  void share(int64_t& phase, int64_t count, const F& fn) {
    Phase& p = phases_[phase];
    std::atomic<int64_t>* next = &next_[phase++ * nt_];  // per seat: blocks of its range claimed
    const int seat = std::min(detail::team_seat(), nt_ - 1);
    for (int k = 0; k < nt_; ++k) {
      const int owner = seat + k < nt_ ? seat + k : seat + k - nt_;
      const int64_t first = owner * count / nt_, last = (owner + 1) * count / nt_;
      for (int64_t b; (b = first + next[owner].fetch_add(1, std::memory_order_relaxed)) < last;) {
        fn(b);
        detail::team_block_done(p.done);
      }
    }
    // Not sched_yield: beside busy processes it would hand the core away for a whole time slice.
    if (p.done.done.load(std::memory_order_acquire) < count) detail::team_wait(p.done, static_cast<uint32_t>(count));
  }

 private:
  struct Phase {
    detail::TeamCounter done;
  };
  int nt_;
  std::unique_ptr<Phase[]> phases_;
  std::unique_ptr<std::atomic<int64_t>[]> next_;  // phases x seats
};

}  // namespace nc
