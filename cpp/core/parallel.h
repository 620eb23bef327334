#pragma once
// Intra-op parallelism on OpenMP. Work below `grain` items runs on the calling thread, so tiny
// ops never pay thread start-up; nested calls run serially (no nested parallel regions).
// Each thread gets one contiguous block, so results never depend on how many threads ran as
// long as the body writes disjoint outputs (reductions use fixed-size chunks, see reduce ops).
#include <omp.h>

#include <algorithm>
#include <cstdint>

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

}  // namespace nc
