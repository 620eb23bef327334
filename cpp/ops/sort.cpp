#include "ops/sort.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"
#include "ops/copy.h"
#include "ops/gather.h"
#include "ops/shape.h"

namespace nc {

namespace {

// a < b with NaN above every number (two NaNs are equal), PyTorch's sort order.
template <class T>
bool less_nan_last(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
  }
  return a < b;
}

// Calls fn(row values, row length, row index out) for every 1-D line of x along dim; the index
// result has x's shape. Rows are independent, so any thread split gives the same result.
template <class Fn>
Tensor for_each_line(const Tensor& x, int64_t dim, int64_t out_len, const char* op, Fn fn) {
  dim = wrap_dim(dim, x.dim(), op);
  const int64_t nd = std::max<int64_t>(x.dim(), 1);
  // Move dim last so every line is contiguous.
  Tensor xl = x.dim() == 0 ? reshape(detach(x), {1}) : contiguous(transpose(detach(x), dim, nd - 1));
  const int64_t n = xl.shape().back();
  Shape out_shape = xl.shape();
  out_shape.back() = out_len;
  Tensor idx = Tensor::empty(out_shape, DType::Int64, op);
  const int64_t rows = n == 0 ? 0 : xl.numel() / n;
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = xl.data<T>();
    int64_t* dst = idx.data<int64_t>();
    parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
      std::vector<int64_t> order(n);
      for (int64_t r = b; r < e; ++r) {
        std::iota(order.begin(), order.end(), int64_t{0});
        fn(src + r * n, n, order, dst + r * out_len);
      }
    });
  });
  if (x.dim() == 0) return reshape(idx, {});
  return contiguous(transpose(idx, dim, nd - 1));
}

template <class T>
void stable_order(const T* v, std::vector<int64_t>& order, bool descending) {
  if (descending)
    std::stable_sort(order.begin(), order.end(), [v](int64_t a, int64_t b) { return less_nan_last(v[b], v[a]); });
  else
    std::stable_sort(order.begin(), order.end(), [v](int64_t a, int64_t b) { return less_nan_last(v[a], v[b]); });
}

}  // namespace

Tensor argsort(const Tensor& x, int64_t dim, bool descending) {
  const int64_t len = x.dim() == 0 ? 1 : x.size(wrap_dim(dim, x.dim(), "sort"));
  return for_each_line(x, dim, len, "sort", [&](const auto* v, int64_t n, std::vector<int64_t>& order, int64_t* out) {
    stable_order(v, order, descending);
    std::copy(order.begin(), order.begin() + n, out);
  });
}

ValuesIndices sort(const Tensor& x, int64_t dim, bool descending) {
  Tensor idx = argsort(x, dim, descending);
  if (x.dim() == 0) return {clone(x), idx};
  return {gather(x, dim, idx), idx};
}

ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  const int64_t d = wrap_dim(dim, x.dim(), "topk");
  const int64_t size = x.dim() == 0 ? 1 : x.shape()[d];
  NC_CHECK(k >= 0 && k <= size, IndexError, "[topk] k (", k, ") is out of range for dimension ", dim,
           " of size ", size, " (input shape ", shape_str(x.shape()), ")");
  Tensor idx = for_each_line(x, d, k, "topk", [&](const auto* v, int64_t, std::vector<int64_t>& order, int64_t* out) {
    // Stable partial sort: the first k of the stable order (ties keep the lower index first).
    auto cmp = [v, largest](int64_t a, int64_t b) {
      if (largest) return less_nan_last(v[b], v[a]) || (!less_nan_last(v[a], v[b]) && a < b);
      return less_nan_last(v[a], v[b]) || (!less_nan_last(v[b], v[a]) && a < b);
    };
    std::partial_sort(order.begin(), order.begin() + k, order.end(), cmp);
    std::copy(order.begin(), order.begin() + k, out);
  });
  if (x.dim() == 0) return {clone(x), idx};
  return {gather(x, d, idx), idx};
}

Tensor sample_from_cdf(const Tensor& cdf, const Tensor& u) {
  NC_CHECK(cdf.dim() == 2 && u.dim() == 2 && cdf.size(0) == u.size(0) && cdf.dtype() == u.dtype(), ValueError,
           "[multinomial] expected cdf (rows, n) and uniforms (rows, k) of one dtype, got ", shape_str(cdf.shape()),
           " and ", shape_str(u.shape()));
  Tensor c = contiguous(detach(cdf)), uc = contiguous(detach(u));
  const int64_t rows = c.size(0), n = c.size(1), k = uc.size(1);
  Tensor out = Tensor::empty({rows, k}, DType::Int64, "multinomial");
  dispatch_floating(c.dtype(), "multinomial", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* cp = c.data<T>();
    const T* up = uc.data<T>();
    int64_t* op = out.data<int64_t>();
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = cp + r * n;
      for (int64_t j = 0; j < k; ++j) {
        const T target = up[r * k + j] * row[n - 1];
        // First i with row[i] > target; categories of weight 0 (equal cdf values) are never chosen,
        // also when rounding puts the target at the total.
        int64_t i = std::min<int64_t>(std::upper_bound(row, row + n, target) - row, n - 1);
        while (i > 0 && row[i] == row[i - 1]) --i;
        op[r * k + j] = i;
      }
    }
  });
  return out;
}

}  // namespace nc
