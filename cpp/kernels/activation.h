#pragma once
// Float32 activation functions on contiguous buffers: forward y = f(x) and backward
// gx = g * f'(x) from the input x (y may alias x, gx may alias g). The generic build evaluates
// the scalar reference formulas of kernels/activation_formulas.h (so it matches the portable op
// path bit for bit); the AVX2 build approximates them within a few ULP with the polynomials of
// vecmath_avx2.h (figures in tests/test_vecmath.py). Every element is computed the same way
// wherever a range starts, so splitting between threads never changes a result.
#include <cstdint>

namespace nc::kernels {

// p0 and p1 are the function's parameters: ELU (alpha, scale), LeakyReLU (slope, -),
// Softplus (beta, threshold), Hardtanh (min_val, max_val); unused by the others.
enum class Activation : int { Gelu, GeluTanh, Silu, Mish, Elu, LeakyRelu, Softplus, Hardtanh, Count };

struct ActivationFns {
  void (*forward)(const float* x, float* y, int64_t n, double p0, double p1);
  void (*backward)(const float* g, const float* x, float* gx, int64_t n, double p0, double p1);
};

struct ActivationKernels {
  ActivationFns fns[static_cast<int>(Activation::Count)];
  const ActivationFns& operator[](Activation a) const { return fns[static_cast<int>(a)]; }
};

namespace generic { extern const ActivationKernels activation_table; }
namespace avx2 { extern const ActivationKernels activation_table; }

const ActivationKernels& activation();

}  // namespace nc::kernels
