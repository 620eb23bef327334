#include "kernels/reduce.h"

#include <cmath>
#include <limits>

#include "kernels/isa.h"

namespace nc::kernels::NC_ISA {
namespace {

constexpr int kLanes = 32;

// Adds the elements of x[0..n), n < 32, to the partials they belong to, then the partials pairwise.
template <class T>
double finish_sum(double (&p)[kLanes], const T* x, int64_t n) {
  for (int64_t k = 0; k < n; ++k) p[k] += static_cast<double>(x[k]);
  for (int w = kLanes / 2; w >= 1; w /= 2)
    for (int k = 0; k < w; ++k) p[k] += p[k + w];
  return p[0];
}

template <class T>
T extreme_scalar(const T* x, int64_t n, bool is_max) {
  T best = x[0];
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    if (v != v) return v;
    if (is_max ? v > best : v < best) best = v;
  }
  return best;
}

template <class T>
void accumulate_scalar(double* acc, const T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += static_cast<double>(x[i]);
}

#if NC_HAVE_AVX2

// Software prefetch distance in elements (a 4 KB page ahead: hardware prefetchers stop at page
// boundaries); worth ~10% on sums of arrays far beyond the caches.
constexpr int64_t kPrefetch = 1024;

inline __m256d widen_lo(__m256 v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
inline __m256d widen_hi(__m256 v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }

// Eight 4-lane double accumulators: acc[j] holds partials 4j .. 4j+3.
double sum_f32(const float* x, int64_t n) {
  __m256d acc[8];
  for (auto& a : acc) a = _mm256_setzero_pd();
  int64_t i = 0;
  // cvtps_pd straight from memory (no 128-bit extract): acc[j] takes elements 4j .. 4j+3.
  for (; i + kLanes <= n; i += kLanes) {
    _mm_prefetch(reinterpret_cast<const char*>(x + i + kPrefetch), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(x + i + kPrefetch + 16), _MM_HINT_T0);
    for (int j = 0; j < 8; ++j) acc[j] = _mm256_add_pd(acc[j], _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * j)));
  }
  double p[kLanes];
  for (int j = 0; j < 8; ++j) _mm256_storeu_pd(p + 4 * j, acc[j]);
  return finish_sum(p, x + i, n - i);
}

double sum_f64(const double* x, int64_t n) {
  __m256d acc[8];
  for (auto& a : acc) a = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < 8; ++j) acc[j] = _mm256_add_pd(acc[j], _mm256_loadu_pd(x + i + 4 * j));
  double p[kLanes];
  for (int j = 0; j < 8; ++j) _mm256_storeu_pd(p + 4 * j, acc[j]);
  return finish_sum(p, x + i, n - i);
}

void accumulate_f32(double* acc, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    _mm256_storeu_pd(acc + i, _mm256_add_pd(_mm256_loadu_pd(acc + i), widen_lo(v)));
    _mm256_storeu_pd(acc + i + 4, _mm256_add_pd(_mm256_loadu_pd(acc + i + 4), widen_hi(v)));
  }
  accumulate_scalar(acc + i, x + i, n - i);
}

void accumulate_f64(double* acc, const double* x, int64_t n) { accumulate_scalar(acc, x, n); }

// Four running extremes and a NaN flag; max_ps/min_ps would silently drop a NaN operand.
float extreme_f32(const float* x, int64_t n, bool is_max) {
  if (n < 32) return extreme_scalar(x, n, is_max);
  __m256 m[4], nan = _mm256_setzero_ps();
  for (int j = 0; j < 4; ++j) {
    m[j] = _mm256_loadu_ps(x + 8 * j);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(m[j], m[j], _CMP_UNORD_Q));
  }
  int64_t i = 32;
  for (; i + 32 <= n; i += 32) {
    _mm_prefetch(reinterpret_cast<const char*>(x + i + kPrefetch), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(x + i + kPrefetch + 16), _MM_HINT_T0);
    for (int j = 0; j < 4; ++j) {
      __m256 v = _mm256_loadu_ps(x + i + 8 * j);
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
      m[j] = is_max ? _mm256_max_ps(m[j], v) : _mm256_min_ps(m[j], v);
    }
  }
  if (!_mm256_testz_ps(nan, nan)) return std::numeric_limits<float>::quiet_NaN();
  __m256 r = is_max ? _mm256_max_ps(_mm256_max_ps(m[0], m[1]), _mm256_max_ps(m[2], m[3]))
                    : _mm256_min_ps(_mm256_min_ps(m[0], m[1]), _mm256_min_ps(m[2], m[3]));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, r);
  float best = extreme_scalar(lanes, 8, is_max);
  if (i < n) {
    const float rest = extreme_scalar(x + i, n - i, is_max);
    if (rest != rest || (is_max ? rest > best : rest < best)) best = rest;
  }
  return best;
}

double extreme_f64(const double* x, int64_t n, bool is_max) { return extreme_scalar(x, n, is_max); }

#else

template <class T>
double sum_scalar(const T* x, int64_t n) {
  double p[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) p[k] += static_cast<double>(x[i + k]);
  return finish_sum(p, x + i, n - i);
}

constexpr auto sum_f32 = sum_scalar<float>;
constexpr auto sum_f64 = sum_scalar<double>;
constexpr auto accumulate_f32 = accumulate_scalar<float>;
constexpr auto accumulate_f64 = accumulate_scalar<double>;
constexpr auto extreme_f32 = extreme_scalar<float>;
constexpr auto extreme_f64 = extreme_scalar<double>;

#endif

}  // namespace

const ReduceKernels reduce_table = {{sum_f32, accumulate_f32, extreme_f32}, {sum_f64, accumulate_f64, extreme_f64}};

}  // namespace nc::kernels::NC_ISA
