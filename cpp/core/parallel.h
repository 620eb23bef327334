#pragma once
// Intra-op parallelism on OpenMP. Work below `grain` items runs on the calling thread, so tiny
// ops never pay thread start-up; nested calls run serially (no nested parallel regions).
// Each thread gets one contiguous block, so results never depend on how many threads ran as
// long as the body writes disjoint outputs (reductions use fixed-size chunks, see reduce ops).
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

namespace nc {

int get_num_threads();
void set_num_threads(int n);
// Cores this process may use: sched affinity, capped by a cgroup CPU quota, or OMP_NUM_THREADS.
int default_num_threads();

template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& body) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  const int threads = get_num_threads();
  if (threads <= 1 || n <= grain || omp_in_parallel()) {
    body(begin, end);
    return;
  }
  const int64_t blocks = std::min<int64_t>(threads, (n + grain - 1) / std::max<int64_t>(grain, 1));
#pragma omp parallel num_threads(static_cast<int>(blocks))
  {
    const int64_t t = omp_get_thread_num();
    const int64_t team = omp_get_num_threads();
    const int64_t per = (n + team - 1) / team;
    const int64_t b = begin + t * per;
    const int64_t e = std::min(end, b + per);
    if (b < e) body(b, e);
  }
}

// A team of threads that runs a sequence of phases (e.g. the steps of a recurrent layer). Each
// phase is a set of fixed blocks that any team thread may claim (work sharing), so a thread the
// scheduler has set aside (a busy machine) holds nobody up unless it is inside a block; every
// thread leaves a phase once all its blocks are done. Which thread ran a block never changes its
// result, so results do not depend on the thread count when the blocks don't.
class StepTeam {
 public:
  StepTeam(int threads, int64_t phases) : nt_(threads), phases_(new Phase[std::max<int64_t>(phases, 1)]) {}

  // Runs body() on every team thread (inline for one).
  template <class F>
  void run(const F& body) {
    if (nt_ <= 1) return body();
#pragma omp parallel num_threads(nt_)
    body();
  }

  // The next phase of the calling thread (`phase` counts them; every thread passes through the
  // same phases in the same order): fn(b) for the blocks b < count it claims, then it waits
  // for the rest.
  template <class F>
  void share(int64_t& phase, int64_t count, const F& fn) {
    Phase& p = phases_[phase++];
    for (int64_t b; (b = p.next.fetch_add(1, std::memory_order_relaxed)) < count;) {
      fn(b);
      p.done.fetch_add(1, std::memory_order_release);
    }
    for (int spins = 0; p.done.load(std::memory_order_acquire) < count; ++spins)
      if (spins > 64) std::this_thread::yield();  // let a set-aside team thread finish its block
  }

 private:
  struct Phase {
    std::atomic<int64_t> next{0}, done{0};
  };
  int nt_;
  std::unique_ptr<Phase[]> phases_;
};

}  // namespace nc
