#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/isa.h"
#include "kernels/vecmath_avx2.h"

namespace nc::kernels::NC_ISA {
namespace {

// The row max with NaN ignored (as std::max(m, x) does), and the shift used by every element:
// rows whose max is +-inf are shifted by 0 (all -inf rows give NaN like PyTorch; +inf too).
inline float finish_max(float m) { return std::isinf(m) ? (m > 0 ? m : 0.0f) : m; }

#if NC_HAVE_AVX2

inline double hsum(__m256d v) {
  alignas(32) double l[4];
  _mm256_store_pd(l, v);
  return (l[0] + l[1]) + (l[2] + l[3]);
}

// 8 floats from p, or the first n < 8 of them and `fill` in the other lanes.
inline __m256 load_part(const float* p, int64_t n, float fill) {
  alignas(32) float buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = fill;
  std::memcpy(buf, p, n * sizeof(float));
  return _mm256_load_ps(buf);
}

inline void store_part(float* p, __m256 v, int64_t n) {
  alignas(32) float buf[8];
  _mm256_store_ps(buf, v);
  std::memcpy(p, buf, n * sizeof(float));
}

// Adds the 8 floats of v as doubles to two 4-lane accumulators.
inline void acc_pd(__m256d& s0, __m256d& s1, __m256 v) {
  s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
  s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

void softmax_row(const float* x, float* y, int64_t n, bool log) {
  const int64_t full = n & ~int64_t(7), tail = n - full;
  // max_ps(x, m) returns m when x is NaN, so NaN never enters the running max.
  __m256 vm = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t k = 0; k < full; k += 8) vm = _mm256_max_ps(_mm256_loadu_ps(x + k), vm);
  if (tail) vm = _mm256_max_ps(load_part(x + full, tail, -INFINITY), vm);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vm);
  float m = lanes[0];
  for (int i = 1; i < 8; ++i) m = std::max(m, lanes[i]);
  m = finish_max(m);
  const __m256 vshift = _mm256_set1_ps(m);
  // e = exp(x - m), summed in double lanes (exact order fixed by position in the row).
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  for (int64_t k = 0; k < full; k += 8) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + k), vshift));
    if (!log) _mm256_storeu_ps(y + k, e);
    acc_pd(s0, s1, e);
  }
  if (tail) {
    // Padding lanes hold -inf: exp gives 0 and adds nothing.
    __m256 e = exp8(_mm256_sub_ps(load_part(x + full, tail, -INFINITY), vshift));
    if (!log) store_part(y + full, e, tail);
    acc_pd(s0, s1, e);
  }
  const double s = hsum(_mm256_add_pd(s0, s1));
  if (log) {
    const float ls = static_cast<float>(std::log(s));
    const __m256 vls = _mm256_set1_ps(ls);
    for (int64_t k = 0; k < full; k += 8)
      _mm256_storeu_ps(y + k, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + k), vshift), vls));
    for (int64_t k = full; k < n; ++k) y[k] = x[k] - m - ls;
  } else {
    const float inv = static_cast<float>(1.0 / s);
    const __m256 vinv = _mm256_set1_ps(inv);
    for (int64_t k = 0; k < full; k += 8) _mm256_storeu_ps(y + k, _mm256_mul_ps(_mm256_loadu_ps(y + k), vinv));
    for (int64_t k = full; k < n; ++k) y[k] *= inv;
  }
}

// Same formulas as the generic build (products in float, the rest in double), vectorised.
void softmax_backward_row(const float* g, const float* y, float* gx, int64_t n, bool log) {
  const int64_t full = n & ~int64_t(7), tail = n - full;
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  for (int64_t k = 0; k < full; k += 8) {
    __m256 gv = _mm256_loadu_ps(g + k);
    acc_pd(s0, s1, log ? gv : _mm256_mul_ps(gv, _mm256_loadu_ps(y + k)));
  }
  if (tail) {
    __m256 gv = load_part(g + full, tail, 0.0f);
    acc_pd(s0, s1, log ? gv : _mm256_mul_ps(gv, load_part(y + full, tail, 0.0f)));
  }
  const __m256d s = _mm256_set1_pd(hsum(_mm256_add_pd(s0, s1)));
  auto block = [&](__m256 gv, __m256 yv) {
    // Per half: double(g) - double(f) * s with f = exp(y) (log) or (g - s) * y (softmax).
    __m256 f = log ? exp8(yv) : yv;
    __m128 r[2];
    for (int h = 0; h < 2; ++h) {
      __m256d gd = _mm256_cvtps_pd(h ? _mm256_extractf128_ps(gv, 1) : _mm256_castps256_ps128(gv));
      __m256d fd = _mm256_cvtps_pd(h ? _mm256_extractf128_ps(f, 1) : _mm256_castps256_ps128(f));
      __m256d v = log ? _mm256_sub_pd(gd, _mm256_mul_pd(fd, s)) : _mm256_mul_pd(fd, _mm256_sub_pd(gd, s));
      r[h] = _mm256_cvtpd_ps(v);
    }
    return _mm256_set_m128(r[1], r[0]);
  };
  for (int64_t k = 0; k < full; k += 8)
    _mm256_storeu_ps(gx + k, block(_mm256_loadu_ps(g + k), _mm256_loadu_ps(y + k)));
  if (tail) store_part(gx + full, block(load_part(g + full, tail, 0.0f), load_part(y + full, tail, 0.0f)), tail);
}

#else

void softmax_row(const float* x, float* y, int64_t n, bool log) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t k = 0; k < n; ++k) m = std::max(m, x[k]);
  m = finish_max(m);
  double s = 0;
  for (int64_t k = 0; k < n; ++k) {
    y[k] = std::exp(x[k] - m);
    s += y[k];
  }
  if (log) {
    const float ls = static_cast<float>(std::log(s));
    for (int64_t k = 0; k < n; ++k) y[k] = x[k] - m - ls;
  } else {
    const float inv = static_cast<float>(1.0 / s);
    for (int64_t k = 0; k < n; ++k) y[k] *= inv;
  }
}

void softmax_backward_row(const float* g, const float* y, float* gx, int64_t n, bool log) {
  double s = 0;
  for (int64_t k = 0; k < n; ++k) s += log ? g[k] : g[k] * y[k];
  for (int64_t k = 0; k < n; ++k)
    gx[k] = log ? static_cast<float>(g[k] - std::exp(y[k]) * s) : static_cast<float>(y[k] * (g[k] - s));
}

#endif

void rows_f32(const float* x, float* y, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * n, y + r * n, n, log);
}

void backward_rows_f32(const float* g, const float* y, float* gx, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; ++r) softmax_backward_row(g + r * n, y + r * n, gx + r * n, n, log);
}

}  // namespace

const SoftmaxKernels softmax_table = {{rows_f32, backward_rows_f32}};

}  // namespace nc::kernels::NC_ISA
