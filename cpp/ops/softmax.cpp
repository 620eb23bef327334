#include "ops/softmax.h"

#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/parallel.h"
#include "kernels/softmax.h"
#include "ops/copy.h"
#include "ops/elementwise.h"
#include "ops/math.h"
#include "ops/reduce.h"

namespace nc {

namespace {

struct Rows {
  int64_t outer = 1, r = 1, inner = 1;
};

Rows rows_of(const Tensor& x, int64_t dim) {
  Rows g;
  if (x.dim() == 0) return g;
  for (int64_t i = 0; i < dim; ++i) g.outer *= x.shape()[i];
  g.r = x.shape()[dim];
  for (int64_t i = dim + 1; i < x.dim(); ++i) g.inner *= x.shape()[i];
  return g;
}

// Rows (or columns) per thread block: about 16K elements, so small inputs stay single-threaded.
int64_t row_grain(const Rows& g) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(g.r, 1)); }

// y = softmax or log_softmax of each row (stride `inner`) of contiguous x.

template <class T>
void softmax_rows(const T* x, T* y, Rows g, bool log) {
  if constexpr (std::is_same_v<T, float>) {
    if (g.inner == 1) {  // contiguous rows: the per-ISA row kernel
      const auto rows_f32 = kernels::softmax().f32.rows;
      parallel_for(0, g.outer, row_grain(g), [&](int64_t b, int64_t e) { rows_f32(x + b * g.r, y + b * g.r, e - b, g.r, log); });
      return;
    }
  }
  parallel_for(0, g.outer * g.inner, row_grain(g), [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; ++w) {
      const int64_t o = w / g.inner, i = w % g.inner;
      const T* xr = x + o * g.r * g.inner + i;
      T* yr = y + o * g.r * g.inner + i;
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t k = 0; k < g.r; ++k) m = std::max(m, xr[k * g.inner]);
      if (std::isinf(m)) m = m > 0 ? m : T(0);  // all -inf rows give NaN like PyTorch; +inf too
      double s = 0;
      for (int64_t k = 0; k < g.r; ++k) s += std::exp(static_cast<double>(xr[k * g.inner] - m));
      if (log) {
        const T ls = static_cast<T>(std::log(s));
        for (int64_t k = 0; k < g.r; ++k) yr[k * g.inner] = xr[k * g.inner] - m - ls;
      } else {
        const double inv = 1.0 / s;
        for (int64_t k = 0; k < g.r; ++k) yr[k * g.inner] = static_cast<T>(std::exp(static_cast<double>(xr[k * g.inner] - m)) * inv);
      }
    }
  });
}

// Fused backward: softmax gx = y * (g - sum(g*y)); log_softmax gx = g - exp(y) * sum(g).
template <class T>
void softmax_backward_rows(const T* gy, const T* y, T* gx, Rows g, bool log) {
  if constexpr (std::is_same_v<T, float>) {
    if (g.inner == 1) {
      const auto backward_f32 = kernels::softmax().f32.backward_rows;
      parallel_for(0, g.outer, row_grain(g), [&](int64_t b, int64_t e) {
        backward_f32(gy + b * g.r, y + b * g.r, gx + b * g.r, e - b, g.r, log);
      });
      return;
    }
  }
  parallel_for(0, g.outer * g.inner, row_grain(g), [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; ++w) {
      const int64_t base = (w / g.inner) * g.r * g.inner + w % g.inner;
      double s = 0;
      for (int64_t k = 0; k < g.r; ++k) {
        const int64_t j = base + k * g.inner;
        s += log ? gy[j] : gy[j] * y[j];
      }
      for (int64_t k = 0; k < g.r; ++k) {
        const int64_t j = base + k * g.inner;
        gx[j] = log ? static_cast<T>(gy[j] - std::exp(y[j]) * s) : static_cast<T>(y[j] * (gy[j] - s));
      }
    }
  });
}

Tensor softmax_impl(const Tensor& x_in, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  dim = wrap_dim(dim, x_in.dim(), name);
  Tensor x = is_floating(x_in.dtype()) ? x_in : to_dtype(x_in, DType::Float32);
  Tensor xc = contiguous(x);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Rows g = rows_of(x, dim);
  dispatch_floating(x.dtype(), name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    softmax_rows<T>(xc.data<T>(), y.data<T>(), g, log);
  });
  if (needs_history({x})) {
    SavedTensor sx(x, false), sy(y, true);
    std::string op = name;
    set_history(op, {x}, {y}, [sx, sy, dim, g, log, op](const TensorList& grads, const std::vector<bool>&) {
      Tensor yv = sy.unpack(op);
      if (GradMode::is_enabled()) {
        // create_graph: the same formulas from differentiable ops, with y recomputed from x so
        // that it is part of the graph.
        yv = softmax_impl(sx.unpack(op), dim, log);
        if (log) return TensorList{sub(grads[0], mul(exp(yv), sum(grads[0], {dim}, true)))};
        return TensorList{mul(yv, sub(grads[0], sum(mul(grads[0], yv), {dim}, true)))};
      }
      Tensor gc = contiguous(grads[0]);
      Tensor gx = Tensor::empty(yv.shape(), yv.dtype());
      dispatch_floating(yv.dtype(), op.c_str(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        softmax_backward_rows<T>(gc.data<T>(), yv.data<T>(), gx.data<T>(), g, log);
      });
      return TensorList{gx};
    });
  }
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

}  // namespace nc
