#pragma once
// AVX-512 math on 16 floats, for the avx512 build of the kernel files that need it (vecmath.cpp,
// activation.cpp, softmax.cpp, rnn.cpp, attention.cpp). The same range reductions, polynomials
// and operation order as the 8-lane functions of vecmath_avx2.h, lane for lane, so every element
// gets the very same float as in the avx2 build (and the ULP bounds of tests/test_vecmath.py hold
// unchanged); only the width and the mask registers (compares, blends, ragged tails) differ.
// Internal linkage (anonymous namespace) so that no inline symbol is shared between ISA builds.
//
// Uses only AVX-512 F/BW/DQ/VL intrinsics that SIMDe also implements (the emulated test build,
// kernels/avx512_emulate.h); conversions between float and double stay on 256-bit halves
// (SIMDe 0.8 has no _mm512_cvtps_pd), see the callers.
#include "kernels/isa.h"

#include <cmath>

#if NC_HAVE_AVX512
namespace nc::kernels::NC_ISA {
namespace {

inline __m512 set16(float v) { return _mm512_set1_ps(v); }
inline __m512 abs16(__m512 x) { return _mm512_andnot_ps(set16(-0.0f), x); }
inline __mmask16 isnan16(__m512 x) { return _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q); }
// Lanes whose sign bit is set (-0 and negative NaN included).
inline __mmask16 signbit16(__m512 x) { return _mm512_movepi32_mask(_mm512_castps_si512(x)); }
// The first n lanes, 0 <= n <= 16.
inline __mmask16 first_lanes(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

// c[0] * x^(N-1) + ... + c[N-1] by Horner's rule with FMA.
template <int N>
inline __m512 horner16(__m512 x, const float (&c)[N]) {
  __m512 p = set16(c[0]);
  for (int i = 1; i < N; ++i) p = _mm512_fmadd_ps(p, x, set16(c[i]));
  return p;
}

// 2^n for integer-valued float n in [-252, 254], as two factors (see scale_by_pow2 in vecmath_avx2.h).
inline __m512 scale_by_pow2_16(__m512 y, __m512 n) {
  __m512i ni = _mm512_cvtps_epi32(n);
  __m512i n1 = _mm512_srai_epi32(ni, 1);
  __m512i n2 = _mm512_sub_epi32(ni, n1);
  const __m512i bias = _mm512_set1_epi32(127);
  __m512 p1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
  __m512 p2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
  return _mm512_mul_ps(_mm512_mul_ps(y, p1), p2);
}

// e^x = p * 2^n for finite x: p in [0.7, 1.42], n = round(x / ln 2) (as exp8_reduced).
inline __m512 exp16_reduced(__m512 x, __m512& n) {
  n = _mm512_roundscale_ps(_mm512_mul_ps(x, set16(1.44269504088896341f)),
                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, set16(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, set16(-2.12194440e-4f), r);
  __m512 p = set16(1.9875691500E-4f);
  p = _mm512_fmadd_ps(p, r, set16(1.3981999507E-3f));
  p = _mm512_fmadd_ps(p, r, set16(8.3334519073E-3f));
  p = _mm512_fmadd_ps(p, r, set16(4.1665795894E-2f));
  p = _mm512_fmadd_ps(p, r, set16(1.6666665459E-1f));
  p = _mm512_fmadd_ps(p, r, set16(5.0000001201E-1f));
  return _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, set16(1.0f)));
}

inline __m512 exp16(__m512 x) {
  const __m512 hi = set16(88.72283905206835f), lo = set16(-103.97208f);
  __mmask16 over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
  __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  __m512 n;
  __m512 p = exp16_reduced(_mm512_min_ps(_mm512_max_ps(x, lo), hi), n);
  // p * 2^n in one instruction: scale_by_pow2_16's two factors give the same float (the first
  // product is exact, the second rounds once, as scalef does), so avx2 still agrees bit for bit.
  __m512 y = _mm512_scalef_ps(p, n);
  y = _mm512_mask_mov_ps(y, over, set16(INFINITY));
  y = _mm512_mask_mov_ps(y, under, _mm512_setzero_ps());
  return _mm512_mask_mov_ps(y, isnan16(x), x);
}

// e^x kept as p * 2^n for products m * e^x whose value is tiny (see Exp8Parts).
struct Exp16Parts {
  __m512 p, n;
};
inline Exp16Parts exp16_parts(__m512 x) {
  Exp16Parts e;
  e.p = exp16_reduced(_mm512_min_ps(_mm512_max_ps(x, set16(-120.0f)), set16(88.72283905206835f)), e.n);
  return e;
}
inline __m512 times(const Exp16Parts& e, __m512 m) { return scale_by_pow2_16(_mm512_mul_ps(e.p, m), e.n); }
inline __m512 value(const Exp16Parts& e) { return scale_by_pow2_16(e.p, e.n); }

inline __m512 log16(__m512 x) {
  const __m512 one = set16(1.0f);
  const __m512 zero = _mm512_setzero_ps();
  __mmask16 nan_mask = isnan16(x) | _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ);
  __mmask16 zero_mask = _mm512_cmp_ps_mask(x, zero, _CMP_EQ_OQ);
  __mmask16 inf_mask = _mm512_cmp_ps_mask(x, set16(INFINITY), _CMP_EQ_OQ);
  // Denormals: scale into the normal range and correct the exponent by -23.
  __mmask16 denorm = _mm512_cmp_ps_mask(x, set16(1.17549435e-38f), _CMP_LT_OQ);
  __m512 xs = _mm512_mask_mul_ps(x, denorm, x, set16(8388608.0f));
  __m512i bits = _mm512_castps_si512(xs);
  __m512i expo = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(126));
  __m512 e = _mm512_cvtepi32_ps(expo);
  e = _mm512_mask_sub_ps(e, denorm, e, set16(23.0f));
  // Mantissa in [0.5, 1).
  __m512 m = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x807FFFFF)),
                                                 _mm512_set1_epi32(0x3F000000)));
  __mmask16 small = _mm512_cmp_ps_mask(m, set16(0.707106781186547524f), _CMP_LT_OQ);
  e = _mm512_mask_sub_ps(e, small, e, one);
  m = _mm512_sub_ps(_mm512_mask_add_ps(m, small, m, m), one);
  __m512 z = _mm512_mul_ps(m, m);
  static constexpr float kLog[] = {7.0376836292E-2f, -1.1514610310E-1f, 1.1676998740E-1f, -1.2420140846E-1f,
                                   1.4249322787E-1f, -1.6668057665E-1f, 2.0000714765E-1f, -2.4999993993E-1f,
                                   3.3333331174E-1f};
  __m512 y = horner16(m, kLog);
  y = _mm512_mul_ps(_mm512_mul_ps(y, m), z);
  y = _mm512_fmadd_ps(e, set16(-2.12194440e-4f), y);
  y = _mm512_fnmadd_ps(z, set16(0.5f), y);
  __m512 r = _mm512_add_ps(m, y);
  r = _mm512_fmadd_ps(e, set16(0.693359375f), r);
  r = _mm512_mask_mov_ps(r, zero_mask, set16(-INFINITY));
  r = _mm512_mask_mov_ps(r, inf_mask, set16(INFINITY));
  return _mm512_mask_mov_ps(r, nan_mask, set16(NAN));
}

inline __m512 tanh16(__m512 x) {
  const __m512 sign = set16(-0.0f);
  __m512 ax = _mm512_andnot_ps(sign, x);
  __m512 z = _mm512_mul_ps(x, x);
  static constexpr float kTanh[] = {-5.70498872745E-3f, 2.06390887954E-2f, -5.37397155531E-2f, 1.33314422036E-1f,
                                    -3.33332819422E-1f};
  __m512 p = horner16(z, kTanh);
  __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
  __m512 e = exp16(_mm512_add_ps(ax, ax));
  __m512 large = _mm512_sub_ps(set16(1.0f), _mm512_div_ps(set16(2.0f), _mm512_add_ps(e, set16(1.0f))));
  large = _mm512_or_ps(large, _mm512_and_ps(sign, x));
  __m512 r = _mm512_mask_mov_ps(large, _mm512_cmp_ps_mask(ax, set16(0.625f), _CMP_LT_OQ), small);
  return _mm512_mask_mov_ps(r, isnan16(x), x);
}

// 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) for x < 0 (see sigmoid8).
inline __m512 sigmoid16(__m512 x) {
  const __m512 one = set16(1.0f);
  __m512 e = exp16(_mm512_or_ps(x, set16(-0.0f)));
  __m512 inv = _mm512_div_ps(one, _mm512_add_ps(one, e));
  __m512 r = _mm512_mask_mov_ps(inv, signbit16(x), _mm512_mul_ps(e, inv));
  return _mm512_mask_mov_ps(r, isnan16(x), x);
}

// e^x - 1 (see expm1_8).
inline __m512 expm1_16(__m512 x) {
  static constexpr float kH[] = {2.771233198e-07f, 2.812290404e-06f, 2.480437070e-05f, 1.983705006e-04f,
                                 1.388885896e-03f, 8.333344944e-03f, 4.166666791e-02f, 1.666666716e-01f,
                                 5.000000000e-01f};
  __m512 near = _mm512_fmadd_ps(x, _mm512_mul_ps(x, horner16(x, kH)), x);
  __m512 far = _mm512_sub_ps(exp16(x), set16(1.0f));
  __m512 r = _mm512_mask_mov_ps(far, _mm512_cmp_ps_mask(abs16(x), set16(1.0f), _CMP_LE_OQ), near);
  return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_EQ_OQ), x);
}

// log(1 + x) for x in [-1, 2^24] by Goldberg's trick (see log1p_core8).
inline __m512 log1p_core16(__m512 x) {
  const __m512 one = set16(1.0f);
  __m512 w = _mm512_add_ps(one, x);
  __m512 d = _mm512_sub_ps(w, one);
  __m512 r = _mm512_mul_ps(log16(w), _mm512_div_ps(x, d));
  return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_EQ_OQ), x);
}

inline __m512 log1p16(__m512 x) {
  __m512 r = _mm512_mask_mov_ps(log1p_core16(x), _mm512_cmp_ps_mask(x, set16(16777216.0f), _CMP_GT_OQ), log16(x));
  return _mm512_mask_mov_ps(r, isnan16(x), x);
}

// erf(z) for |z| < 0.5 as z + z * q(z^2) (see erf_small8).
inline __m512 erf_small16(__m512 z) {
  static constexpr float kErf[] = {4.718069453e-03f, -2.675721981e-02f, 1.128282323e-01f, -3.761260808e-01f,
                                   1.283791661e-01f};
  return _mm512_fmadd_ps(z, horner16(_mm512_mul_ps(z, z), kErf), z);
}

// erfc(a) * e^(a^2) for a in [0.5, 10.6] (see erfcx8).
inline __m512 erfcx16(__m512 a) {
  static constexpr float kNear[] = {6.163193029e-05f, -1.922500087e-04f, 4.708501510e-04f, -1.308949199e-03f,
                                    3.553374903e-03f, -9.085784666e-03f, 2.201143838e-02f, -5.021785945e-02f,
                                    1.067955643e-01f, -2.088218927e-01f, 3.678229153e-01f};
  static constexpr float kFar[] = {2.971872330e+01f, -4.037434006e+01f, 2.523152542e+01f, -1.012373161e+01f,
                                   3.235957623e+00f, -1.036096931e+00f, 4.225477278e-01f, -2.820866704e-01f,
                                   5.641895533e-01f};
  __m512 near = horner16(_mm512_sub_ps(a, set16(1.25f)), kNear);
  __mmask16 is_near = _mm512_cmp_ps_mask(a, set16(2.0f), _CMP_LT_OQ);
  if (is_near == 0xFFFF) return near;  // the usual case: skip two divisions (same lanes either way)
  __m512 u = _mm512_div_ps(set16(1.0f), _mm512_mul_ps(a, a));
  __m512 far = _mm512_div_ps(horner16(u, kFar), a);
  return _mm512_mask_mov_ps(far, is_near, near);
}

// erfc(a) for a >= 0.5 as e^(-a^2) * erfcx(a) from the exact square a^2 = hi + lo (see Erfc8).
struct Erfc16 {
  Exp16Parts e;
  __m512 q, lo;
};
inline Erfc16 erfc16_parts(__m512 a, __m512 hi, __m512 lo) {
  Erfc16 r;
  r.e = exp16_parts(_mm512_sub_ps(_mm512_setzero_ps(), hi));
  __m512 q = erfcx16(_mm512_max_ps(a, set16(0.5f)));
  r.q = _mm512_fnmadd_ps(q, lo, q);
  r.lo = lo;
  return r;
}

inline __m512 erf16(__m512 x) {
  __m512 a = _mm512_min_ps(abs16(x), set16(10.5f));
  __m512 hi = _mm512_mul_ps(a, a);
  Erfc16 c = erfc16_parts(a, hi, _mm512_fmsub_ps(a, a, hi));
  __m512 large = _mm512_sub_ps(set16(1.0f), times(c.e, c.q));
  large = _mm512_or_ps(large, _mm512_and_ps(set16(-0.0f), x));
  __m512 r = _mm512_mask_mov_ps(large, _mm512_cmp_ps_mask(abs16(x), set16(0.5f), _CMP_LT_OQ), erf_small16(x));
  return _mm512_mask_mov_ps(r, isnan16(x), x);
}

// Applies f to 16 floats at a time; the last n % 16 go through the same vector code under a
// mask (masked-off lanes read as 0 and are not written).
template <class F>
inline void map16(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 k = first_lanes(n - i);
    _mm512_mask_storeu_ps(y + i, k, f(_mm512_maskz_loadu_ps(k, x + i)));
  }
}

// gx = f(g, x) on 16 floats at a time, the tail under a mask as in map16.
template <class F>
inline void map16_backward(const float* g, const float* x, float* gx, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(gx + i, f(_mm512_loadu_ps(g + i), _mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 k = first_lanes(n - i);
    _mm512_mask_storeu_ps(gx + i, k, f(_mm512_maskz_loadu_ps(k, g + i), _mm512_maskz_loadu_ps(k, x + i)));
  }
}

}  // namespace
}  // namespace nc::kernels::NC_ISA
#endif
