#include "ops/index.h"

#include "core/autograd.h"
#include "core/iter.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/elementwise.h"
#include "ops/math.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace nc {

namespace {

// Shape, strides and offset of a basic index applied to a tensor of `shape`/`strides`/`offset`.
void basic_geometry(const Shape& shape, const Shape& strides, int64_t offset, const BasicIndex& index, Shape& out_shape,
                    Shape& out_strides, int64_t& out_offset) {
  NC_CHECK(index.dims.size() == shape.size(), IndexError, "[index] expected ", shape.size(), " dim entries, got ",
           index.dims.size());
  out_shape.clear();
  out_strides.clear();
  out_offset = offset;
  for (size_t d = 0; d < shape.size(); ++d) {
    const DimSlice& s = index.dims[d];
    out_offset += s.start * strides[d];
    if (s.keep) {
      out_shape.push_back(s.length);
      out_strides.push_back(strides[d] * s.step);
    }
  }
  for (int64_t pos : index.new_axes) {
    out_shape.insert(out_shape.begin() + pos, 1);
    out_strides.insert(out_strides.begin() + pos, 0);
  }
}

void check_basic(const Shape& shape, const BasicIndex& index) {
  for (size_t d = 0; d < shape.size(); ++d) {
    const DimSlice& s = index.dims[d];
    if (!s.keep) {
      NC_CHECK(s.start >= 0 && s.start < shape[d], IndexError, "[index] index ", s.start,
               " is out of bounds for dimension ", d, " with size ", shape[d]);
    } else if (s.length > 0) {
      const int64_t last = s.start + s.step * (s.length - 1);
      NC_CHECK(s.start >= 0 && s.start < shape[d] && last >= 0 && last < shape[d], IndexError,
               "[index] slice of dimension ", d, " (size ", shape[d], ") is out of bounds");
    }
  }
}

}  // namespace

Tensor basic_index(const Tensor& x, const BasicIndex& index) {
  check_basic(x.shape(), index);
  Shape shape, strides;
  int64_t offset;
  basic_geometry(x.shape(), x.strides(), x.offset(), index, shape, strides, offset);
  Tensor out = x.as_strided_alias(shape, strides, offset);
  mark_view(out);
  if (needs_history({x})) {
    Shape xs = x.shape();
    set_history("index", {x}, {out}, [xs, index](const TensorList& g, const std::vector<bool>&) {
      return TensorList{basic_index_backward(g[0], xs, index)};
    });
  }
  return out;
}

Tensor basic_index_backward(const Tensor& g, const Shape& shape, const BasicIndex& index) {
  Tensor base = zeros(shape, g.dtype());
  Shape vs, vst;
  int64_t off;
  basic_geometry(shape, base.strides(), 0, index, vs, vst, off);
  copy_raw(base.as_strided_alias(vs, vst, off), g);
  if (needs_history({g})) {
    set_history("index_backward", {g}, {base}, [index](const TensorList& gg, const std::vector<bool>&) {
      return TensorList{contiguous(basic_index(gg[0], index))};
    });
  }
  return base;
}

namespace {

// Validated positions (negative ones wrapped) as a contiguous int64 tensor.
Tensor checked_positions(const Tensor& positions, int64_t numel) {
  NC_CHECK(positions.dtype() == DType::Int64, TypeError, "[index] positions must be int64");
  Tensor p = clone(positions);
  int64_t* d = p.data<int64_t>();
  for (int64_t i = 0; i < p.numel(); ++i) {
    NC_CHECK(d[i] >= -numel && d[i] < numel, IndexError, "[index] position ", d[i], " is out of bounds for ",
             numel, " elements");
    if (d[i] < 0) d[i] += numel;
  }
  return p;
}

}  // namespace

Tensor take(const Tensor& x, const Tensor& positions) {
  Tensor pos = checked_positions(positions, x.numel());
  Tensor xc = contiguous(x);
  Tensor out = Tensor::empty(pos.shape(), x.dtype());
  dispatch_storage(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = xc.data<T>();
    T* dst = out.data<T>();
    const int64_t* p = pos.data<int64_t>();
    parallel_for(0, pos.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) dst[i] = src[p[i]];
    });
  });
  if (needs_history({x})) {
    Shape xs = x.shape();
    const int64_t n = x.numel();
    set_history("take", {x}, {out}, [xs, n, pos](const TensorList& g, const std::vector<bool>&) {
      return TensorList{reshape(put_add_new(n, pos, g[0]), xs)};
    });
  }
  return out;
}

Tensor put_add_new(int64_t numel, const Tensor& positions, const Tensor& src) {
  Tensor pos = checked_positions(positions, numel);
  NC_CHECK(src.shape() == pos.shape(), ValueError, "[put] source shape ", shape_str(src.shape()),
           " must match the positions shape ", shape_str(pos.shape()));
  Tensor s = contiguous(src);
  Tensor out = zeros({numel}, src.dtype());
  dispatch_all(src.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* sp = s.data<T>();
    T* dst = out.data<T>();
    const int64_t* p = pos.data<int64_t>();
    for (int64_t i = 0; i < pos.numel(); ++i) dst[p[i]] += sp[i];  // serial: repeated positions accumulate
  });
  if (needs_history({src})) {
    set_history("put_add", {src}, {out}, [pos](const TensorList& g, const std::vector<bool>&) {
      return TensorList{take(g[0], pos)};
    });
  }
  return out;
}

void put_(const Tensor& x, const Tensor& positions, const Tensor& value) {
  Tensor pos = checked_positions(positions, x.numel());
  prepare_inplace(x, "index_put_", {value});
  Tensor v = contiguous(expand(to_dtype(detach(value), x.dtype()), pos.shape()));
  if (v.impl()->storage == x.impl()->storage) v = clone(v);  // x[0] = x[1]: read all before writing
  // Storage offset of each logical position of x (x may be a strided view).
  const Shape& shape = x.shape();
  const Shape& strides = x.strides();
  dispatch_storage(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* base = static_cast<T*>(x.impl()->storage->data) + x.offset();
    const T* vp = v.data<T>();
    const int64_t* p = pos.data<int64_t>();
    for (int64_t i = 0; i < pos.numel(); ++i) {
      int64_t rem = p[i], off = 0;
      for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
        off += (rem % shape[d]) * strides[d];
        rem /= shape[d];
      }
      base[off] = vp[i];
    }
  });
  x.bump_version();
  if (needs_history({x, value})) {
    Shape vs = value.shape();
    DType vd = value.dtype();
    const int64_t n = x.numel();
    Shape xs = x.shape();
    set_history("index_put_", {x, value}, {x}, [pos, vs, vd, n, xs](const TensorList& g, const std::vector<bool>& needs) {
      TensorList r(2);
      if (needs[0]) {
        // Overwritten elements get no gradient from the old value.
        Tensor keep = reshape(put_add_new(n, pos, ones(pos.shape(), g[0].dtype())), xs);
        r[0] = mul(g[0], to_dtype(compare(Compare::Eq, keep, zeros({}, keep.dtype())), g[0].dtype()));
      }
      if (needs[1]) r[1] = to_dtype(sum_to(take(g[0], pos), vs), vd);
      return r;
    });
  }
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  NC_CHECK(x.dim() > 0, IndexError, "[narrow] cannot narrow a 0-dim tensor");
  dim = wrap_dim(dim, x.dim(), "narrow");
  const int64_t size = x.shape()[dim];
  if (start < 0) start += size;
  NC_CHECK(start >= 0 && length >= 0 && start + length <= size, IndexError, "[narrow] start (", start,
           ") + length (", length, ") exceeds dimension ", dim, " of size ", size);
  BasicIndex idx;
  idx.dims.resize(x.dim());
  for (int64_t d = 0; d < x.dim(); ++d) idx.dims[d] = {0, 1, x.shape()[d], true};
  idx.dims[dim] = {start, 1, length, true};
  return basic_index(x, idx);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  NC_CHECK(x.dim() > 0, IndexError, "[select] cannot select from a 0-dim tensor");
  dim = wrap_dim(dim, x.dim(), "select");
  const int64_t size = x.shape()[dim];
  NC_CHECK(index >= -size && index < size, IndexError, "[select] index ", index, " is out of bounds for dimension ",
           dim, " with size ", size);
  if (index < 0) index += size;
  BasicIndex idx;
  idx.dims.resize(x.dim());
  for (int64_t d = 0; d < x.dim(); ++d) idx.dims[d] = {0, 1, x.shape()[d], true};
  idx.dims[dim] = {index, 1, 1, false};
  return basic_index(x, idx);
}

Tensor cat(const TensorList& tensors, int64_t dim) {
  NC_CHECK(!tensors.empty(), ValueError, "[cat] expected a non-empty list of tensors");
  // Legacy rule kept by PyTorch: 1-D empty tensors are skipped.
  TensorList parts;
  for (const auto& t : tensors)
    if (!(t.dim() == 1 && t.numel() == 0)) parts.push_back(t);
  if (parts.empty()) return clone(tensors[0]);
  const Tensor& ref = parts[0];
  NC_CHECK(ref.dim() > 0, ValueError, "[cat] zero-dimensional tensor (at position 0) cannot be concatenated");
  dim = wrap_dim(dim, ref.dim(), "cat");
  DType dt = ref.dtype();
  int64_t total = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Tensor& t = parts[i];
    NC_CHECK(t.dim() == ref.dim(), ValueError, "[cat] tensors must have the same number of dimensions: tensor 0 has shape ",
             shape_str(ref.shape()), ", tensor ", i, " has shape ", shape_str(t.shape()));
    for (int64_t d = 0; d < ref.dim(); ++d)
      NC_CHECK(d == dim || t.shape()[d] == ref.shape()[d], ValueError, "[cat] sizes of tensors must match except in dimension ",
               dim, ": tensor 0 has shape ", shape_str(ref.shape()), ", tensor ", i, " has shape ", shape_str(t.shape()));
    dt = promote_types(dt, t.dtype());
    total += t.shape()[dim];
  }
  Shape shape = ref.shape();
  shape[dim] = total;
  Tensor out = Tensor::empty(shape, dt);
  std::vector<int64_t> starts;
  int64_t at = 0;
  for (const auto& t : parts) {
    Shape st = out.strides();
    copy_raw(out.as_strided_alias(t.shape(), st, at * st[dim]), t);
    starts.push_back(at);
    at += t.shape()[dim];
  }
  if (needs_history(parts)) {
    std::vector<int64_t> lengths;
    std::vector<DType> dtypes;
    for (const auto& t : parts) {
      lengths.push_back(t.shape()[dim]);
      dtypes.push_back(t.dtype());
    }
    set_history("cat", parts, {out}, [dim, starts, lengths, dtypes](const TensorList& g, const std::vector<bool>& needs) {
      TensorList r(starts.size());
      for (size_t i = 0; i < starts.size(); ++i)
        if (needs[i]) r[i] = to_dtype(narrow(g[0], dim, starts[i], lengths[i]), dtypes[i]);
      return r;
    });
  }
  return out;
}

}  // namespace nc
