#pragma once
// Scalar reference formulas of the activation functions and their derivatives: the portable
// op path (ops/activation.cpp: float64, strided and non-float32 inputs) and the generic kernel
// build both use them, so those two agree bit for bit; the AVX2 kernels (kernels/activation.cpp)
// approximate them within a few ULP. The transcendental ones compute in double and round once,
// and are written in forms that stay accurate in the tails (x / (1 + e^-x) rather than
// x * (1 + tanh(..)) / 2, erfc rather than 1 + erf), so float32 results are close to correctly
// rounded everywhere. Special values follow PyTorch: f(-inf) is NaN where PyTorch's formula gives
// -inf * 0 (GELU, SiLU, Mish), and so are the derivatives of those at +-inf.
//
// Internal linkage (anonymous namespace): this header is included by ops and by the generic
// kernel build, and no instance of it may be merged with code compiled for another ISA.
#include <algorithm>
#include <cmath>

namespace nc::kernels::formulas {
namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kGeluCoef = 0.044715;

inline double sigmoid(double b) {  // e^-|b| never overflows
  const double e = std::exp(-std::fabs(b));
  return b >= 0 ? 1 / (1 + e) : e / (1 + e);
}

// GELU, exact: x * Phi(x) = x erfc(-x / sqrt 2) / 2.
template <class T> T gelu(T x) {
  const double v = x;
  return T(0.5 * v * std::erfc(-v * kInvSqrt2));
}
template <class T> T gelu_grad(T x) {
  const double v = x;
  return T(0.5 * std::erfc(-v * kInvSqrt2) + v * kInvSqrt2Pi * std::exp(-0.5 * v * v));
}

// GELU, tanh approximation: x (1 + tanh u) / 2 = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
template <class T> T gelu_tanh(T x) {
  const double v = x, u = kSqrt2OverPi * (v + kGeluCoef * v * v * v);
  return T(v / (1 + std::exp(-2 * u)));
}
template <class T> T gelu_tanh_grad(T x) {
  const double v = x, u = kSqrt2OverPi * (v + kGeluCoef * v * v * v);
  const double s = 1 / (1 + std::exp(-2 * u)), du = kSqrt2OverPi * (1 + 3 * kGeluCoef * v * v);
  return T(s + 2 * v * s * (1 - s) * du);  // (1 + tanh u) / 2 + x (1 - tanh^2 u) u' / 2
}

template <class T> T silu(T x) {
  const double v = x;
  return T(v / (1 + std::exp(-v)));
}
template <class T> T silu_grad(T x) {
  const double v = x, s = 1 / (1 + std::exp(-v));
  return T(s * (1 + v * (1 - s)));
}

template <class T> T mish(T x) {
  const double v = x;
  return T(v * std::tanh(std::log1p(std::exp(v))));
}
template <class T> T mish_grad(T x) {
  const double v = x, s = 1 / (1 + std::exp(-v)), t = std::tanh(std::log1p(std::exp(v)));
  return T(t + v * s * (1 - t * t));
}

// ELU and SELU: scale * (x > 0 ? x : alpha * (e^x - 1)).
template <class T> T elu(T x, double alpha, double scale) {
  const double v = x;
  return T(x > 0 ? scale * v : alpha * scale * std::expm1(v));
}
template <class T> T elu_grad(T x, double alpha, double scale) {
  return T(x > 0 ? scale : alpha * scale * std::exp(double(x)));
}

// The threshold test is made on x * beta rounded to T, as PyTorch does.
template <class T> T softplus(T x, double beta, double threshold) {
  if (x * T(beta) > T(threshold)) return x;
  const double b = double(x) * beta;
  return T((std::max(b, 0.0) + std::log1p(std::exp(-std::fabs(b)))) / beta);
}
template <class T> T softplus_grad(T x, double beta, double threshold) {
  return x * T(beta) > T(threshold) ? T(1) : T(sigmoid(double(x) * beta));
}

// Piecewise-linear ones compute in T, exactly as PyTorch.
template <class T> T leaky_relu(T x, double slope) { return x > 0 ? x : T(slope) * x; }
template <class T> T leaky_relu_grad(T x, double slope) { return x > 0 ? T(1) : T(slope); }

template <class T> T hardtanh(T x, double lo, double hi) { return x < T(lo) ? T(lo) : (x > T(hi) ? T(hi) : x); }
template <class T> T hardtanh_grad(T x, double lo, double hi) { return (x <= T(lo) || x >= T(hi)) ? T(0) : T(1); }

}  // namespace
}  // namespace nc::kernels::formulas
