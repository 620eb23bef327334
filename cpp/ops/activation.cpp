#include "ops/activation.h"

#include <cmath>

#include "core/random.h"
#include "kernels/activation.h"
#include "kernels/activation_formulas.h"
#include "kernels/elementwise.h"
#include "ops/creation.h"
#include "ops/math.h"
#include "ops/pointwise.h"

namespace nc {

namespace {
Tensor scalar_like(double v, const Tensor& t) { return scalar_tensor(Scalar(v), t.dtype()); }
Tensor step(const Tensor& x, Compare op, double at) {  // (x op at) as 0/1 of x's dtype
  return to_dtype(compare(op, x, scalar_like(at, x)), x.dtype());
}
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;
using kernels::formulas::kInvSqrt2;
using kernels::formulas::kInvSqrt2Pi;
using kernels::formulas::kSqrt2OverPi;
}  // namespace

Tensor relu(const Tensor& x) {
  if (!is_floating(x.dtype())) return maximum(x, zeros({}, x.dtype()));
  return pointwise("relu", x, [](auto v) { return (v > 0 || v != v) ? v : decltype(v)(0); },  // NaN passes
                   [](auto, auto y) { return decltype(y)(!(y <= 0)); },  // the kernels use y <= 0 ? 0 : g
                   [](const Tensor& x) { return step(x, Compare::Gt, 0.0); },
                   {kernels::elementwise().f32.relu, kernels::elementwise().f64.relu,
                    kernels::elementwise().f32.relu_backward, kernels::elementwise().f64.relu_backward});
}

namespace {
namespace F = kernels::formulas;

// The float32 kernels of one activation with its parameters bound.
PointwiseKernels activation_kernels(kernels::Activation a, double p0 = 0, double p1 = 0) {
  const kernels::ActivationPair<float> k = kernels::activation().f32[a];
  return {[f = k.forward, p0, p1](const float* x, float* y, int64_t n) { f(x, y, n, p0, p1); }, nullptr, nullptr,
          nullptr,
          [f = k.backward, p0, p1](const float* g, const float* x, float* gx, int64_t n) { f(g, x, gx, n, p0, p1); }};
}

// ELU and SELU: scale * (x > 0 ? x : alpha * (e^x - 1)).
Tensor elu_scaled(const char* name, const Tensor& x, double alpha, double scale) {
  return pointwise(name, x, [alpha, scale](auto v) { return F::elu(v, alpha, scale); },
                   [alpha, scale](auto v, auto) { return F::elu_grad(v, alpha, scale); },
                   [alpha, scale](const Tensor& x) {
                     Tensor pos = step(x, Compare::Gt, 0.0);
                     Tensor neg_part = mul(scalar_like(alpha * scale, x), exp(x));
                     return add(mul(pos, scalar_like(scale, x)), mul(sub(scalar_like(1.0, x), pos), neg_part));
                   },
                   activation_kernels(kernels::Activation::Elu, alpha, scale));
}

}  // namespace

Tensor leaky_relu(const Tensor& x, double slope) {
  return pointwise("leaky_relu", x, [slope](auto v) { return F::leaky_relu(v, slope); },
                   [slope](auto v, auto) { return F::leaky_relu_grad(v, slope); },
                   [slope](const Tensor& x) {
                     Tensor pos = step(x, Compare::Gt, 0.0);
                     return add(pos, mul(sub(scalar_like(1.0, x), pos), scalar_like(slope, x)));
                   },
                   activation_kernels(kernels::Activation::LeakyRelu, slope));
}

Tensor elu(const Tensor& x, double alpha) { return elu_scaled("elu", x, alpha, 1.0); }

Tensor selu(const Tensor& x) { return elu_scaled("selu", x, kSeluAlpha, kSeluScale); }

Tensor gelu(const Tensor& x, const std::string& approximate) {
  if (approximate == "tanh") {
    return pointwise("gelu", x, [](auto v) { return F::gelu_tanh(v); }, [](auto v, auto) { return F::gelu_tanh_grad(v); },
                     [](const Tensor& x) {
                       Tensor x2 = mul(x, x);
                       Tensor inner = mul(scalar_like(kSqrt2OverPi, x), add(x, mul(scalar_like(0.044715, x), mul(x2, x))));
                       Tensor t = tanh(inner);
                       Tensor dinner = mul(scalar_like(kSqrt2OverPi, x), add(scalar_like(1.0, x), mul(scalar_like(3 * 0.044715, x), x2)));
                       Tensor half = scalar_like(0.5, x);
                       return add(mul(half, add(scalar_like(1.0, x), t)),
                                  mul(mul(half, x), mul(sub(scalar_like(1.0, x), mul(t, t)), dinner)));
                     },
                     activation_kernels(kernels::Activation::GeluTanh));
  }
  NC_CHECK(approximate == "none", ValueError, "[gelu] approximate must be 'none' or 'tanh', got '", approximate, "'");
  return pointwise("gelu", x, [](auto v) { return F::gelu(v); }, [](auto v, auto) { return F::gelu_grad(v); },
                   [](const Tensor& x) {
                     Tensor cdf = mul(scalar_like(0.5, x), add(scalar_like(1.0, x), erf(mul(x, scalar_like(kInvSqrt2, x)))));
                     Tensor pdf = mul(scalar_like(kInvSqrt2Pi, x), exp(mul(scalar_like(-0.5, x), mul(x, x))));
                     return add(cdf, mul(x, pdf));
                   },
                   activation_kernels(kernels::Activation::Gelu));
}

Tensor silu(const Tensor& x) {
  return pointwise("silu", x, [](auto v) { return F::silu(v); }, [](auto v, auto) { return F::silu_grad(v); },
                   [](const Tensor& x) {
                     Tensor s = sigmoid(x);
                     return mul(s, add(scalar_like(1.0, x), mul(x, sub(scalar_like(1.0, x), s))));
                   },
                   activation_kernels(kernels::Activation::Silu));
}

Tensor mish(const Tensor& x) {
  return pointwise("mish", x, [](auto v) { return F::mish(v); }, [](auto v, auto) { return F::mish_grad(v); },
                   [](const Tensor& x) {
                     // tanh(softplus(x)) + x sigmoid(x) (1 - tanh^2(softplus(x)))
                     Tensor t = tanh(softplus(x, 1.0, 20.0));
                     return add(t, mul(mul(x, sigmoid(x)), sub(scalar_like(1.0, x), mul(t, t))));
                   },
                   activation_kernels(kernels::Activation::Mish));
}

Tensor softplus(const Tensor& x, double beta, double threshold) {
  return pointwise("softplus", x, [beta, threshold](auto v) { return F::softplus(v, beta, threshold); },
                   [beta, threshold](auto v, auto) { return F::softplus_grad(v, beta, threshold); },
                   [beta, threshold](const Tensor& x) {
                     Tensor bx = mul(x, scalar_like(beta, x));
                     return where(compare(Compare::Gt, bx, scalar_like(threshold, x)), scalar_like(1.0, x), sigmoid(bx));
                   },
                   activation_kernels(kernels::Activation::Softplus, beta, threshold));
}

Tensor hardtanh(const Tensor& x, double lo, double hi) {
  NC_CHECK(lo <= hi, ValueError, "[hardtanh] min_val (", lo, ") must be at most max_val (", hi, ")");
  return pointwise("hardtanh", x, [lo, hi](auto v) { return F::hardtanh(v, lo, hi); },
                   [lo, hi](auto v, auto) { return F::hardtanh_grad(v, lo, hi); },
                   [lo, hi](const Tensor& x) {
                     return mul(step(x, Compare::Gt, lo), step(x, Compare::Lt, hi));
                   },
                   activation_kernels(kernels::Activation::Hardtanh, lo, hi));
}

Tensor dropout(const Tensor& x, double p, bool training) {
  NC_CHECK(p >= 0.0 && p <= 1.0, ValueError, "[dropout] p must be in [0, 1], got ", p);
  if (!training || p == 0.0) return x;
  NC_CHECK(is_floating(x.dtype()), TypeError, "[dropout] expected a floating-point tensor, got ", dtype_name(x.dtype()));
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  bernoulli_scaled_(mask, p);
  Tensor out;
  {
    NoGradGuard no_grad;
    out = mul(x, mask);
  }
  if (needs_history({x})) {
    set_history("dropout", {x}, {out}, [mask](const TensorList& g, const std::vector<bool>&) {
      return TensorList{mul(g[0], mask)};
    });
  }
  return out;
}

}  // namespace nc
