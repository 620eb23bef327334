#pragma once
// Differentiable pointwise functions y = f(x) defined by two scalar formulas: f itself and its
// derivative f'(x, y). Backward is one fused pass g * f'(x, y); when a graph of the backward is
// requested (create_graph), the derivative is built from differentiable tensor ops instead, so
// higher-order gradients stay exact.
#include <functional>

#include "core/autograd.h"
#include "ops/elementwise_impl.h"
#include "ops/elementwise.h"
#include "ops/shape.h"

namespace nc {

// Derivative f'(x) as a tensor expression of x alone, used only under create_graph (the saved
// output is detached from the graph, so higher-order terms must be rebuilt from x).
using CompositeDerivative = std::function<Tensor(const Tensor& x)>;

// Per-ISA kernels for contiguous operands (see kernels/vecmath.h, kernels/elementwise.h,
// kernels/activation.h); any may be empty. The backward kernels compute g * f'(y) from the output
// alone, or g * f'(x) from the input (backward_x_f32) for functions whose derivative is not a
// function of the output. A callable (not a plain pointer) so that parameters can be bound.
template <class T>
using VecFn = std::function<void(const T* x, T* y, int64_t n)>;
template <class T>
using VecBackwardFn = std::function<void(const T* g, const T* y_or_x, T* gx, int64_t n)>;

struct PointwiseKernels {
  VecFn<float> f32 = nullptr;
  VecFn<double> f64 = nullptr;
  VecBackwardFn<float> backward_f32 = nullptr;
  VecBackwardFn<double> backward_f64 = nullptr;
  VecBackwardFn<float> backward_x_f32 = nullptr;
};

// y = fn(x) for contiguous x of dtype T, split between threads.
template <class T>
Tensor apply_vec(const Tensor& x, const VecFn<T>& fn) {
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const T* in = x.data<T>();
  T* out = y.data<T>();
  parallel_for(0, x.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) { fn(in + b, out + b, e - b); });
  return y;
}

// gx = fn(g, s) for g and s (the output or the input) contiguous of one shape and dtype T,
// split between threads.
template <class T>
Tensor apply_vec_backward(const Tensor& g, const Tensor& s, const VecBackwardFn<T>& fn) {
  Tensor gx = Tensor::empty(s.shape(), s.dtype());
  const T* gp = g.data<T>();
  const T* sp = s.data<T>();
  T* out = gx.data<T>();
  parallel_for(0, s.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) { fn(gp + b, sp + b, out + b, e - b); });
  return gx;
}

// gx = fn(g, y) for a gradient g that is one value broadcast to y's shape (the gradient of sum()
// or mean()): g is repeated in a small per-thread buffer, so the pass reads y alone and never
// makes g dense. Same kernel, same values as the dense path.
template <class T>
Tensor apply_vec_backward_single(const Tensor& g, const Tensor& y, const VecBackwardFn<T>& fn) {
  constexpr int64_t kBuf = 1024;
  Tensor gx = Tensor::empty(y.shape(), y.dtype());
  const T gv = *g.data<T>();
  const T* yp = y.data<T>();
  T* out = gx.data<T>();
  parallel_for(0, y.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
    alignas(64) T buf[kBuf];
    for (int64_t i = 0; i < kBuf; ++i) buf[i] = gv;
    for (int64_t i = b; i < e; i += kBuf) fn(buf, yp + i, out + i, std::min(kBuf, e - i));
  });
  return gx;
}

// True when every element of t is its first one (each dim of size > 1 has stride 0).
inline bool is_single_broadcast(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.shape()[d] > 1 && t.strides()[d] != 0) return false;
  return true;
}

// Float inputs keep their dtype; integer/bool inputs are computed in float32 (as PyTorch does for
// exp, sigmoid, ...). F and D are generic lambdas over the scalar type.
template <class F, class D>
Tensor pointwise(const char* name, const Tensor& x, F f, D dfdx, CompositeDerivative composite,
                 PointwiseKernels fast = {}) {
  if (is_storage_dtype(x.dtype()) && is_float_type(x.dtype()))  // float16 / bfloat16: computed in float32
    return to_dtype(pointwise(name, to_dtype(x, DType::Float32), f, dfdx, composite, fast), x.dtype());
  DType dt = is_floating(x.dtype()) ? x.dtype() : DType::Float32;
  Tensor y;
  if (fast.f32 && x.dtype() == DType::Float32 && x.is_contiguous()) {
    y = apply_vec<float>(x, fast.f32);
  } else if (fast.f64 && x.dtype() == DType::Float64 && x.is_contiguous()) {
    y = apply_vec<double>(x, fast.f64);
  } else {
    y = dispatch_floating(dt, name, [&](auto tag) {
      using T = typename decltype(tag)::type;
      return map1<T, T>(x, dt, [&](T v) { return f(v); });
    });
  }
  if (needs_history({x})) {
    SavedTensor sx(x, false), sy(y, true);
    std::string op = name;
    set_history(op, {x}, {y}, [sx, sy, op, dfdx, composite, fast](const TensorList& g, const std::vector<bool>&) {
      Tensor xv = sx.unpack(op), yv = sy.unpack(op);
      if (GradMode::is_enabled()) return TensorList{mul(g[0], composite(xv))};
      // With a backward kernel for this dtype, every gradient goes through it (a strided or
      // broadcast g is made dense first), so the kernel alone defines the values.
      const bool f32 = fast.backward_f32 && yv.dtype() == DType::Float32;
      const bool f64 = fast.backward_f64 && yv.dtype() == DType::Float64;
      const bool x32 = fast.backward_x_f32 && xv.dtype() == DType::Float32;
      if (f32 || f64 || x32) {
        Tensor gd = g[0];
        if (!x32 && gd.dtype() == yv.dtype() && gd.shape() == yv.shape() && !gd.is_contiguous() &&
            is_single_broadcast(gd)) {
          Tensor yd = contiguous(yv);
          return TensorList{f32 ? apply_vec_backward_single<float>(gd, yd, fast.backward_f32)
                                : apply_vec_backward_single<double>(gd, yd, fast.backward_f64)};
        }
        if (gd.dtype() != yv.dtype() || gd.shape() != yv.shape() || !gd.is_contiguous())
          gd = contiguous(to_dtype(expand(gd, yv.shape()), yv.dtype()));
        if (x32) return TensorList{apply_vec_backward<float>(gd, contiguous(xv), fast.backward_x_f32)};
        Tensor yd = contiguous(yv);
        return TensorList{f32 ? apply_vec_backward<float>(gd, yd, fast.backward_f32)
                              : apply_vec_backward<double>(gd, yd, fast.backward_f64)};
      }
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
