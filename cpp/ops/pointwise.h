#pragma once
// Differentiable pointwise functions y = f(x) defined by two scalar formulas: f itself and its
// derivative f'(x, y). Backward is one fused pass g * f'(x, y); when a graph of the backward is
// requested (create_graph), the derivative is built from differentiable tensor ops instead, so
// higher-order gradients stay exact.
#include <functional>

#include "core/autograd.h"
#include "ops/elementwise_impl.h"
#include "ops/elementwise.h"

namespace nc {

// Derivative f'(x) as a tensor expression of x alone, used only under create_graph (the saved
// output is detached from the graph, so higher-order terms must be rebuilt from x).
using CompositeDerivative = std::function<Tensor(const Tensor& x)>;

// Float inputs keep their dtype; integer/bool inputs are computed in float32 (as PyTorch does for
// exp, sigmoid, ...). F and D are generic lambdas over the scalar type.
// `fast_f32`, when given, is a vectorised kernel used for contiguous float32 input.
using VecFn = void (*)(const float*, float*, int64_t);

Tensor apply_vec_f32(const Tensor& x, VecFn fn);

template <class F, class D>
Tensor pointwise(const char* name, const Tensor& x, F f, D dfdx, CompositeDerivative composite,
                 VecFn fast_f32 = nullptr) {
  DType dt = is_floating(x.dtype()) ? x.dtype() : DType::Float32;
  Tensor y;
  if (fast_f32 && x.dtype() == DType::Float32 && x.is_contiguous()) {
    y = apply_vec_f32(x, fast_f32);
  } else {
    y = dispatch_floating(dt, name, [&](auto tag) {
      using T = typename decltype(tag)::type;
      return map1<T, T>(x, dt, [&](T v) { return f(v); });
    });
  }
  if (needs_history({x})) {
    SavedTensor sx(x, false), sy(y, true);
    std::string op = name;
    set_history(op, {x}, {y}, [sx, sy, op, dfdx, composite](const TensorList& g, const std::vector<bool>&) {
      Tensor xv = sx.unpack(op), yv = sy.unpack(op);
      if (GradMode::is_enabled()) return TensorList{mul(g[0], composite(xv))};
      Tensor gx = dispatch_floating(yv.dtype(), op.c_str(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        return map3<T, T>(g[0], xv, yv, yv.dtype(), op.c_str(), [&](T gv, T a, T b) { return gv * dfdx(a, b); });
      });
      return TensorList{gx};
    });
  }
  return y;
}

}  // namespace nc
