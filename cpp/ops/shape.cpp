#include "ops/shape.h"

#include <algorithm>

#include "core/autograd.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/reduce.h"

namespace nc {

Shape infer_shape(Shape shape, int64_t numel, const Shape& from, const char* op) {
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      NC_CHECK(infer < 0, ValueError, "[", op, "] only one dimension can be inferred (-1) in ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      NC_CHECK(shape[i] >= 0, ValueError, "[", op, "] invalid shape ", shape_str(shape));
      NC_CHECK(!__builtin_mul_overflow(known, shape[i], &known), ValueError, "[", op, "] shape ",
               shape_str(shape), " is invalid for input of shape ", shape_str(from), " (", numel, " elements)");
    }
  }
  if (infer >= 0) {
    NC_CHECK(known != 0 && numel % known == 0, ValueError, "[", op, "] shape ", shape_str(shape),
             " is invalid for input of shape ", shape_str(from), " (", numel, " elements)");
    shape[infer] = numel / known;
  }
  NC_CHECK(known == numel || infer >= 0, ValueError, "[", op, "] shape ", shape_str(shape),
           " is invalid for input of shape ", shape_str(from), " (", numel, " elements)");
  return shape;
}

// Marks `out` (an alias of `t`) as a view and records `fn` as its backward when t needs grad.
static Tensor finish_view(const Tensor& t, Tensor out, const char* op, BackwardFn fn) {
  mark_view(out);
  if (needs_history({t})) set_history(op, {t}, {out}, std::move(fn));
  return out;
}

// PyTorch's computeStride: the strides under which `shape` views memory laid out as
// (old_shape, old_strides), or false when no strides can. Memory splits into chunks of dims that
// are contiguous with each other; a view may regroup the dims inside a chunk but not join chunks.
static bool view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& shape, Shape& strides) {
  strides.assign(shape.size(), 1);
  if (old_shape.empty()) return true;
  const int64_t numel = shape_numel(old_shape);
  if (numel == 0 && old_shape == shape) {
    strides = old_strides;
    return true;
  }
  if (numel == 0) {
    strides = contiguous_strides(shape);
    return true;
  }
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t tensor_d = static_cast<int64_t>(old_shape.size()) - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= old_shape[tensor_d];
    // A chunk ends where the next dim out is not contiguous with this one.
    if (tensor_d == 0 ||
        (old_shape[tensor_d - 1] != 1 && old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (tensor_d > 0) {
        chunk_base_stride = old_strides[tensor_d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

static Tensor view_with_strides(const Tensor& t, const Shape& shape, const Shape& strides) {
  Shape in_shape = t.shape();
  return finish_view(t, t.as_strided_alias(shape, strides, t.offset()), "view",
                     [in_shape](const TensorList& g, const std::vector<bool>&) {
                       return TensorList{reshape(g[0], in_shape)};
                     });
}

Tensor view(const Tensor& t, Shape shape) {
  shape = infer_shape(std::move(shape), t.numel(), t.shape(), "view");
  Shape strides;
  NC_CHECK(view_strides(t.shape(), t.strides(), shape, strides), RuntimeError, "[view] view size ",
           shape_str(shape), " is not compatible with input tensor's size and stride (at least one dimension spans "
           "across two contiguous subspaces; input shape ", shape_str(t.shape()), ", strides ", shape_str(t.strides()),
           "). Use .reshape(...) instead.");
  return view_with_strides(t, shape, strides);
}

Tensor reshape(const Tensor& t, Shape shape) {
  shape = infer_shape(std::move(shape), t.numel(), t.shape(), "reshape");
  Shape strides;
  if (view_strides(t.shape(), t.strides(), shape, strides)) return view_with_strides(t, shape, strides);
  Tensor c = clone(t);
  return view_with_strides(c, shape, contiguous_strides(shape));
}

Tensor expand(const Tensor& t, const Shape& shape) {
  NC_CHECK(shape.size() >= t.shape().size(), ValueError, "[expand] the number of sizes provided (",
           shape.size(), ") must be greater or equal to the number of dimensions in the tensor (",
           t.dim(), ")");
  size_t lead = shape.size() - t.shape().size();
  Shape out_shape(shape.size()), st(shape.size(), 0);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      NC_CHECK(shape[i] >= 0, ValueError, "[expand] invalid size ", shape[i], " for a new leading dimension");
      out_shape[i] = shape[i];
      continue;
    }
    int64_t cur = t.shape()[i - lead];
    int64_t want = shape[i] == -1 ? cur : shape[i];
    NC_CHECK(cur == want || cur == 1, ValueError, "[expand] the expanded size ", want,
             " must match the existing size ", cur, " at dimension ", i, " (tensor shape ",
             shape_str(t.shape()), ", target ", shape_str(shape), ")");
    out_shape[i] = want;
    st[i] = cur == want ? t.strides()[i - lead] : 0;
  }
  Shape in_shape = t.shape();
  return finish_view(t, t.as_strided_alias(out_shape, st, t.offset()), "expand",
                     [in_shape](const TensorList& g, const std::vector<bool>&) {
                       return TensorList{sum_to(g[0], in_shape)};
                     });
}

Tensor permute(const Tensor& t, Shape dims) {
  const int64_t n = t.dim();
  NC_CHECK(static_cast<int64_t>(dims.size()) == n, ValueError, "[permute] number of dims ", dims.size(),
           " doesn't match the tensor's ", n, " dims (shape ", shape_str(t.shape()), ")");
  std::vector<bool> seen(n, false);
  Shape shape(n), st(n), inverse(n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t d = wrap_dim(dims[i], n, "permute");
    NC_CHECK(!seen[d], ValueError, "[permute] repeated dim ", dims[i], " in ", shape_str(dims));
    seen[d] = true;
    dims[i] = d;
    shape[i] = t.shape()[d];
    st[i] = t.strides()[d];
    inverse[d] = i;
  }
  return finish_view(t, t.as_strided_alias(shape, st, t.offset()), "permute",
                     [inverse](const TensorList& g, const std::vector<bool>&) {
                       return TensorList{permute(g[0], inverse)};
                     });
}

Tensor transpose(const Tensor& t, int64_t d0, int64_t d1) {
  const int64_t n = t.dim();
  if (n == 0) return t;
  Shape dims(n);
  for (int64_t i = 0; i < n; ++i) dims[i] = i;
  std::swap(dims[wrap_dim(d0, n, "transpose")], dims[wrap_dim(d1, n, "transpose")]);
  return permute(t, dims);
}

static Tensor reshape_view(const Tensor& t, const Shape& shape, const Shape& strides, const char* op) {
  Shape in_shape = t.shape();
  return finish_view(t, t.as_strided_alias(shape, strides, t.offset()), op,
                     [in_shape](const TensorList& g, const std::vector<bool>&) {
                       return TensorList{reshape(g[0], in_shape)};
                     });
}

Tensor squeeze(const Tensor& t) {
  Shape shape, st;
  for (int64_t i = 0; i < t.dim(); ++i)
    if (t.shape()[i] != 1) {
      shape.push_back(t.shape()[i]);
      st.push_back(t.strides()[i]);
    }
  return reshape_view(t, shape, st, "squeeze");
}

Tensor squeeze_dim(const Tensor& t, int64_t dim) {
  if (t.dim() == 0) return reshape_view(t, {}, {}, "squeeze");
  int64_t d = wrap_dim(dim, t.dim(), "squeeze");
  if (t.shape()[d] != 1) return reshape_view(t, t.shape(), t.strides(), "squeeze");
  Shape shape = t.shape(), st = t.strides();
  shape.erase(shape.begin() + d);
  st.erase(st.begin() + d);
  return reshape_view(t, shape, st, "squeeze");
}

Tensor unsqueeze(const Tensor& t, int64_t dim) {
  int64_t d = wrap_dim(dim, t.dim() + 1, "unsqueeze");
  Shape shape = t.shape(), st = t.strides();
  int64_t stride = d < t.dim() ? t.strides()[d] * t.shape()[d] : 1;
  shape.insert(shape.begin() + d, 1);
  st.insert(st.begin() + d, stride);
  return reshape_view(t, shape, st, "unsqueeze");
}

Tensor flatten(const Tensor& t, int64_t start_dim, int64_t end_dim) {
  if (t.dim() == 0) return reshape(t, {1});
  int64_t s = wrap_dim(start_dim, t.dim(), "flatten"), e = wrap_dim(end_dim, t.dim(), "flatten");
  NC_CHECK(s <= e, ValueError, "[flatten] start_dim ", start_dim, " comes after end_dim ", end_dim);
  Shape shape(t.shape().begin(), t.shape().begin() + s);
  int64_t prod = 1;
  for (int64_t i = s; i <= e; ++i) prod *= t.shape()[i];
  shape.push_back(prod);
  shape.insert(shape.end(), t.shape().begin() + e + 1, t.shape().end());
  return reshape(t, shape);
}

}  // namespace nc
