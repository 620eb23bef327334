#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/isa.h"
#include "kernels/vecmath_avx2.h"
#include "kernels/vecmath_avx512.h"

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

#endif

#if NC_HAVE_AVX512

// The 16-lane rows give the avx2 build's floats: exp16 is exp8 on every lane, and the row max and
// the double sums fold the lanes of each 16-float block in the avx2 order (its two 8-float halves
// one after the other into the same 8-lane max and two 4-lane double sums). A ragged end is
// loaded under a mask with `fill` in the other lanes (-inf for the max and exp, which leaves the
// max alone and adds exp(-inf) = +0 to the sums, changing nothing; 0 for the backward sums).
inline __m512 load_part16(const float* p, int64_t n, float fill) {
  const __mmask16 k = first_lanes(n);
  return _mm512_mask_mov_ps(set16(fill), k, _mm512_maskz_loadu_ps(k, p));
}

inline __m256 lo8(__m512 v) { return _mm512_castps512_ps256(v); }
inline __m256 hi8(__m512 v) { return _mm512_extractf32x8_ps(v, 1); }
inline __m256d cvt_lo(__m256 v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
inline __m256d cvt_hi(__m256 v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }

// max_ps(x, m) returns m when x is NaN, so NaN never enters the running max.
inline void max16(__m256& vm, __m512 v) {
  vm = _mm256_max_ps(lo8(v), vm);
  vm = _mm256_max_ps(hi8(v), vm);
}

// The 16 floats of v added as doubles to the two 4-lane sums of the avx2 build (float->double
// stays on 256-bit halves: SIMDe, which the emulated test build uses, has no _mm512_cvtps_pd).
inline void acc16(__m256d& s0, __m256d& s1, __m512 v) {
  for (__m256 h : {lo8(v), hi8(v)}) {
    s0 = _mm256_add_pd(s0, cvt_lo(h));
    s1 = _mm256_add_pd(s1, cvt_hi(h));
  }
}

void softmax_row(const float* x, float* y, int64_t n, bool log) {
  const int64_t full = n & ~int64_t(15), tail = n - full;
  const __mmask16 kt = first_lanes(tail);
  __m256 vm = _mm256_set1_ps(-INFINITY);
  for (int64_t k = 0; k < full; k += 16) max16(vm, _mm512_loadu_ps(x + k));
  if (tail) max16(vm, load_part16(x + full, tail, -INFINITY));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vm);
  float m = lanes[0];
  for (int i = 1; i < 8; ++i) m = std::max(m, lanes[i]);
  m = finish_max(m);
  const __m512 vshift = set16(m);
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  for (int64_t k = 0; k < full; k += 16) {
    __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + k), vshift));
    if (!log) _mm512_storeu_ps(y + k, e);
    acc16(s0, s1, e);
  }
  if (tail) {
    __m512 e = exp16(_mm512_sub_ps(load_part16(x + full, tail, -INFINITY), vshift));
    if (!log) _mm512_mask_storeu_ps(y + full, kt, e);
    acc16(s0, s1, e);
  }
  const double s = hsum(_mm256_add_pd(s0, s1));
  if (log) {
    const __m512 vls = set16(static_cast<float>(std::log(s)));
    auto f = [&](__m512 v) { return _mm512_sub_ps(_mm512_sub_ps(v, vshift), vls); };
    for (int64_t k = 0; k < full; k += 16) _mm512_storeu_ps(y + k, f(_mm512_loadu_ps(x + k)));
    if (tail) _mm512_mask_storeu_ps(y + full, kt, f(_mm512_maskz_loadu_ps(kt, x + full)));
  } else {
    const __m512 vinv = set16(static_cast<float>(1.0 / s));
    for (int64_t k = 0; k < full; k += 16) _mm512_storeu_ps(y + k, _mm512_mul_ps(_mm512_loadu_ps(y + k), vinv));
    if (tail) _mm512_mask_storeu_ps(y + full, kt, _mm512_mul_ps(_mm512_maskz_loadu_ps(kt, y + full), vinv));
  }
}

// Same formulas as the generic build (products in float, the rest in double), vectorised.
void softmax_backward_row(const float* g, const float* y, float* gx, int64_t n, bool log) {
  const int64_t full = n & ~int64_t(15), tail = n - full;
  const __mmask16 kt = first_lanes(tail);
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  for (int64_t k = 0; k < full; k += 16) {
    __m512 gv = _mm512_loadu_ps(g + k);
    acc16(s0, s1, log ? gv : _mm512_mul_ps(gv, _mm512_loadu_ps(y + k)));
  }
  if (tail) {
    __m512 gv = _mm512_maskz_loadu_ps(kt, g + full);
    acc16(s0, s1, log ? gv : _mm512_mul_ps(gv, _mm512_maskz_loadu_ps(kt, y + full)));
  }
  const __m256d s = _mm256_set1_pd(hsum(_mm256_add_pd(s0, s1)));
  // Per 4 lanes: double(g) - double(f) * s with f = exp(y) (log) or (g - s) * y (softmax).
  auto quarter = [&](__m256d gd, __m256d fd) {
    return _mm256_cvtpd_ps(log ? _mm256_sub_pd(gd, _mm256_mul_pd(fd, s)) : _mm256_mul_pd(fd, _mm256_sub_pd(gd, s)));
  };
  auto half = [&](__m256 gv, __m256 f) {
    return _mm256_set_m128(quarter(cvt_hi(gv), cvt_hi(f)), quarter(cvt_lo(gv), cvt_lo(f)));
  };
  auto block = [&](__m512 gv, __m512 yv) {
    __m512 f = log ? exp16(yv) : yv;
    return _mm512_insertf32x8(_mm512_castps256_ps512(half(lo8(gv), lo8(f))), half(hi8(gv), hi8(f)), 1);
  };
  for (int64_t k = 0; k < full; k += 16)
    _mm512_storeu_ps(gx + k, block(_mm512_loadu_ps(g + k), _mm512_loadu_ps(y + k)));
  if (tail)
    _mm512_mask_storeu_ps(gx + full, kt,
                          block(_mm512_maskz_loadu_ps(kt, g + full), _mm512_maskz_loadu_ps(kt, y + full)));
}

#elif NC_HAVE_AVX2

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
