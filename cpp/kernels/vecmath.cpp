#include "kernels/vecmath.h"

#include <cmath>

#include "kernels/isa.h"
#include "kernels/vecmath_avx2.h"
#include "kernels/vecmath_avx512.h"

namespace nc::kernels::NC_ISA {
namespace {

#if NC_HAVE_AVX512

void exp_f32(const float* x, float* y, int64_t n) { map16(x, y, n, exp16); }
void log_f32(const float* x, float* y, int64_t n) { map16(x, y, n, log16); }
void tanh_f32(const float* x, float* y, int64_t n) { map16(x, y, n, tanh16); }
void sigmoid_f32(const float* x, float* y, int64_t n) { map16(x, y, n, sigmoid16); }
void erf_f32(const float* x, float* y, int64_t n) { map16(x, y, n, erf16); }
void expm1_f32(const float* x, float* y, int64_t n) { map16(x, y, n, expm1_16); }
void log1p_f32(const float* x, float* y, int64_t n) { map16(x, y, n, log1p16); }

#elif NC_HAVE_AVX2

void exp_f32(const float* x, float* y, int64_t n) { map8(x, y, n, exp8); }
void log_f32(const float* x, float* y, int64_t n) { map8(x, y, n, log8); }
void tanh_f32(const float* x, float* y, int64_t n) { map8(x, y, n, tanh8); }
void sigmoid_f32(const float* x, float* y, int64_t n) { map8(x, y, n, sigmoid8); }
void erf_f32(const float* x, float* y, int64_t n) { map8(x, y, n, erf8); }
void expm1_f32(const float* x, float* y, int64_t n) { map8(x, y, n, expm1_8); }
void log1p_f32(const float* x, float* y, int64_t n) { map8(x, y, n, log1p8); }

#else

template <float (*F)(float)>
void map(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = F(x[i]);
}

float sigmoid1(float v) {
  const float e = std::exp(-std::fabs(v));
  return v >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

float exp1(float v) { return std::exp(v); }
float log1(float v) { return std::log(v); }
float tanh1(float v) { return std::tanh(v); }
float erf1(float v) { return std::erf(v); }
float expm1_1(float v) { return std::expm1(v); }
float log1p_1(float v) { return std::log1p(v); }

constexpr auto exp_f32 = map<exp1>;
constexpr auto log_f32 = map<log1>;
constexpr auto tanh_f32 = map<tanh1>;
constexpr auto sigmoid_f32 = map<sigmoid1>;
constexpr auto erf_f32 = map<erf1>;
constexpr auto expm1_f32 = map<expm1_1>;
constexpr auto log1p_f32 = map<log1p_1>;

#endif

}  // namespace

const VecMathKernels vecmath_table = {{exp_f32, log_f32, tanh_f32, sigmoid_f32, erf_f32, expm1_f32, log1p_f32}};

}  // namespace nc::kernels::NC_ISA
