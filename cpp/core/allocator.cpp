#include "core/allocator.h"

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

namespace nc {
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kSmallStep = 64, kSmallMax = 1024;  // 16 classes of 64-byte steps
constexpr int kSmallClasses = static_cast<int>(kSmallMax / kSmallStep);
constexpr int kLog2SmallMax = 10, kLog2MaxCached = 26;  // 2^26 = kMaxCachedBlock
constexpr int kNumClasses = kSmallClasses + 4 * (kLog2MaxCached - kLog2SmallMax);
static_assert(kMaxCachedBlock == size_t(1) << kLog2MaxCached, "class table must reach kMaxCachedBlock");
// Enough for the working set of a training step of the models neurocore targets; the cap keeps a
// loop with ever-changing sizes from hoarding memory.
constexpr size_t kDefaultLimit = size_t(256) << 20;

int floor_log2(size_t n) { return 63 - __builtin_clzll(static_cast<unsigned long long>(n)); }

// Size class of a request of 1..kMaxCachedBlock bytes.
int size_class(size_t n) {
  if (n <= kSmallMax) return static_cast<int>((n + kSmallStep - 1) / kSmallStep) - 1;
  const int k = floor_log2(n - 1);  // 2^k < n <= 2^(k+1): classes 2^k * (1 + q/4), q = 1..4
  const size_t quarter = (size_t(1) << k) >> 2;
  const size_t q = (n - (size_t(1) << k) + quarter - 1) / quarter;
  return kSmallClasses + 4 * (k - kLog2SmallMax) + static_cast<int>(q) - 1;
}

// Bytes of every block of class c (the largest request of that class).
size_t class_size(int c) {
  if (c < kSmallClasses) return static_cast<size_t>(c + 1) * kSmallStep;
  const int k = (c - kSmallClasses) / 4 + kLog2SmallMax;
  const size_t q = static_cast<size_t>((c - kSmallClasses) % 4 + 1);
  return (size_t(1) << k) + q * ((size_t(1) << k) >> 2);
}

size_t uncached_size(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

void* system_alloc(size_t bytes) {
  void* p = std::aligned_alloc(kAlign, bytes);
  if (!p) throw std::bad_alloc();
  return p;
}

// Test-and-test-and-set lock. The critical sections are a few instructions (a push or pop), for
// which std::mutex's lock/unlock calls cost several times the work they protect.
class SpinLock {
 public:
  void lock() {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed)) sched_yield();  // the holder may be descheduled
    }
  }
  void unlock() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

struct Cache {
  SpinLock mu;
  std::vector<void*> free_lists[kNumClasses];
  size_t cached = 0;
  size_t limit = kDefaultLimit;
  uint64_t hits = 0, misses = 0;

  // Frees cached blocks, largest classes first, until at most `target` bytes stay cached.
  void trim_locked(size_t target) {
    for (int c = kNumClasses - 1; c >= 0 && cached > target; --c) {
      const size_t block = class_size(c);
      auto& list = free_lists[c];
      while (!list.empty() && cached > target) {
        std::free(list.back());
        list.pop_back();
        cached -= block;
      }
    }
  }
};

Cache& cache() {
  // Never destroyed: tensors held by Python objects can be freed after static destructors run.
  static Cache* c = [] {
    auto* p = new Cache();
    // A fork while another thread holds the lock would leave it locked forever in the child.
    pthread_atfork([] { cache().mu.lock(); }, [] { cache().mu.unlock(); }, [] { cache().mu.unlock(); });
    return p;
  }();
  return *c;
}

}  // namespace

void* cached_alloc(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  if (nbytes > kMaxCachedBlock) return system_alloc(uncached_size(nbytes));
  const int c = size_class(nbytes);
  const size_t block = class_size(c);
  Cache& cc = cache();
  {
    std::lock_guard<SpinLock> lock(cc.mu);
    auto& list = cc.free_lists[c];
    if (!list.empty()) {
      void* p = list.back();
      list.pop_back();
      cc.cached -= block;
      ++cc.hits;
      return p;
    }
    ++cc.misses;
  }
  return system_alloc(block);
}

void cached_free(void* p, size_t nbytes) {
  if (!p) return;
  if (nbytes > kMaxCachedBlock) {
    std::free(p);
    return;
  }
  const int c = size_class(nbytes);
  const size_t block = class_size(c);
  Cache& cc = cache();
  {
    std::lock_guard<SpinLock> lock(cc.mu);
    if (cc.cached + block <= cc.limit) {
      cc.free_lists[c].push_back(p);
      cc.cached += block;
      return;
    }
  }
  std::free(p);
}

CacheStats cache_stats() {
  Cache& cc = cache();
  std::lock_guard<SpinLock> lock(cc.mu);
  return {cc.cached, cc.limit, cc.hits, cc.misses};
}

void empty_cache() {
  Cache& cc = cache();
  std::lock_guard<SpinLock> lock(cc.mu);
  cc.trim_locked(0);
}

void set_cache_limit(size_t bytes) {
  Cache& cc = cache();
  std::lock_guard<SpinLock> lock(cc.mu);
  cc.limit = bytes;
  cc.trim_locked(bytes);
}

}  // namespace nc
