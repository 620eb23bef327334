#pragma once
// Float32 activation functions on contiguous buffers: forward y = f(x) and backward
// gx = g * f'(x) from the input x (y may alias x, gx may alias g). The generic build evaluates
// the scalar reference formulas of kernels/activation_formulas.h (so it matches the portable op
// path bit for bit); the AVX2 build approximates them within a few ULP with the polynomials of
// vecmath_avx2.h (figures in tests/test_vecmath.py), and the avx512 build runs the same code on
// 16 lanes (vecmath_avx512.h), giving the avx2 build's floats. Every element is computed the same way
// wherever a range starts, so splitting between threads never changes a result.
#include <cstdint>

#include "kernels/isa_list.h"

namespace nc::kernels {

// p0 and p1 are the function's parameters: ELU (alpha, scale), LeakyReLU (slope, -),
// Softplus (beta, threshold), Hardtanh (min_val, max_val); unused by the others.
enum class Activation : int { Gelu, GeluTanh, Silu, Mish, Elu, LeakyRelu, Softplus, Hardtanh, Count };

template <class T>
struct ActivationPair {
  void (*forward)(const T* x, T* y, int64_t n, double p0, double p1);
  void (*backward)(const T* g, const T* x, T* gx, int64_t n, double p0, double p1);
};

// One pair per Activation, in the enum's order.
template <class T>
struct ActivationFns {
  ActivationPair<T> by_kind[static_cast<int>(Activation::Count)];
  const ActivationPair<T>& operator[](Activation a) const { return by_kind[static_cast<int>(a)]; }
};

// Float32 only (other dtypes use the scalar formulas of activation_formulas.h in the ops).
struct ActivationKernels {
  ActivationFns<float> f32;
};

NC_KERNEL_FAMILY(ActivationKernels, activation)

}  // namespace nc::kernels
