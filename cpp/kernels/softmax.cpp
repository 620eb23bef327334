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

// The vector builds give the same floats (tests/test_vecmath.py checks it bit for bit): exp16 is
// exp8 on every lane, and the row max and the row sums, kept in double, visit the elements in one
// order. The row is read in blocks of 32 floats, float j of a block going to lane j % 8 of
// accumulator j / 8 (avx2: two 4-lane halves of it); four accumulators, so that four independent
// chains of additions hide the latency of each (one chain held the loop at its add latency). A
// ragged end is read as if padded with -inf (for the max and exp: it leaves the max alone and adds
// exp(-inf) = +0) or 0 (backward sums): adding +0 to a sum that starts at +0 changes nothing.
// Folding: the accumulators as (a0 + a1) + (a2 + a3) (max: the same shape), then lane i with lane
// i + 4, then (l0 + l1) + (l2 + l3) (max: lanes 0..7 in turn).
//
// log_backward_note: log_softmax's gradient g - exp(y) * sum(g) is one FMA per element in float,
// with the double sum rounded to float, as PyTorch computes it: within an ulp of exp(y) * sum(g)
// of the generic build's double formula, at half the cost of converting every element to double
// and back (softmax's (g - sum(g * y)) * y keeps that: g - s cancels when g is close to s).

#if NC_HAVE_AVX2
inline double hsum(__m256d v) {
  alignas(32) double l[4];
  _mm256_store_pd(l, v);
  return (l[0] + l[1]) + (l[2] + l[3]);
}

inline float hmax(__m256 v) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  float m = lanes[0];
  for (int i = 1; i < 8; ++i) m = std::max(m, lanes[i]);
  return m;
}
#endif

#if NC_HAVE_AVX512

inline __m256 lo8(__m512 v) { return _mm512_castps512_ps256(v); }
inline __m256 hi8(__m512 v) { return _mm512_extractf32x8_ps(v, 1); }

// The 16 floats at p, or the first n < 16 of them and `fill` in the other lanes.
inline __m512 load16(const float* p, int64_t n, float fill) {
  if (n == 16) return _mm512_loadu_ps(p);
  const __mmask16 k = first_lanes(n);
  return _mm512_mask_mov_ps(set16(fill), k, _mm512_maskz_loadu_ps(k, p));
}

inline void store16(float* p, __m512 v, int64_t n) {
  if (n == 16)
    _mm512_storeu_ps(p, v);
  else
    _mm512_mask_storeu_ps(p, first_lanes(n), v);
}

// Calls f(k, count, half) for the 16-float chunks of a row of n: half 0 holds floats 0-15 of a
// 32-float block (accumulators 0 and 1), half 1 floats 16-31 (accumulators 2 and 3).
template <class F>
inline void each16(int64_t n, F f) {
  int64_t k = 0;
  for (; k + 32 <= n; k += 32) {
    f(k, 16, 0);
    f(k + 16, 16, 1);
  }
  if (k < n) f(k, std::min<int64_t>(16, n - k), 0);
  if (k + 16 < n) f(k + 16, n - k - 16, 1);
}

// Four 8-lane double sums: chunk half h adds its two 8-float halves to sums 2h and 2h + 1.
struct RowSum {
  __m512d a[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
  void add(__m512 v, int half) {
    if (half == 0) {
      a[0] = _mm512_add_pd(a[0], _mm512_cvtps_pd(lo8(v)));
      a[1] = _mm512_add_pd(a[1], _mm512_cvtps_pd(hi8(v)));
    } else {
      a[2] = _mm512_add_pd(a[2], _mm512_cvtps_pd(lo8(v)));
      a[3] = _mm512_add_pd(a[3], _mm512_cvtps_pd(hi8(v)));
    }
  }
  double total() const {
    const __m512d t = _mm512_add_pd(_mm512_add_pd(a[0], a[1]), _mm512_add_pd(a[2], a[3]));
    return hsum(_mm256_add_pd(_mm512_castpd512_pd256(t), _mm512_extractf64x4_pd(t, 1)));
  }
};

// The row max with NaN ignored: max_ps(x, m) returns m when x is NaN.
float row_max(const float* x, int64_t n) {
  __m512 m[2] = {set16(-INFINITY), set16(-INFINITY)};
  each16(n, [&](int64_t k, int64_t c, int h) { m[h] = _mm512_max_ps(load16(x + k, c, -INFINITY), m[h]); });
  return hmax(_mm256_max_ps(_mm256_max_ps(lo8(m[0]), hi8(m[0])), _mm256_max_ps(lo8(m[1]), hi8(m[1]))));
}

void softmax_row(const float* x, float* y, int64_t n, bool log) {
  const float m = finish_max(row_max(x, n));
  const __m512 vshift = set16(m);
  RowSum sum;
  each16(n, [&](int64_t k, int64_t c, int h) {
    __m512 e = exp16(_mm512_sub_ps(load16(x + k, c, -INFINITY), vshift));
    if (!log) store16(y + k, e, c);
    sum.add(e, h);
  });
  const double s = sum.total();
  if (log) {
    const __m512 vls = set16(static_cast<float>(std::log(s)));
    each16(n, [&](int64_t k, int64_t c, int) {
      store16(y + k, _mm512_sub_ps(_mm512_sub_ps(load16(x + k, c, 0.0f), vshift), vls), c);
    });
  } else {
    const __m512 vinv = set16(static_cast<float>(1.0 / s));
    each16(n, [&](int64_t k, int64_t c, int) { store16(y + k, _mm512_mul_ps(load16(y + k, c, 0.0f), vinv), c); });
  }
}

// The generic build's formulas, vectorised; see log_backward_note for log_softmax.
void softmax_backward_row(const float* g, const float* y, float* gx, int64_t n, bool log) {
  RowSum sum;
  each16(n, [&](int64_t k, int64_t c, int h) {
    const __m512 gv = load16(g + k, c, 0.0f);
    sum.add(log ? gv : _mm512_mul_ps(gv, load16(y + k, c, 0.0f)), h);
  });
  if (log) {  // see log_backward_note
    const __m512 vs = set16(static_cast<float>(sum.total()));
    each16(n, [&](int64_t k, int64_t c, int) {
      store16(gx + k, _mm512_fnmadd_ps(exp16(load16(y + k, c, 0.0f)), vs, load16(g + k, c, 0.0f)), c);
    });
    return;
  }
  const __m512d s = _mm512_set1_pd(sum.total());
  // Per 8 lanes: (double(g) - s) * double(y), rounded once to float.
  auto half = [&](__m256 gv, __m256 yv) {
    return _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(yv), _mm512_sub_pd(_mm512_cvtps_pd(gv), s)));
  };
  each16(n, [&](int64_t k, int64_t c, int) {
    const __m512 gv = load16(g + k, c, 0.0f), yv = load16(y + k, c, 0.0f);
    store16(gx + k, _mm512_insertf32x8(_mm512_castps256_ps512(half(lo8(gv), lo8(yv))), half(hi8(gv), hi8(yv)), 1), c);
  });
}

#elif NC_HAVE_AVX2

// The 8 floats at p, or the first n < 8 of them and `fill` in the other lanes.
inline __m256 load8(const float* p, int64_t n, float fill) {
  if (n == 8) return _mm256_loadu_ps(p);
  alignas(32) float buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = fill;
  std::memcpy(buf, p, n * sizeof(float));
  return _mm256_load_ps(buf);
}

inline void store8(float* p, __m256 v, int64_t n) {
  if (n == 8) return _mm256_storeu_ps(p, v);
  alignas(32) float buf[8];
  _mm256_store_ps(buf, v);
  std::memcpy(p, buf, n * sizeof(float));
}

// Calls f(k, count, q) for the 8-float chunks of a row of n, q = which quarter of a 32-float block.
template <class F>
inline void each8(int64_t n, F f) {
  int64_t k = 0;
  for (; k + 32 <= n; k += 32) {
    f(k, 8, 0);
    f(k + 8, 8, 1);
    f(k + 16, 8, 2);
    f(k + 24, 8, 3);
  }
  for (int q = 0; k < n; k += 8, ++q) f(k, std::min<int64_t>(8, n - k), q);
}

// Four 8-lane double sums, each as two 4-lane halves: chunk quarter q goes to sum q.
struct RowSum {
  __m256d lo[4], hi[4];
  RowSum() {
    for (int q = 0; q < 4; ++q) lo[q] = hi[q] = _mm256_setzero_pd();
  }
  void add(__m256 v, int q) {
    lo[q] = _mm256_add_pd(lo[q], _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    hi[q] = _mm256_add_pd(hi[q], _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  double total() const {
    const __m256d l = _mm256_add_pd(_mm256_add_pd(lo[0], lo[1]), _mm256_add_pd(lo[2], lo[3]));
    const __m256d h = _mm256_add_pd(_mm256_add_pd(hi[0], hi[1]), _mm256_add_pd(hi[2], hi[3]));
    return hsum(_mm256_add_pd(l, h));
  }
};

// The row max with NaN ignored: max_ps(x, m) returns m when x is NaN.
float row_max(const float* x, int64_t n) {
  __m256 m[4];
  for (auto& v : m) v = _mm256_set1_ps(-INFINITY);
  each8(n, [&](int64_t k, int64_t c, int q) { m[q] = _mm256_max_ps(load8(x + k, c, -INFINITY), m[q]); });
  return hmax(_mm256_max_ps(_mm256_max_ps(m[0], m[1]), _mm256_max_ps(m[2], m[3])));
}

void softmax_row(const float* x, float* y, int64_t n, bool log) {
  const float m = finish_max(row_max(x, n));
  const __m256 vshift = _mm256_set1_ps(m);
  RowSum sum;
  each8(n, [&](int64_t k, int64_t c, int q) {
    __m256 e = exp8(_mm256_sub_ps(load8(x + k, c, -INFINITY), vshift));
    if (!log) store8(y + k, e, c);
    sum.add(e, q);
  });
  const double s = sum.total();
  if (log) {
    const __m256 vls = _mm256_set1_ps(static_cast<float>(std::log(s)));
    each8(n, [&](int64_t k, int64_t c, int) {
      store8(y + k, _mm256_sub_ps(_mm256_sub_ps(load8(x + k, c, 0.0f), vshift), vls), c);
    });
  } else {
    const __m256 vinv = _mm256_set1_ps(static_cast<float>(1.0 / s));
    each8(n, [&](int64_t k, int64_t c, int) { store8(y + k, _mm256_mul_ps(load8(y + k, c, 0.0f), vinv), c); });
  }
}

// The generic build's formulas, vectorised; see log_backward_note for log_softmax.
void softmax_backward_row(const float* g, const float* y, float* gx, int64_t n, bool log) {
  RowSum sum;
  each8(n, [&](int64_t k, int64_t c, int q) {
    const __m256 gv = load8(g + k, c, 0.0f);
    sum.add(log ? gv : _mm256_mul_ps(gv, load8(y + k, c, 0.0f)), q);
  });
  if (log) {  // see log_backward_note
    const __m256 vs = _mm256_set1_ps(static_cast<float>(sum.total()));
    each8(n, [&](int64_t k, int64_t c, int) {
      store8(gx + k, _mm256_fnmadd_ps(exp8(load8(y + k, c, 0.0f)), vs, load8(g + k, c, 0.0f)), c);
    });
    return;
  }
  const __m256d s = _mm256_set1_pd(sum.total());
  each8(n, [&](int64_t k, int64_t c, int) {
    // Per half: (double(g) - s) * double(y), rounded once to float.
    const __m256 gv = load8(g + k, c, 0.0f), yv = load8(y + k, c, 0.0f);
    __m128 r[2];
    for (int h = 0; h < 2; ++h) {
      __m256d gd = _mm256_cvtps_pd(h ? _mm256_extractf128_ps(gv, 1) : _mm256_castps256_ps128(gv));
      __m256d yd = _mm256_cvtps_pd(h ? _mm256_extractf128_ps(yv, 1) : _mm256_castps256_ps128(yv));
      r[h] = _mm256_cvtpd_ps(_mm256_mul_pd(yd, _mm256_sub_pd(gd, s)));
    }
    store8(gx + k, _mm256_set_m128(r[1], r[0]), c);
  });
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
