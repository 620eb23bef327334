#pragma once
// Vectorised float32 math on contiguous buffers (y may alias x). The AVX2 build uses range
// reduction + minimax polynomials (a few ULP, handling +-inf, NaN and denormals; see
// vecmath_avx2.h); the avx512 build runs the same polynomials on 16 lanes (vecmath_avx512.h),
// bit-identical to avx2 element for element; the generic build calls the C library. Every
// element is computed by the same code whatever its position, so results never depend on how a
// range was split between threads.
#include <cstdint>

#include "kernels/isa_list.h"

namespace nc::kernels {

template <class T>
struct VecMathFns {
  void (*exp)(const T* x, T* y, int64_t n);
  void (*log)(const T* x, T* y, int64_t n);
  void (*tanh)(const T* x, T* y, int64_t n);
  void (*sigmoid)(const T* x, T* y, int64_t n);
  void (*erf)(const T* x, T* y, int64_t n);
  void (*expm1)(const T* x, T* y, int64_t n);
  void (*log1p)(const T* x, T* y, int64_t n);
};

// Float32 only (float64 math goes through the C library in the ops).
struct VecMathKernels {
  VecMathFns<float> f32;
};

NC_KERNEL_FAMILY(VecMathKernels, vecmath)

}  // namespace nc::kernels
