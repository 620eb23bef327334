#include "ops/linear_act.h"

#include <cmath>

#include "core/autograd.h"
#include "kernels/activation.h"
#include "kernels/activation_formulas.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "ops/activation.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/elementwise.h"
#include "ops/linalg.h"
#include "ops/math.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace nc {
namespace {

constexpr const char* kOp = "linear_act";

// GELU'(z) = Phi(z) + z phi(z) from differentiable ops (create_graph).
Tensor gelu_derivative(const Tensor& z) {
  using kernels::formulas::kInvSqrt2;
  using kernels::formulas::kInvSqrt2Pi;
  const auto c = [&](double v) { return scalar_tensor(Scalar(v), z.dtype()); };
  const Tensor cdf = mul(c(0.5), add(c(1.0), erf(mul(z, c(kInvSqrt2)))));
  const Tensor pdf = mul(c(kInvSqrt2Pi), exp(mul(c(-0.5), square(z))));
  return add(cdf, mul(z, pdf));
}

}  // namespace

Tensor linear_act(const Tensor& x, const Tensor& weight, const Tensor& bias, const std::string& activation) {
  NC_CHECK(activation == "relu" || activation == "gelu", ValueError, "[", kOp,
           "] activation must be 'relu' or 'gelu', got '", activation, "'");
  const bool is_relu = activation == "relu";
  const int64_t out_f = weight.dim() == 2 ? weight.shape()[0] : 0, in = weight.dim() == 2 ? weight.shape()[1] : 0;
  Tensor y, z;  // z: the pre-activation, kept only for GELU
  {
    const bool weight_history = needs_history({weight});  // (read before the guard turns it off)
    NoGradGuard no_grad;
    const bool fused = is_relu && x.dtype() == DType::Float32 && weight.dtype() == DType::Float32 &&
                       (!bias.defined() || bias.dtype() == DType::Float32) && weight.dim() == 2 && x.dim() >= 1 &&
                       x.shape().back() == in && in > 0 && (!bias.defined() || bias.numel() == out_f) &&
                       !(bias.defined() && bias.dim() != 1);
    if (fused) {
      const int64_t rows = x.numel() / in;
      Shape out_shape = x.shape();
      out_shape.back() = out_f;
      y = Tensor::empty(out_shape, DType::Float32);
      const Tensor xc = contiguous(x), bc = bias.defined() ? contiguous(bias) : bias;
      // y = relu(x W^T + b) in the GEMM's store, from W packed once where that pays
      if (rows > 0 && out_f > 0 && !linear_prepacked(xc, weight, bc, rows, y.data<float>(), 1, weight_history)) {
        const Tensor wc = contiguous(weight);
        kernels::gemm().f32.gemm_bias_act(false, true, rows, out_f, in, 1.0f, xc.data<float>(), in, wc.data<float>(), in,
                                       0.0f, y.data<float>(), out_f, bc.defined() ? bc.data<float>() : nullptr, 1);
      }
    } else {
      z = linear(x, weight, bias);  // validates the arguments
      y = is_relu ? relu(z) : gelu(z, "none");
      if (is_relu) z = Tensor();
    }
  }
  if (needs_history({x, weight, bias})) {
    SavedTensor sx(x, false), sw(weight, false), sb(bias, false), sy(y, true);
    set_history(kOp, {x, weight, bias}, {y},
                [sx, sw, sb, sy, z, is_relu](const TensorList& grads, const std::vector<bool>& needs) {
                  const Tensor x = sx.unpack(kOp), w = sw.unpack(kOp);
                  const Tensor go = contiguous(grads[0]);
                  Tensor gz;  // gradient of the pre-activation
                  if (is_relu && !GradMode::is_enabled()) {
                    const Tensor yv = sy.unpack(kOp);
                    gz = Tensor::empty(go.shape(), go.dtype());
                    dispatch_floating(go.dtype(), kOp, [&](auto tag) {
                      using T = typename decltype(tag)::type;
                      const auto& e = kernels::elementwise();
                      if constexpr (sizeof(T) == 4) e.f32.relu_backward(go.data<T>(), yv.data<T>(), gz.data<T>(), go.numel());
                      else e.f64.relu_backward(go.data<T>(), yv.data<T>(), gz.data<T>(), go.numel());
                    });
                  } else if (is_relu) {  // create_graph: relu'' = 0, so the mask is a constant
                    const Tensor off = compare(Compare::Le, sy.unpack(kOp), scalar_tensor(0.0, go.dtype()));
                    gz = mul(go, to_dtype(logical_not(off), go.dtype()));  // NaN outputs pass, as relu's
                  } else if (!GradMode::is_enabled()) {  // the gelu op's own derivative formulas
                    gz = Tensor::empty(go.shape(), go.dtype());
                    if (go.dtype() == DType::Float32) {
                      kernels::activation().f32[kernels::Activation::Gelu].backward(go.data<float>(), z.data<float>(),
                                                                                 gz.data<float>(), go.numel(), 0, 0);
                    } else {
                      const double* g = go.data<double>();
                      const double* zp = z.data<double>();
                      double* out = gz.data<double>();
                      for (int64_t i = 0; i < go.numel(); ++i) out[i] = g[i] * kernels::formulas::gelu_grad(zp[i]);
                    }
                  } else {  // create_graph: the pre-activation recomputed with its graph
                    gz = mul(go, gelu_derivative(linear(x, w, sb.unpack(kOp))));
                  }
                  return linear_backward(gz, x, w, needs);
                });
  }
  return y;
}

}  // namespace nc
