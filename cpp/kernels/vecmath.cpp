#include "kernels/isa.h"
#include "kernels/vecmath.h"
#include "kernels/vecmath_avx2.h"

#include <cmath>
#include <cstring>

namespace nc::kernels::NC_ISA {
namespace {

#if NC_HAVE_AVX2

inline __m256 log8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 nan_mask = _mm256_or_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
  __m256 zero_mask = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ);
  __m256 inf_mask = _mm256_cmp_ps(x, _mm256_set1_ps(INFINITY), _CMP_EQ_OQ);
  // Denormals: scale into the normal range and correct the exponent by -23.
  __m256 denorm = _mm256_cmp_ps(x, _mm256_set1_ps(1.17549435e-38f), _CMP_LT_OQ);
  __m256 xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(8388608.0f)), denorm);
  __m256i bits = _mm256_castps_si256(xs);
  __m256i expo = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126));
  __m256 e = _mm256_cvtepi32_ps(expo);
  e = _mm256_sub_ps(e, _mm256_and_ps(denorm, _mm256_set1_ps(23.0f)));
  // Mantissa in [0.5, 1).
  __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x807FFFFF)),
                                                 _mm256_set1_epi32(0x3F000000)));
  __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
  e = _mm256_sub_ps(e, _mm256_and_ps(small, one));
  m = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(small, m)), one);
  __m256 z = _mm256_mul_ps(m, m);
  __m256 y = _mm256_set1_ps(7.0376836292E-2f);
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.1514610310E-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(1.1676998740E-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.2420140846E-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(1.4249322787E-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.6668057665E-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(2.0000714765E-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-2.4999993993E-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(3.3333331174E-1f));
  y = _mm256_mul_ps(_mm256_mul_ps(y, m), z);
  y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
  y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), y);
  __m256 r = _mm256_add_ps(m, y);
  r = _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), r);
  r = _mm256_blendv_ps(r, _mm256_set1_ps(-INFINITY), zero_mask);
  r = _mm256_blendv_ps(r, _mm256_set1_ps(INFINITY), inf_mask);
  return _mm256_blendv_ps(r, _mm256_set1_ps(NAN), nan_mask);
}

inline __m256 tanh8(__m256 x) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 ax = _mm256_andnot_ps(sign, x);
  // Small |x|: odd polynomial; else 1 - 2 / (exp(2|x|) + 1), with the sign put back.
  __m256 z = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(-5.70498872745E-3f);
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954E-2f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531E-2f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036E-1f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422E-1f));
  __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
  __m256 e = exp8(_mm256_add_ps(ax, ax));
  __m256 large = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                               _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
  large = _mm256_or_ps(large, _mm256_and_ps(sign, x));
  __m256 use_small = _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ);
  __m256 r = _mm256_blendv_ps(large, small, use_small);
  return _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) for x < 0: e^-|x| never overflows, so tiny
// (denormal) results for very negative x keep their precision.
inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 e = exp8(_mm256_or_ps(x, _mm256_set1_ps(-0.0f)));
  __m256 inv = _mm256_div_ps(one, _mm256_add_ps(one, e));
  __m256 r = _mm256_blendv_ps(inv, _mm256_mul_ps(e, inv), x);  // blend on the sign bit of x
  return _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
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

void exp_f32(const float* x, float* y, int64_t n) { map8(x, y, n, exp8); }
void log_f32(const float* x, float* y, int64_t n) { map8(x, y, n, log8); }
void tanh_f32(const float* x, float* y, int64_t n) { map8(x, y, n, tanh8); }
void sigmoid_f32(const float* x, float* y, int64_t n) { map8(x, y, n, sigmoid8); }

#else

void exp_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}
void log_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::log(x[i]);
}
void tanh_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}
void sigmoid_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp(-std::fabs(x[i]));
    y[i] = x[i] >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
  }
}

#endif

}  // namespace

const VecMathKernels vecmath_table = {exp_f32, log_f32, tanh_f32, sigmoid_f32};

}  // namespace nc::kernels::NC_ISA
