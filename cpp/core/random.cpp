#include "core/random.h"

#include <cmath>
#include <mutex>

#include "core/parallel.h"

namespace nc {

namespace {
std::mutex rng_mutex;
uint64_t rng_seed = 67280421310721ULL;
uint64_t rng_counter = 0;

inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// 24 random bits -> float in [0, 1); 53 bits -> double in [0, 1).
inline double unit(uint32_t a, uint32_t b, bool is_double) {
  if (is_double) return ((static_cast<uint64_t>(a) << 21) ^ (b >> 11)) * (1.0 / 9007199254740992.0);
  return (a >> 8) * (1.0 / 16777216.0);
}

template <class T, class F>
void fill_contiguous(const Tensor& t, F value_of) {
  // value_of(words[4], i) -> T for element i, using the words of counter i.
  const int64_t n = t.numel();
  PhiloxState s = reserve_random(static_cast<uint64_t>(n));
  T* d = t.data<T>();
  parallel_for(0, n, 16384, [&](int64_t b, int64_t e) {
    uint32_t w[4];
    for (int64_t i = b; i < e; ++i) {
      philox(s.key, s.counter + static_cast<uint64_t>(i), w);
      d[i] = value_of(w);
    }
  });
}

void require_contiguous(const Tensor& t, const char* op) {
  NC_CHECK(t.is_contiguous(), ValueError, "[", op, "] needs a contiguous tensor, got shape ",
           shape_str(t.shape()), " with non-contiguous strides");
}
}  // namespace

void philox(uint64_t key, uint64_t counter, uint32_t out[4]) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(rng_mutex);
  rng_seed = seed;
  rng_counter = 0;
}

uint64_t initial_seed() { return rng_seed; }

PhiloxState reserve_random(uint64_t n) {
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
  dispatch_floating(t.dtype(), "uniform_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool dbl = std::is_same_v<T, double>;
    fill_contiguous<T>(t, [&](const uint32_t* w) {
      T v = static_cast<T>(low + (high - low) * unit(w[0], w[1], dbl));
      return v < static_cast<T>(high) ? v : static_cast<T>(low);
    });
  });
  t.bump_version();
}

void normal_(const Tensor& t, double mean, double std) {
  require_contiguous(t, "normal_");
  dispatch_floating(t.dtype(), "normal_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool dbl = std::is_same_v<T, double>;
    fill_contiguous<T>(t, [&](const uint32_t* w) {
      // Box-Muller on two uniforms from this element's own counter.
      double u1 = 1.0 - unit(w[0], w[1], dbl), u2 = unit(w[2], w[3], dbl);
      return static_cast<T>(mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
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
    fill_contiguous<T>(t, [&](const uint32_t* w) {
      uint64_t r = (static_cast<uint64_t>(w[0]) << 32) | w[1];
      return static_cast<T>(low + static_cast<int64_t>(r % range));
    });
  });
  t.bump_version();
}

void bernoulli_scaled_(const Tensor& t, double p) {
  require_contiguous(t, "dropout");
  dispatch_floating(t.dtype(), "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T scale = p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
    fill_contiguous<T>(t, [&](const uint32_t* w) { return unit(w[0], w[1], false) >= p ? scale : T(0); });
  });
  t.bump_version();
}

}  // namespace nc
