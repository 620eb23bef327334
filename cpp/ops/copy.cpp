#include "ops/copy.h"

#include <cstring>

#include "core/autograd.h"
#include "core/iter.h"
#include "ops/creation.h"
#include "ops/reduce.h"

namespace nc {

namespace {

// Contiguous dst from src broadcast from a single element (all strides 0), e.g. the gradient of
// sum() made dense: a parallel fill the compiler vectorises.
bool fill_from_single(const Tensor& dst, const Tensor& src, const Shape& src_strides) {
  if (!dst.is_contiguous() || dst.numel() < 2) return false;
  for (int64_t st : src_strides)
    if (st != 0) return false;
  dispatch_storage(dst.dtype(), [&](auto dtag) {
    using D = typename decltype(dtag)::type;
    dispatch_storage(src.dtype(), [&](auto stag) {
      using S = typename decltype(stag)::type;
      const D v = convert_element<D>(*src.data<S>());
      D* d = dst.data<D>();
      parallel_for(0, dst.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) d[i] = v;
      });
    });
  });
  return true;
}

}  // namespace

void copy_raw(const Tensor& dst, const Tensor& src) {
  Shape sst = broadcast_strides(src, dst.shape(), "copy_");
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous() &&
      src.shape() == dst.shape()) {
    std::memcpy(dst.raw_data(), src.raw_data(), dst.numel() * dst.itemsize());
    return;
  }
  if (fill_from_single(dst, src, sst)) return;
  dispatch_storage(dst.dtype(), [&](auto dtag) {
    using D = typename decltype(dtag)::type;
    dispatch_storage(src.dtype(), [&](auto stag) {
      using S = typename decltype(stag)::type;
      strided_loop<2>(dst.shape(), {dst.strides(), sst}, {sizeof(D), sizeof(S)},
                      {static_cast<char*>(dst.raw_data()), static_cast<char*>(src.raw_data())},
                      [](const std::array<char*, 2>& p, const std::array<int64_t, 2>& st, int64_t n) {
                        char* d = p[0];
                        const char* s = p[1];
                        for (int64_t i = 0; i < n; ++i, d += st[0], s += st[1])
                          *reinterpret_cast<D*>(d) = convert_element<D>(*reinterpret_cast<const S*>(s));
                      });
    });
  });
}

bool overlaps(const Tensor& out, const Tensor& v) {
  if (v.numel() == 0 || out.numel() == 0) return false;
  if (v.raw_data() == out.raw_data() && v.shape() == out.shape() && v.strides() == out.strides()) return false;
  auto extent = [](const Tensor& t) {
    const char* lo = static_cast<const char*>(t.raw_data());
    const char* hi = lo;
    for (int64_t d = 0; d < t.dim(); ++d) {
      const int64_t span = (t.shape()[d] - 1) * t.strides()[d] * static_cast<int64_t>(t.itemsize());
      (span < 0 ? lo : hi) += span;
    }
    return std::make_pair(lo, hi + t.itemsize());
  };
  const auto [olo, ohi] = extent(out);
  const auto [vlo, vhi] = extent(v);
  return vlo < ohi && olo < vhi;
}

void copy_(const Tensor& dst, const Tensor& src) {
  prepare_inplace(dst, "copy_", {src});
  // x[1:].copy_(x[:-1]), x.copy_(x.t()): the values from before the write, as into a new tensor.
  copy_raw(dst, overlaps(dst, src) ? clone(detach(src)) : src);
  dst.bump_version();
  if (needs_history({dst, src})) {
    Shape src_shape = src.shape();
    DType src_dtype = src.dtype();
    set_history("copy_", {dst, src}, {dst}, [src_shape, src_dtype](const TensorList& g, const std::vector<bool>& needs) {
      TensorList r(2);
      if (needs[0]) r[0] = zeros_like(g[0]);
      if (needs[1]) r[1] = to_dtype(sum_to(g[0], src_shape), src_dtype);
      return r;
    });
  }
}

Tensor clone(const Tensor& t) {
  Tensor out = Tensor::empty(t.shape(), t.dtype());
  copy_raw(out, t);
  if (needs_history({t}))
    set_history("clone", {t}, {out}, [](const TensorList& g, const std::vector<bool>&) { return TensorList{g[0]}; });
  return out;
}

Tensor contiguous(const Tensor& t) { return t.is_contiguous() ? t : clone(t); }

Tensor to_dtype(const Tensor& t, DType d) {
  if (t.dtype() == d) return t;
  Tensor out = Tensor::empty(t.shape(), d);
  copy_raw(out, t);
  if (is_float_type(d) && needs_history({t})) {
    DType src = t.dtype();
    set_history("to", {t}, {out}, [src](const TensorList& g, const std::vector<bool>&) {
      return TensorList{to_dtype(g[0], src)};
    });
  }
  return out;
}

}  // namespace nc
