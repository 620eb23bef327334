#include "ops/gather.h"

#include "core/autograd.h"
#include "ops/copy.h"
#include "ops/creation.h"

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

}  // namespace nc
