#include "ops/gather.h"

#include "core/autograd.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/index.h"

namespace nc {

namespace {

void check_index(const Tensor& x_shape_holder, const Shape& xs, int64_t dim, const Tensor& index, const char* op) {
  NC_CHECK(index.dtype() == DType::Int64, TypeError, "[", op, "] index must be an int64 tensor, got ",
           dtype_name(index.dtype()));
  NC_CHECK(index.dim() == static_cast<int64_t>(xs.size()), ValueError, "[", op, "] index has ", index.dim(),
           " dims but the input has ", xs.size(), " (input shape ", shape_str(xs), ", index shape ",
           shape_str(index.shape()), ")");
  for (int64_t d = 0; d < index.dim(); ++d)
    NC_CHECK(d == dim || index.shape()[d] <= xs[d], ValueError, "[", op, "] index shape ", shape_str(index.shape()),
             " is larger than the input shape ", shape_str(xs), " in dimension ", d);
}

// Calls body(position in the index/out tensor, offset of the addressed element in a contiguous
// tensor of shape `xs`) for every index element, validating index values.
template <class Body>
void for_each_index(const Shape& xs, int64_t dim, const Tensor& idx, const char* op, Body body) {
  const Shape& is = idx.shape();
  const int64_t n = idx.numel();
  Shape xst = contiguous_strides(xs);
  const int64_t* ip = idx.data<int64_t>();
  const int64_t size = xs[dim];
  std::vector<int64_t> pos(is.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = ip[i];  // as in PyTorch, gather/scatter take no negative indices
    if (v < 0 || v >= size)
      throw IndexError(cat_str("[", op, "] index ", v, " is out of bounds for dimension ", dim, " with size ", size));
    int64_t off = 0;
    for (size_t d = 0; d < is.size(); ++d) off += (static_cast<int64_t>(d) == dim ? v : pos[d]) * xst[d];
    body(i, off);
    for (int64_t d = static_cast<int64_t>(is.size()) - 1; d >= 0; --d) {
      if (++pos[d] < is[d]) break;
      pos[d] = 0;
    }
  }
}

}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  dim = wrap_dim(dim, x.dim(), "gather");
  check_index(x, x.shape(), dim, index, "gather");
  Tensor xc = contiguous(x), idx = contiguous(index);
  Tensor out = Tensor::empty(index.shape(), x.dtype());
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = xc.data<T>();
    T* dst = out.data<T>();
    for_each_index(x.shape(), dim, idx, "gather", [&](int64_t i, int64_t off) { dst[i] = src[off]; });
  });
  if (needs_history({x})) {
    Shape xs = x.shape();
    Tensor saved_idx = idx;
    set_history("gather", {x}, {out}, [xs, dim, saved_idx](const TensorList& g, const std::vector<bool>&) {
      return TensorList{scatter_add_new(xs, dim, saved_idx, g[0])};
    });
  }
  return out;
}

Tensor scatter_add_new(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& src) {
  dim = wrap_dim(dim, static_cast<int64_t>(shape.size()), "scatter_add");
  check_index(src, shape, dim, index, "scatter_add");
  NC_CHECK(src.shape() == index.shape(), ValueError, "[scatter_add] src shape ", shape_str(src.shape()),
           " must match the index shape ", shape_str(index.shape()));
  Tensor idx = contiguous(index), s = contiguous(src);
  Tensor out = zeros(shape, src.dtype());
  dispatch_all(src.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* sp = s.data<T>();
    T* dst = out.data<T>();
    for_each_index(shape, dim, idx, "scatter_add", [&](int64_t i, int64_t off) { dst[off] += sp[i]; });
  });
  if (needs_history({src})) {
    Tensor saved_idx = idx;
    set_history("scatter_add", {src}, {out}, [dim, saved_idx](const TensorList& g, const std::vector<bool>&) {
      return TensorList{gather(g[0], dim, saved_idx)};
    });
  }
  return out;
}

Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, bool src_is_value,
               ScatterReduce reduce, const char* op) {
  dim = wrap_dim(dim, x.dim(), op);
  const Shape& xs = x.shape();
  const Shape& is = index.shape();
  NC_CHECK(index.dtype() == DType::Int64, TypeError, "[", op, "] index must be an int64 tensor, got ",
           dtype_name(index.dtype()));
  NC_CHECK(index.dim() == x.dim() || (index.numel() == 0 && index.dim() <= 1), ValueError, "[", op, "] index has ",
           index.dim(), " dims but the input has ", x.dim(), " (input shape ", shape_str(xs), ", index shape ",
           shape_str(is), ")");
  Tensor out = clone(detach(x));
  if (index.numel() == 0) {
    if (needs_history({x})) set_history(op, {x}, {out}, [](const TensorList& g, const std::vector<bool>&) {
      return TensorList{g[0]};
    });
    return out;
  }
  for (int64_t d = 0; d < index.dim(); ++d)
    NC_CHECK(d == dim || is[d] <= xs[d], ValueError, "[", op, "] index shape ", shape_str(is),
             " is larger than the input shape ", shape_str(xs), " in dimension ", d);
  // The part of src that index addresses, element for element.
  Tensor s = src;
  if (!src_is_value) {
    NC_CHECK(src.dtype() == x.dtype(), TypeError, "[", op, "] expected src to have the input's dtype ",
             dtype_name(x.dtype()), ", got ", dtype_name(src.dtype()));
    NC_CHECK(src.dim() == index.dim(), ValueError, "[", op, "] index has ", index.dim(), " dims but src has ",
             src.dim(), " (src shape ", shape_str(src.shape()), ", index shape ", shape_str(is), ")");
    for (int64_t d = 0; d < index.dim(); ++d) {
      NC_CHECK(is[d] <= src.shape()[d], ValueError, "[", op, "] index shape ", shape_str(is),
               " is larger than the src shape ", shape_str(src.shape()), " in dimension ", d);
      if (is[d] < s.shape()[d]) s = narrow(s, d, 0, is[d]);
    }
  }
  Tensor idx = contiguous(index), sc = contiguous(detach(s));
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* dst = out.data<T>();
    const T* sp = sc.data<T>();
    const T value = *sp;
    for_each_index(xs, dim, idx, op, [&](int64_t i, int64_t off) {
      const T v = src_is_value ? value : sp[i];
      if (reduce == ScatterReduce::None) dst[off] = v;
      else if (reduce == ScatterReduce::Add) dst[off] = static_cast<T>(dst[off] + v);
      else dst[off] = static_cast<T>(dst[off] * v);
    });
  });
  const bool src_grad = !src_is_value && needs_history({s});
  if (needs_history({x}) || src_grad) {
    NC_CHECK(reduce != ScatterReduce::Multiply, RuntimeError,
             "[", op, "] the derivative of scatter with reduce='multiply' is not implemented");
    TensorList inputs{x};
    if (src_grad) inputs.push_back(s);
    set_history(op, inputs, {out}, [dim, idx, reduce, src_grad](const TensorList& g, const std::vector<bool>&) {
      // Overwritten positions get no gradient into x; each src element gets the gradient of the
      // position it was written to.
      TensorList r{reduce == ScatterReduce::Add ? g[0]
                                                : scatter(g[0], dim, idx, zeros({}, g[0].dtype()), true,
                                                          ScatterReduce::None, "scatter")};
      if (src_grad) r.push_back(gather(g[0], dim, idx));
      return r;
    });
  }
  return out;
}

}  // namespace nc
