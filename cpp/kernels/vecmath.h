#pragma once
// Vectorised float32 math on contiguous buffers (y may alias x). The AVX2 build uses range
// reduction + minimax polynomials (a few ULP, handling +-inf, NaN and denormals; see
// vecmath_avx2.h); the generic build calls the C library. Every element is computed by the same
// code whatever its position, so results never depend on how a range was split between threads.
#include <cstdint>

namespace nc::kernels {

struct VecMathKernels {
  void (*exp_f32)(const float* x, float* y, int64_t n);
  void (*log_f32)(const float* x, float* y, int64_t n);
  void (*tanh_f32)(const float* x, float* y, int64_t n);
  void (*sigmoid_f32)(const float* x, float* y, int64_t n);
  void (*erf_f32)(const float* x, float* y, int64_t n);
  void (*expm1_f32)(const float* x, float* y, int64_t n);
  void (*log1p_f32)(const float* x, float* y, int64_t n);
};

namespace generic { extern const VecMathKernels vecmath_table; }
namespace avx2 { extern const VecMathKernels vecmath_table; }

const VecMathKernels& vecmath();

}  // namespace nc::kernels
