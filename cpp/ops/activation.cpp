#include "ops/activation.h"

#include <cmath>

#include "core/random.h"
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
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kInvSqrt2 = 0.7071067811865476;
constexpr double kInvSqrt2Pi = 0.3989422804014327;
}  // namespace

Tensor relu(const Tensor& x) {
  if (!is_floating(x.dtype())) return maximum(x, zeros({}, x.dtype()));
  return pointwise("relu", x, [](auto v) { return (v > 0 || v != v) ? v : decltype(v)(0); },  // NaN passes
                   [](auto, auto y) { return decltype(y)(!(y <= 0)); },  // the kernels use y <= 0 ? 0 : g
                   [](const Tensor& x) { return step(x, Compare::Gt, 0.0); },
                   {kernels::elementwise().f32.relu, kernels::elementwise().f64.relu,
                    kernels::elementwise().f32.relu_backward, kernels::elementwise().f64.relu_backward});
}

Tensor leaky_relu(const Tensor& x, double slope) {
  return pointwise("leaky_relu", x, [slope](auto v) { return v > 0 ? v : decltype(v)(slope) * v; },
                   [slope](auto v, auto) { return v > 0 ? decltype(v)(1) : decltype(v)(slope); },
                   [slope](const Tensor& x) {
                     Tensor pos = step(x, Compare::Gt, 0.0);
                     return add(pos, mul(sub(scalar_like(1.0, x), pos), scalar_like(slope, x)));
                   });
}

Tensor elu(const Tensor& x, double alpha) {
  return pointwise("elu", x, [alpha](auto v) { return v > 0 ? v : decltype(v)(alpha) * std::expm1(v); },
                   [alpha](auto v, auto) { return v > 0 ? decltype(v)(1) : decltype(v)(alpha) * std::exp(v); },
                   [alpha](const Tensor& x) {
                     Tensor pos = step(x, Compare::Gt, 0.0);
                     Tensor neg_part = mul(scalar_like(alpha, x), exp(x));
                     return add(pos, mul(sub(scalar_like(1.0, x), pos), neg_part));
                   });
}

Tensor selu(const Tensor& x) {
  return pointwise("selu", x,
                   [](auto v) {
                     using T = decltype(v);
                     return T(kSeluScale) * (v > 0 ? v : T(kSeluAlpha) * std::expm1(v));
                   },
                   [](auto v, auto) {
                     using T = decltype(v);
                     return v > 0 ? T(kSeluScale) : T(kSeluScale * kSeluAlpha) * std::exp(v);
                   },
                   [](const Tensor& x) {
                     Tensor pos = step(x, Compare::Gt, 0.0);
                     Tensor neg_part = mul(scalar_like(kSeluScale * kSeluAlpha, x), exp(x));
                     return add(mul(pos, scalar_like(kSeluScale, x)), mul(sub(scalar_like(1.0, x), pos), neg_part));
                   });
}

Tensor gelu(const Tensor& x, const std::string& approximate) {
  if (approximate == "tanh") {
    return pointwise("gelu", x,
                     [](auto v) {
                       using T = decltype(v);
                       return T(0.5) * v * (1 + std::tanh(T(kSqrt2OverPi) * (v + T(0.044715) * v * v * v)));
                     },
                     [](auto v, auto) {
                       using T = decltype(v);
                       T inner = T(kSqrt2OverPi) * (v + T(0.044715) * v * v * v);
                       T t = std::tanh(inner);
                       T dinner = T(kSqrt2OverPi) * (1 + T(3 * 0.044715) * v * v);
                       return T(0.5) * (1 + t) + T(0.5) * v * (1 - t * t) * dinner;
                     },
                     [](const Tensor& x) {
                       Tensor x2 = mul(x, x);
                       Tensor inner = mul(scalar_like(kSqrt2OverPi, x), add(x, mul(scalar_like(0.044715, x), mul(x2, x))));
                       Tensor t = tanh(inner);
                       Tensor dinner = mul(scalar_like(kSqrt2OverPi, x), add(scalar_like(1.0, x), mul(scalar_like(3 * 0.044715, x), x2)));
                       Tensor half = scalar_like(0.5, x);
                       return add(mul(half, add(scalar_like(1.0, x), t)),
                                  mul(mul(half, x), mul(sub(scalar_like(1.0, x), mul(t, t)), dinner)));
                     });
  }
  NC_CHECK(approximate == "none", ValueError, "[gelu] approximate must be 'none' or 'tanh', got '", approximate, "'");
  return pointwise("gelu", x,
                   [](auto v) {
                     using T = decltype(v);
                     return T(0.5) * v * (1 + std::erf(v * T(kInvSqrt2)));
                   },
                   [](auto v, auto) {
                     using T = decltype(v);
                     return T(0.5) * (1 + std::erf(v * T(kInvSqrt2))) + v * T(kInvSqrt2Pi) * std::exp(T(-0.5) * v * v);
                   },
                   [](const Tensor& x) {
                     Tensor cdf = mul(scalar_like(0.5, x), add(scalar_like(1.0, x), erf(mul(x, scalar_like(kInvSqrt2, x)))));
                     Tensor pdf = mul(scalar_like(kInvSqrt2Pi, x), exp(mul(scalar_like(-0.5, x), mul(x, x))));
                     return add(cdf, mul(x, pdf));
                   });
}

Tensor silu(const Tensor& x) {
  return pointwise("silu", x,
                   [](auto v) {
                     auto e = std::exp(-std::fabs(v));
                     auto s = v >= 0 ? 1 / (1 + e) : e / (1 + e);
                     return v * s;
                   },
                   [](auto v, auto) {
                     auto e = std::exp(-std::fabs(v));
                     auto s = v >= 0 ? 1 / (1 + e) : e / (1 + e);
                     return s * (1 + v * (1 - s));
                   },
                   [](const Tensor& x) {
                     Tensor s = sigmoid(x);
                     return mul(s, add(scalar_like(1.0, x), mul(x, sub(scalar_like(1.0, x), s))));
                   });
}

Tensor softplus(const Tensor& x, double beta, double threshold) {
  return pointwise("softplus", x,
                   [beta, threshold](auto v) {
                     using T = decltype(v);
                     T bx = T(beta) * v;
                     // max(bx, 0) + log1p(e^-|bx|) never overflows, whatever the threshold.
                     return bx > T(threshold) ? v : (std::max(bx, T(0)) + std::log1p(std::exp(-std::fabs(bx)))) / T(beta);
                   },
                   [beta, threshold](auto v, auto) {
                     using T = decltype(v);
                     T bx = T(beta) * v;
                     if (bx > T(threshold)) return T(1);
                     T e = std::exp(-std::fabs(bx));
                     return bx >= 0 ? 1 / (1 + e) : e / (1 + e);
                   },
                   [beta, threshold](const Tensor& x) {
                     Tensor bx = mul(x, scalar_like(beta, x));
                     return where(compare(Compare::Gt, bx, scalar_like(threshold, x)), scalar_like(1.0, x), sigmoid(bx));
                   });
}

Tensor hardtanh(const Tensor& x, double lo, double hi) {
  NC_CHECK(lo <= hi, ValueError, "[hardtanh] min_val (", lo, ") must be at most max_val (", hi, ")");
  return pointwise("hardtanh", x,
                   [lo, hi](auto v) {
                     using T = decltype(v);
                     return v < T(lo) ? T(lo) : (v > T(hi) ? T(hi) : v);
                   },
                   [lo, hi](auto v, auto) {
                     using T = decltype(v);
                     return T(v > T(lo) && v < T(hi));
                   },
                   [lo, hi](const Tensor& x) {
                     return mul(step(x, Compare::Gt, lo), step(x, Compare::Lt, hi));
                   });
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
