#pragma once
// Whether a repeated computation (Sequential's compiled no_grad plan, a recurrent layer under
// no_grad, a runtime session's plan) runs faster on the calling thread alone or shared with the
// pool, chosen from its own measured times. Splitting an
// op of a few microseconds over two threads gains only while handing data between their cores is
// cheap: on a VM whose two vCPUs the host placed on cores that share no cache, a batch-1 CNN took
// 69 us on two threads and 60 us on one (42 us on two when they share one), and beside busy
// processes the pool thread may be set aside. Results do not depend on the thread count (every
// kernel splits its work the same way whatever the count), so either choice gives the same bits.
//
// The faster of the two by a running average of each one's time (sampled every 8th call); every
// 128 calls (1024 while the two differ by over 1.5x; 16 in the first 64 calls) the other runs
// twice, and only its second run counts (the first finds the data in the other arrangement's
// caches), so a change of placement or load is followed within a few hundred calls.
// The state is a few relaxed atomics: concurrent callers may race on an update, which only blurs
// the averages.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "core/thread_limit.h"

namespace nc {

class ThreadChoice {
 public:
  // Per call: the thread limit to run under (0: the process's count, 1: the calling thread alone),
  // whether its time is to be recorded, and whether it explores the slower arm.
  struct Pick {
    int limit;
    bool record;
    bool explore;
  };

  Pick pick() {
    const uint64_t n = calls_.fetch_add(1, std::memory_order_relaxed);
    // The first calls fill caches, pack weights, grow the allocator: they time nothing.
    if (n < kWarmup) return {0, false, false};
    const uint64_t phase = (n - kWarmup) % (n < kSettle ? kSettlePeriod : explore_period());
    const bool explore = phase < 2;  // each period opens with a pair of calls of the other arm
    const int arm = explore ? 1 - faster() : faster();
    // The faster arm is timed every 8th call: the clock costs ~2% of a 5 us MLP forward.
    return {arm == kSingle ? 1 : 0, phase == 1 || phase % 8 == 7, explore};
  }

  // body() under the picked limit, timed when the pick says so; returns what body returns.
  template <class Body>
  auto run(const Body& body) {
    const Pick p = pick();
    const ThreadLimit limit(p.limit);
    const auto start = std::chrono::steady_clock::now();
    auto out = body();
    if (p.record) record(p, std::chrono::steady_clock::now() - start);
    return out;
  }

  void record(const Pick& pick, std::chrono::steady_clock::duration took) {
    const int arm = pick.limit == 1 ? kSingle : kShared;
    const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(took).count();
    const int64_t old = estimate(arm);
    // A sample at most twice the average counts as twice it: a run the scheduler interrupted
    // says nothing about the arrangement. An explored arm's sample replaces its estimate, which
    // may be hundreds of calls old; the faster arm's moves by an eighth of each difference.
    const int64_t sample = old == 0 ? ns : std::min(ns, 2 * old);
    est_ns_[arm].store(pick.explore || old == 0 ? sample : old + ((sample - old) >> 3), std::memory_order_relaxed);
  }

 private:
  static constexpr int kShared = 0, kSingle = 1;
  static constexpr uint64_t kWarmup = 2, kSettle = 64, kSettlePeriod = 16;
  static constexpr uint64_t kExplorePeriod = 128, kRareExplorePeriod = 1024;

  // Calls per exploring pair, after the first kSettle calls (which explore every kSettlePeriod,
  // so that a first estimate taken while the process warmed up is soon replaced): rare while one
  // arm takes over 1.5x the other's time, where a pair of slow calls per 128 would cost a batch-64
  // CNN's inference ~1.7% (and a change of placement is unlikely to turn such a gap around).
  uint64_t explore_period() const {
    const int64_t single = estimate(kSingle), shared = estimate(kShared);
    const int64_t lo = std::min(single, shared), hi = std::max(single, shared);
    return lo > 0 && 2 * hi > 3 * lo ? kRareExplorePeriod : kExplorePeriod;
  }

  int64_t estimate(int arm) const { return est_ns_[arm].load(std::memory_order_relaxed); }
  // An unmeasured arm (estimate 0) counts as the faster, so that the first calls measure both.
  int faster() const {
    const int64_t single = estimate(kSingle), shared = estimate(kShared);
    return single == 0 || (shared != 0 && single < shared) ? kSingle : kShared;
  }

  std::atomic<uint64_t> calls_{0};
  std::atomic<int64_t> est_ns_[2] = {0, 0};
};

}  // namespace nc
