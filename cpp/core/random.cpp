#include "core/random.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "core/parallel.h"
#include "kernels/philox.h"

namespace nc {

namespace {
std::mutex rng_mutex;
uint64_t rng_seed = 67280421310721ULL;
uint64_t rng_counter = 0;
thread_local PhiloxState* thread_generator = nullptr;  // set by GeneratorScope

// 24 random bits -> float in [0, 1); 53 bits -> double in [0, 1).
inline double unit(uint32_t a, uint32_t b, bool is_double) {
  if (is_double) return ((static_cast<uint64_t>(a) << 21) ^ (b >> 11)) * (1.0 / 9007199254740992.0);
  return (a >> 8) * (1.0 / 16777216.0);
}

// Runs body(c0, nc, words) over `counters` Philox counters reserved for this call, words holding
// the 4 * nc words of counters c0 .. c0 + nc - 1 (batches of vectorised Philox calls). Counters
// map to elements by position, so results don't depend on how threads split the range.
template <class Body>
void for_each_philox_block(int64_t counters, Body body) {
  PhiloxState s = reserve_random(static_cast<uint64_t>(counters));
  parallel_for(0, counters, 4096, [&](int64_t b, int64_t e) {
    constexpr int64_t kBlock = 256;
    uint32_t words[4 * kBlock];
    for (int64_t c0 = b; c0 < e; c0 += kBlock) {
      const int64_t nc = std::min(kBlock, e - c0);
      kernels::philox().philox4x32(s.key, s.counter + static_cast<uint64_t>(c0), nc, words);
      body(c0, nc, words);
    }
  });
}

// Fills t with value_of(words) for each element, where one Philox call (4 words) serves
// `per_counter` consecutive elements, each reading its own slot of words: element i uses
// counter base + i / per_counter.
template <class T, class F>
void fill_contiguous(const Tensor& t, int per_counter, F value_of) {
  const int64_t n = t.numel();
  T* d = t.data<T>();
  for_each_philox_block((n + per_counter - 1) / per_counter, [&](int64_t c0, int64_t nc, const uint32_t* words) {
    for (int64_t c = c0; c < c0 + nc; ++c) {
      const uint32_t* w = words + 4 * (c - c0);
      const int64_t first = c * per_counter;
      const int k_end = static_cast<int>(std::min<int64_t>(per_counter, n - first));
      for (int k = 0; k < k_end; ++k) d[first + k] = value_of(w, k);
    }
  });
}

// fill_contiguous with one word per element (element i takes word i % 4 of counter base + i / 4)
// for values computed from that word alone: one flat loop over the words, which the compiler
// vectorises (dropout masks would otherwise pay a mispredicted branch per element).
template <class T, class F>
void fill_from_words(const Tensor& t, F value_of) {
  const int64_t n = t.numel();
  T* d = t.data<T>();
  for_each_philox_block((n + 3) / 4, [&](int64_t c0, int64_t nc, const uint32_t* words) {
    T* out = d + 4 * c0;
    const int64_t count = std::min<int64_t>(4 * nc, n - 4 * c0);
    for (int64_t j = 0; j < count; ++j) out[j] = value_of(words[j]);
  });
}

void require_contiguous(const Tensor& t, const char* op) {
  NC_CHECK(t.is_contiguous(), ValueError, "[", op, "] needs a contiguous tensor, got shape ",
           shape_str(t.shape()), " with non-contiguous strides");
}
}  // namespace

void philox(uint64_t key, uint64_t counter, uint32_t out[4]) { kernels::philox().philox4x32(key, counter, 1, out); }

void manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(rng_mutex);
  rng_seed = seed;
  rng_counter = 0;
}

uint64_t initial_seed() { return rng_seed; }

GeneratorScope::GeneratorScope(PhiloxState* state) : prev_(thread_generator) { thread_generator = state; }
GeneratorScope::~GeneratorScope() { thread_generator = prev_; }

PhiloxState reserve_random(uint64_t n) {
  if (thread_generator) {
    PhiloxState s = *thread_generator;
    thread_generator->counter += n;
    return s;
  }
  std::lock_guard<std::mutex> lock(rng_mutex);
  PhiloxState s{rng_seed, rng_counter};
  rng_counter += n;
  return s;
}

PhiloxState get_rng_state() {
  std::lock_guard<std::mutex> lock(rng_mutex);
  return {rng_seed, rng_counter};
}

void set_rng_state(PhiloxState s) {
  std::lock_guard<std::mutex> lock(rng_mutex);
  rng_seed = s.key;
  rng_counter = s.counter;
}

void uniform_(const Tensor& t, double low, double high) {
  require_contiguous(t, "uniform_");
  NC_CHECK(low <= high, ValueError, "[uniform_] expects a [from, to) range, but found from=", low, " > to=", high);
  dispatch_floating(t.dtype(), "uniform_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // float: one word per element (4 per counter); double: two words (2 per counter).
    constexpr bool dbl = std::is_same_v<T, double>;
    fill_contiguous<T>(t, dbl ? 2 : 4, [&](const uint32_t* w, int k) {
      const double u = dbl ? unit(w[2 * k], w[2 * k + 1], true) : unit(w[k], 0, false);
      T v = static_cast<T>(low + (high - low) * u);
      return v < static_cast<T>(high) ? v : static_cast<T>(low);
    });
  });
  t.bump_version();
}

void normal_(const Tensor& t, double mean, double std) {
  require_contiguous(t, "normal_");
  NC_CHECK(std >= 0.0, ValueError, "[normal_] expects std >= 0.0, but found std ", std);
  dispatch_floating(t.dtype(), "normal_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // Box-Muller: two uniforms give two normals (cos and sin). float: 4 words = two pairs of
    // uniforms = 4 normals per counter; double: 2 words per uniform = 2 normals per counter.
    constexpr bool dbl = std::is_same_v<T, double>;
    fill_contiguous<T>(t, dbl ? 2 : 4, [&](const uint32_t* w, int k) {
      const int pair = dbl ? 0 : k / 2;
      const double u1 = 1.0 - (dbl ? unit(w[0], w[1], true) : unit(w[2 * pair], 0, false));
      const double u2 = dbl ? unit(w[2], w[3], true) : unit(w[2 * pair + 1], 0, false);
      const double r = std::sqrt(-2.0 * std::log(u1)), a = 6.283185307179586 * u2;
      return static_cast<T>(mean + std * r * ((k % 2) ? std::sin(a) : std::cos(a)));
    });
  });
  t.bump_version();
}

void random_int_(const Tensor& t, int64_t low, int64_t high) {
  require_contiguous(t, "randint");
  NC_CHECK(high > low, ValueError, "[randint] expected low < high, got low=", low, " high=", high);
  const uint64_t range = static_cast<uint64_t>(high - low);
  dispatch_numeric(t.dtype(), "randint", [&](auto tag) {
    using T = typename decltype(tag)::type;
    fill_contiguous<T>(t, 2, [&](const uint32_t* w, int k) {
      uint64_t r = (static_cast<uint64_t>(w[2 * k]) << 32) | w[2 * k + 1];
      return static_cast<T>(low + static_cast<int64_t>(r % range));
    });
  });
  t.bump_version();
}

void bernoulli_scaled_(const Tensor& t, double p) {
  require_contiguous(t, "dropout");
  NC_CHECK(p >= 0.0 && p <= 1.0, ValueError, "[dropout] p must be in [0, 1], got ", p);  // NaN included
  dispatch_floating(t.dtype(), "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T scale = p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
    // unit(w) = (w >> 8) / 2^24 >= p  <=>  (w >> 8) >= ceil(p * 2^24), both sides exact: the same
    // mask as comparing the float, as an integer compare without a branch.
    const int32_t threshold = static_cast<int32_t>(std::ceil(p * 16777216.0));
    // scale * (0 or 1) rather than a select: gives the same values (scale or +0) and vectorises.
    fill_from_words<T>(t, [scale, threshold](uint32_t w) {
      return scale * static_cast<T>(static_cast<int32_t>(w >> 8) >= threshold);
    });
  });
  t.bump_version();
}

}  // namespace nc
