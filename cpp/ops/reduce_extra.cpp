// max/min/argmax, amax/amin, var/std, logsumexp, all/any.
#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/parallel.h"
#include "kernels/reduce.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/elementwise.h"
#include "ops/gather.h"
#include "ops/math.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace nc {

namespace {

template <class T>
const kernels::ReduceFns<T>& reduce_kernels() {
  if constexpr (std::is_same_v<T, float>) return kernels::reduce().f32;
  else return kernels::reduce().f64;
}

template <class T>
bool better(T v, T best, bool is_max) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(best)) return false;
    if (std::isnan(v)) return true;
  }
  return is_max ? v > best : v < best;
}

constexpr int64_t kExtremeChunk = 16384;

// amax/amin of a contiguous float tensor over a trailing block of dims (the last dim, or all):
// rows of r elements, each cut into fixed chunks whose extremes the kernel finds in parallel and
// then combined in chunk order, so threads never change the result (of +0 and -0 the first
// chunk's wins). Undefined when the reduction is another shape.
Tensor extreme_trailing(const Tensor& x, const std::vector<bool>& mask, bool is_max) {
  if (!is_floating(x.dtype()) || !x.is_contiguous() || x.numel() == 0) return Tensor();
  int64_t first = x.dim();
  while (first > 0 && mask[first - 1]) --first;
  for (int64_t d = 0; d < first; ++d)
    if (mask[d]) return Tensor();
  int64_t outer = 1, r = 1;
  for (int64_t d = 0; d < x.dim(); ++d) (d < first ? outer : r) *= x.shape()[d];
  Shape kept = x.shape();
  for (int64_t d = first; d < x.dim(); ++d) kept[d] = 1;
  Tensor out = Tensor::empty(kept, x.dtype());
  dispatch_floating(x.dtype(), "amax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = x.data<T>();
    T* o = out.data<T>();
    const int64_t chunks = (r + kExtremeChunk - 1) / kExtremeChunk;
    std::vector<T> partial(outer * chunks);
    const auto& k = reduce_kernels<T>();
    const int64_t grain = std::max<int64_t>(1, kExtremeChunk * 2 / std::max<int64_t>(r, 1));
    parallel_for(0, outer * chunks, grain, [&](int64_t b, int64_t e) {
      for (int64_t w = b; w < e; ++w) {
        const int64_t c = w % chunks, n = std::min(kExtremeChunk, r - c * kExtremeChunk);
        partial[w] = k.extreme(p + (w / chunks) * r + c * kExtremeChunk, n, is_max);
      }
    });
    for (int64_t i = 0; i < outer; ++i) {
      T best = partial[i * chunks];
      for (int64_t c = 1; c < chunks; ++c)
        if (better(partial[i * chunks + c], best, is_max)) best = partial[i * chunks + c];
      o[i] = best;
    }
    return 0;
  });
  return out;
}

}  // namespace

ValuesIndices max_dim(const Tensor& x, int64_t dim, bool keepdim, bool is_max) {
  const char* name = is_max ? "max" : "min";
  dim = wrap_dim(dim, x.dim(), name);
  const int64_t r = x.dim() == 0 ? 1 : x.shape()[dim];
  NC_CHECK(r > 0, ValueError, "[", name, "] cannot reduce over an empty dimension ", dim, " (shape ",
           shape_str(x.shape()), "); there is no identity for ", name);
  Tensor xc = contiguous(x);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < dim; ++i) outer *= x.shape()[i];
  for (int64_t i = dim + 1; i < x.dim(); ++i) inner *= x.shape()[i];
  Shape kept = x.shape();
  if (x.dim() > 0) kept[dim] = 1;
  Tensor values = Tensor::empty(kept, x.dtype()), indices = Tensor::empty(kept, DType::Int64);
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = xc.data<T>();
    T* vo = values.data<T>();
    int64_t* io = indices.data<int64_t>();
    parallel_for(0, outer * inner, std::max<int64_t>(1, 32768 / r), [&](int64_t b, int64_t e) {
      if constexpr (std::is_floating_point_v<T>) {
        if (inner == 1) {  // rows: the vector kernel finds the extreme, then its first position
          const kernels::ReduceFns<T>& k = reduce_kernels<T>();
          for (int64_t w = b; w < e; ++w) {
            const T* row = p + w * r;
            const T best = k.extreme(row, r, is_max);
            int64_t arg = 0;
            if (best != best) {
              while (row[arg] == row[arg]) ++arg;
            } else {
              while (row[arg] != best) ++arg;
            }
            vo[w] = row[arg];  // of +0 and -0, the first one, as the loop below picks
            io[w] = arg;
          }
          return;
        }
      }
      for (int64_t w = b; w < e; ++w) {
        const int64_t o = w / inner, i = w % inner;
        const T* row = p + o * r * inner + i;
        T best = row[0];
        int64_t arg = 0;
        for (int64_t k = 1; k < r; ++k)
          if (better(row[k * inner], best, is_max)) {
            best = row[k * inner];
            arg = k;
          }
        vo[w] = best;
        io[w] = arg;
      }
    });
  });
  Shape out_shape = reduced_shape(x.shape(), reduced_mask({dim}, x.dim(), name), keepdim);
  values = values.as_strided_alias(out_shape, contiguous_strides(out_shape), 0);
  indices = indices.as_strided_alias(out_shape, contiguous_strides(out_shape), 0);
  if (needs_history({x})) {
    Shape xs = x.shape();
    Tensor idx_kept = indices.as_strided_alias(kept, contiguous_strides(kept), 0);
    set_history(name, {x}, {values}, [xs, kept, dim, idx_kept](const TensorList& g, const std::vector<bool>&) {
      if (xs.empty()) return TensorList{reshape(g[0], xs)};
      return TensorList{scatter_add_new(xs, dim, idx_kept, reshape(g[0], kept))};
    });
  }
  return {values, indices};
}

Tensor amax(const Tensor& x, Shape dims, bool keepdim, bool is_max) {
  const char* name = is_max ? "amax" : "amin";
  auto mask = reduced_mask(dims, x.dim(), name);
  for (int64_t d = 0; d < x.dim(); ++d)
    NC_CHECK(!mask[d] || x.shape()[d] > 0, ValueError, "[", name, "] cannot reduce over an empty dimension ", d,
             " (shape ", shape_str(x.shape()), ")");
  Tensor out;
  {
    NoGradGuard no_grad;
    out = x.dim() == 0 ? clone(x) : extreme_trailing(x, mask, is_max);
    if (!out.defined()) {
      Tensor cur = x;
      for (int64_t d = x.dim() - 1; d >= 0; --d)
        if (mask[d]) cur = max_dim(cur, d, true, is_max).values;
      out = contiguous(cur);
    }
    Shape out_shape = reduced_shape(x.shape(), mask, keepdim);
    out = out.as_strided_alias(out_shape, contiguous_strides(out_shape), out.offset());
  }
  if (needs_history({x})) {
    SavedTensor sx(x, false), so(out, true);
    Shape kept = reduced_shape(x.shape(), mask, true);
    Shape red;
    for (int64_t d = 0; d < x.dim(); ++d)
      if (mask[d]) red.push_back(d);
    std::string op = name;
    set_history(op, {x}, {out}, [sx, so, kept, red, op](const TensorList& g, const std::vector<bool>&) {
      Tensor xv = sx.unpack(op), ov = reshape(so.unpack(op), kept);
      Tensor hit = to_dtype(compare(Compare::Eq, xv, ov), xv.dtype());
      Tensor count = sum(hit, red, true);
      return TensorList{mul(div(hit, count), reshape(g[0], kept))};
    });
  }
  return out;
}

Tensor argmax(const Tensor& x, bool has_dim, int64_t dim, bool keepdim, bool is_max) {
  NoGradGuard no_grad;
  if (!has_dim) {
    NC_CHECK(x.numel() > 0, ValueError, "[", is_max ? "argmax" : "argmin", "] cannot take the index of an empty tensor");
    Tensor idx = max_dim(reshape(x, {x.numel()}), 0, false, is_max).indices;
    if (keepdim) return reshape(idx, Shape(x.dim(), 1));
    return idx;
  }
  return max_dim(x, dim, keepdim, is_max).indices;
}

Tensor var(const Tensor& x, Shape dims, double correction, bool keepdim) {
  NC_CHECK(is_floating(x.dtype()), TypeError, "[var] expected a floating-point tensor, got ", dtype_name(x.dtype()));
  auto mask = reduced_mask(dims, x.dim(), "var");
  int64_t n = 1;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (mask[d]) n *= x.shape()[d];
  Tensor centered = sub(x, mean(x, dims, true));
  Tensor ss = sum(mul(centered, centered), dims, keepdim);
  double denom = std::max(0.0, static_cast<double>(n) - correction);
  return div(ss, scalar_tensor(Scalar(denom), x.dtype()));
}

Tensor std_dev(const Tensor& x, Shape dims, double correction, bool keepdim) {
  return sqrt(var(x, std::move(dims), correction, keepdim));
}

Tensor logsumexp(const Tensor& x, Shape dims, bool keepdim) {
  NC_CHECK(is_floating(x.dtype()), TypeError, "[logsumexp] expected a floating-point tensor, got ",
           dtype_name(x.dtype()));
  if (x.numel() == 0) return log(sum(exp(x), dims, keepdim));
  Tensor m;
  {
    NoGradGuard no_grad;
    m = amax(x, dims, true, true);
    // An infinite maximum would turn x - m into NaN; shift by 0 there instead.
    m = where(isinf(m), zeros({}, x.dtype()), m);
  }
  Tensor s = log(sum(exp(sub(x, m)), dims, true));
  Tensor out = add(s, m);
  if (!keepdim) out = reshape(out, reduced_shape(x.shape(), reduced_mask(dims, x.dim(), "logsumexp"), false));
  return out;
}

Tensor all(const Tensor& x, Shape dims, bool keepdim) {
  Tensor n = sum(to_dtype(logical_not(to_dtype(x, DType::Bool)), DType::Int64), dims, keepdim);
  return compare(Compare::Eq, n, zeros({}, DType::Int64));
}

Tensor any(const Tensor& x, Shape dims, bool keepdim) {
  Tensor n = sum(to_dtype(to_dtype(x, DType::Bool), DType::Int64), dims, keepdim);
  return compare(Compare::Gt, n, zeros({}, DType::Int64));
}

}  // namespace nc
