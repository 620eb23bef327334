#pragma once
// AVX2 math on 8 floats, shared by the kernel files that need it (vecmath.cpp, activation.cpp,
// softmax.cpp). Internal linkage (anonymous namespace) so that no inline symbol is shared
// between ISA builds.
//
// Accuracy, measured over all float32 inputs against float64 references (tests/test_vecmath.py):
// exp, log <= 2 ULP; tanh, sigmoid <= 3; erf, expm1, log1p: see the test's bounds. Polynomial
// coefficients are minimax fits (Lawson-weighted least squares) of the functions named beside them.
#include "kernels/isa.h"

#include <cmath>
#include <cstring>

#if NC_HAVE_AVX2
namespace nc::kernels::NC_ISA {
namespace {

inline __m256 set1(float v) { return _mm256_set1_ps(v); }
inline __m256 abs8(__m256 x) { return _mm256_andnot_ps(set1(-0.0f), x); }
inline __m256 isnan8(__m256 x) { return _mm256_cmp_ps(x, x, _CMP_UNORD_Q); }

// c[0] * x^(N-1) + ... + c[N-1] by Horner's rule with FMA.
template <int N>
inline __m256 horner(__m256 x, const float (&c)[N]) {
  __m256 p = set1(c[0]);
  for (int i = 1; i < N; ++i) p = _mm256_fmadd_ps(p, x, set1(c[i]));
  return p;
}

// 2^n for integer-valued float n in [-252, 254], as two factors so that denormal results and
// n = 128 stay exact: y * 2^(n/2) * 2^(n - n/2).
inline __m256 scale_by_pow2(__m256 y, __m256 n) {
  __m256i ni = _mm256_cvtps_epi32(n);
  __m256i n1 = _mm256_srai_epi32(ni, 1);
  __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  __m256 p1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  __m256 p2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(y, p1), p2);
}

// e^x = p * 2^n for finite x (Cephes range reduction and polynomial): returns p in [0.7, 1.42]
// and sets n = round(x / ln 2).
inline __m256 exp8_reduced(__m256 x, __m256& n) {
  n = _mm256_round_ps(_mm256_mul_ps(x, set1(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, set1(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, set1(-2.12194440e-4f), r);
  __m256 p = set1(1.9875691500E-4f);
  p = _mm256_fmadd_ps(p, r, set1(1.3981999507E-3f));
  p = _mm256_fmadd_ps(p, r, set1(8.3334519073E-3f));
  p = _mm256_fmadd_ps(p, r, set1(4.1665795894E-2f));
  p = _mm256_fmadd_ps(p, r, set1(1.6666665459E-1f));
  p = _mm256_fmadd_ps(p, r, set1(5.0000001201E-1f));
  return _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, set1(1.0f)));
}

inline __m256 exp8(__m256 x) {
  const __m256 hi = set1(88.72283905206835f), lo = set1(-103.97208f);
  __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
  __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  __m256 n;
  __m256 p = exp8_reduced(_mm256_min_ps(_mm256_max_ps(x, lo), hi), n);
  __m256 y = scale_by_pow2(p, n);
  y = _mm256_blendv_ps(y, set1(INFINITY), over);
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), under);
  return _mm256_blendv_ps(y, x, isnan8(x));
}

// e^x kept as p * 2^n, for products m * e^x whose value is tiny (x*e^x in SiLU, Mish, GELU):
// multiplying m into p before the power of two rounds a denormal result once, where
// m * exp8(x) would round e^x to a denormal first and lose its digits. x is clamped to
// [-120, 88.7]; callers give m a value that makes the product vanish where x was clamped.
struct Exp8Parts {
  __m256 p, n;
};
inline Exp8Parts exp8_parts(__m256 x) {
  Exp8Parts e;
  e.p = exp8_reduced(_mm256_min_ps(_mm256_max_ps(x, set1(-120.0f)), set1(88.72283905206835f)), e.n);
  return e;
}
inline __m256 times(const Exp8Parts& e, __m256 m) { return scale_by_pow2(_mm256_mul_ps(e.p, m), e.n); }
inline __m256 value(const Exp8Parts& e) { return scale_by_pow2(e.p, e.n); }

inline __m256 log8(__m256 x) {
  const __m256 one = set1(1.0f);
  __m256 nan_mask = _mm256_or_ps(isnan8(x), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
  __m256 zero_mask = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ);
  __m256 inf_mask = _mm256_cmp_ps(x, set1(INFINITY), _CMP_EQ_OQ);
  // Denormals: scale into the normal range and correct the exponent by -23.
  __m256 denorm = _mm256_cmp_ps(x, set1(1.17549435e-38f), _CMP_LT_OQ);
  __m256 xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, set1(8388608.0f)), denorm);
  __m256i bits = _mm256_castps_si256(xs);
  __m256i expo = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126));
  __m256 e = _mm256_cvtepi32_ps(expo);
  e = _mm256_sub_ps(e, _mm256_and_ps(denorm, set1(23.0f)));
  // Mantissa in [0.5, 1).
  __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x807FFFFF)),
                                                 _mm256_set1_epi32(0x3F000000)));
  __m256 small = _mm256_cmp_ps(m, set1(0.707106781186547524f), _CMP_LT_OQ);
  e = _mm256_sub_ps(e, _mm256_and_ps(small, one));
  m = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(small, m)), one);
  __m256 z = _mm256_mul_ps(m, m);
  static constexpr float kLog[] = {7.0376836292E-2f, -1.1514610310E-1f, 1.1676998740E-1f, -1.2420140846E-1f,
                                   1.4249322787E-1f, -1.6668057665E-1f, 2.0000714765E-1f, -2.4999993993E-1f,
                                   3.3333331174E-1f};
  __m256 y = horner(m, kLog);
  y = _mm256_mul_ps(_mm256_mul_ps(y, m), z);
  y = _mm256_fmadd_ps(e, set1(-2.12194440e-4f), y);
  y = _mm256_fnmadd_ps(z, set1(0.5f), y);
  __m256 r = _mm256_add_ps(m, y);
  r = _mm256_fmadd_ps(e, set1(0.693359375f), r);
  r = _mm256_blendv_ps(r, set1(-INFINITY), zero_mask);
  r = _mm256_blendv_ps(r, set1(INFINITY), inf_mask);
  return _mm256_blendv_ps(r, set1(NAN), nan_mask);
}

inline __m256 tanh8(__m256 x) {
  const __m256 sign = set1(-0.0f);
  __m256 ax = _mm256_andnot_ps(sign, x);
  // Small |x|: odd polynomial; else 1 - 2 / (exp(2|x|) + 1), with the sign put back.
  __m256 z = _mm256_mul_ps(x, x);
  static constexpr float kTanh[] = {-5.70498872745E-3f, 2.06390887954E-2f, -5.37397155531E-2f, 1.33314422036E-1f,
                                    -3.33332819422E-1f};
  __m256 p = horner(z, kTanh);
  __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
  __m256 e = exp8(_mm256_add_ps(ax, ax));
  __m256 large = _mm256_sub_ps(set1(1.0f), _mm256_div_ps(set1(2.0f), _mm256_add_ps(e, set1(1.0f))));
  large = _mm256_or_ps(large, _mm256_and_ps(sign, x));
  __m256 use_small = _mm256_cmp_ps(ax, set1(0.625f), _CMP_LT_OQ);
  __m256 r = _mm256_blendv_ps(large, small, use_small);
  return _mm256_blendv_ps(r, x, isnan8(x));
}

// 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) for x < 0: e^-|x| never overflows, so tiny
// (denormal) results for very negative x keep their precision.
inline __m256 sigmoid8(__m256 x) {
  const __m256 one = set1(1.0f);
  __m256 e = exp8(_mm256_or_ps(x, set1(-0.0f)));
  __m256 inv = _mm256_div_ps(one, _mm256_add_ps(one, e));
  __m256 r = _mm256_blendv_ps(inv, _mm256_mul_ps(e, inv), x);  // blend on the sign bit of x
  return _mm256_blendv_ps(r, x, isnan8(x));
}

// e^x - 1: x + x^2 h(x) on [-1, 1] (h a fit of (expm1(x)/x - 1)/x, written as fma(x, x h, x)
// so that the small correction rounds, not the sum), e^x - 1 outside. -0 stays -0.
inline __m256 expm1_8(__m256 x) {
  static constexpr float kH[] = {2.771233198e-07f, 2.812290404e-06f, 2.480437070e-05f, 1.983705006e-04f,
                                 1.388885896e-03f, 8.333344944e-03f, 4.166666791e-02f, 1.666666716e-01f,
                                 5.000000000e-01f};
  __m256 near = _mm256_fmadd_ps(x, _mm256_mul_ps(x, horner(x, kH)), x);
  __m256 far = _mm256_sub_ps(exp8(x), set1(1.0f));
  __m256 r = _mm256_blendv_ps(far, near, _mm256_cmp_ps(abs8(x), set1(1.0f), _CMP_LE_OQ));
  return _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ));
}

// log(1 + x) for x in [-1, 2^24] by Goldberg's trick: with w = 1 + x rounded, log(w) * x / (w - 1)
// cancels the rounding of w to first order (x itself where w == 1).
inline __m256 log1p_core8(__m256 x) {
  const __m256 one = set1(1.0f);
  __m256 w = _mm256_add_ps(one, x);
  __m256 d = _mm256_sub_ps(w, one);
  __m256 r = _mm256_mul_ps(log8(w), _mm256_div_ps(x, d));
  return _mm256_blendv_ps(r, x, _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_EQ_OQ));
}

inline __m256 log1p8(__m256 x) {
  __m256 r = _mm256_blendv_ps(log1p_core8(x), log8(x), _mm256_cmp_ps(x, set1(16777216.0f), _CMP_GT_OQ));
  return _mm256_blendv_ps(r, x, isnan8(x));
}

// erf(z) for |z| < 0.5 as z + z * q(z^2): the fit of erf(z)/z - 1 is small, so the final FMA
// rounds the result once.
inline __m256 erf_small8(__m256 z) {
  static constexpr float kErf[] = {4.718069453e-03f, -2.675721981e-02f, 1.128282323e-01f, -3.761260808e-01f,
                                   1.283791661e-01f};
  return _mm256_fmadd_ps(z, horner(_mm256_mul_ps(z, z), kErf), z);
}

// erfc(a) * e^(a^2) for a in [0.5, 10.6]: a polynomial in a - 1.25 below 2, s(1/a^2) / a above.
inline __m256 erfcx8(__m256 a) {
  static constexpr float kNear[] = {6.163193029e-05f, -1.922500087e-04f, 4.708501510e-04f, -1.308949199e-03f,
                                    3.553374903e-03f, -9.085784666e-03f, 2.201143838e-02f, -5.021785945e-02f,
                                    1.067955643e-01f, -2.088218927e-01f, 3.678229153e-01f};
  static constexpr float kFar[] = {2.971872330e+01f, -4.037434006e+01f, 2.523152542e+01f, -1.012373161e+01f,
                                   3.235957623e+00f, -1.036096931e+00f, 4.225477278e-01f, -2.820866704e-01f,
                                   5.641895533e-01f};
  __m256 near = horner(_mm256_sub_ps(a, set1(1.25f)), kNear);
  __m256 is_near = _mm256_cmp_ps(a, set1(2.0f), _CMP_LT_OQ);
  if (_mm256_movemask_ps(is_near) == 0xFF) return near;  // the usual case: skip two divisions
  __m256 u = _mm256_div_ps(set1(1.0f), _mm256_mul_ps(a, a));
  __m256 far = _mm256_div_ps(horner(u, kFar), a);
  return _mm256_blendv_ps(far, near, is_near);
}

// erfc(a) for a >= 0.5 as e^(-a^2) * erfcx(a), with a^2 = hi + lo split exactly by an FMA so
// that the rounding of a^2 (an error of |a^2| * 2^-24 in the exponent) does not reach the result.
// Inputs above 10.6 are clamped (their erfc underflows anyway); `a2` must be the exact square
// (hi, lo) of the clamped argument. Returns the parts of e^(-hi), lo, and q = erfcx(a) * (1 - lo)
// (e^-lo to first order), so erfc = times(e, q).
struct Erfc8 {
  Exp8Parts e;
  __m256 q, lo;
};
inline Erfc8 erfc8_parts(__m256 a, __m256 hi, __m256 lo) {
  Erfc8 r;
  r.e = exp8_parts(_mm256_sub_ps(_mm256_setzero_ps(), hi));
  __m256 q = erfcx8(_mm256_max_ps(a, set1(0.5f)));
  r.q = _mm256_fnmadd_ps(q, lo, q);
  r.lo = lo;
  return r;
}

inline __m256 erf8(__m256 x) {
  __m256 a = _mm256_min_ps(abs8(x), set1(10.5f));
  __m256 hi = _mm256_mul_ps(a, a);
  Erfc8 c = erfc8_parts(a, hi, _mm256_fmsub_ps(a, a, hi));
  __m256 large = _mm256_sub_ps(set1(1.0f), times(c.e, c.q));
  large = _mm256_or_ps(large, _mm256_and_ps(set1(-0.0f), x));
  __m256 r = _mm256_blendv_ps(large, erf_small8(x), _mm256_cmp_ps(abs8(x), set1(0.5f), _CMP_LT_OQ));
  return _mm256_blendv_ps(r, x, isnan8(x));
}

// Applies f to 8 floats at a time; the tail goes through the same vector code via a buffer.
template <class F>
inline void map8(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    _mm256_storeu_ps(buf, f(_mm256_loadu_ps(buf)));
    std::memcpy(y + i, buf, (n - i) * sizeof(float));
  }
}

// gx = f(g, x) on 8 floats at a time, the tail through a buffer as in map8.
template <class F>
inline void map8_backward(const float* g, const float* x, float* gx, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(gx + i, f(_mm256_loadu_ps(g + i), _mm256_loadu_ps(x + i)));
  if (i < n) {
    float bg[8] = {0, 0, 0, 0, 0, 0, 0, 0}, bx[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(bg, g + i, (n - i) * sizeof(float));
    std::memcpy(bx, x + i, (n - i) * sizeof(float));
    _mm256_storeu_ps(bg, f(_mm256_loadu_ps(bg), _mm256_loadu_ps(bx)));
    std::memcpy(gx + i, bg, (n - i) * sizeof(float));
  }
}

}  // namespace
}  // namespace nc::kernels::NC_ISA
#endif
