#include "ops/reduce.h"

#include "core/autograd.h"
#include "core/parallel.h"
#include "kernels/reduce.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/elementwise.h"
#include "ops/shape.h"

namespace nc {

std::vector<bool> reduced_mask(const Shape& dims, int64_t ndim, const char* op) {
  std::vector<bool> mask(ndim, dims.empty());
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, ndim, op);
    if (ndim == 0) continue;
    NC_CHECK(!mask[w], ValueError, "[", op, "] dim ", d, " appears multiple times in the list of dims");
    mask[w] = true;
  }
  return mask;
}

Shape reduced_shape(const Shape& shape, const std::vector<bool>& mask, bool keepdim) {
  Shape out;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (!mask[i]) out.push_back(shape[i]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

namespace {

constexpr int64_t kChunk = 4096;  // fixed summation chunk: thread-count independent results

template <class T> struct AccOf { using type = T; };
template <> struct AccOf<float> { using type = double; };
template <> struct AccOf<bool> { using type = int64_t; };

// The per-ISA reduction kernels of a floating type (kernels/reduce.h).
template <class T>
const kernels::ReduceFns<T>& reduce_kernels() {
  if constexpr (std::is_same_v<T, float>) return kernels::reduce().f32;
  else return kernels::reduce().f64;
}

// Sum of p[0..n): floats through the kernels (double accumulation in a fixed order), integers
// in eight interleaved partial sums.
template <class T, class Acc>
Acc sum_run(const T* p, int64_t n) {
  if constexpr (std::is_floating_point_v<T>) {
    return reduce_kernels<T>().sum(p, n);
  } else {
    Acc a[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int k = 0; k < 8; ++k) a[k] += static_cast<Acc>(p[i + k]);
    for (; i < n; ++i) a[0] += static_cast<Acc>(p[i]);
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  }
}

// Sums a contiguous x viewed as (outer, r, inner) over r into out (outer, inner). Along a row
// (inner == 1) each row is cut into chunks of kChunk elements summed independently and then
// added in chunk order, so neither the thread count nor the split changes a bit of the result.
template <class T, class R>
void sum_middle(const T* x, R* out, int64_t outer, int64_t r, int64_t inner) {
  using Acc = typename AccOf<T>::type;
  if (inner == 1) {
    const int64_t chunks = (r + kChunk - 1) / kChunk;
    std::vector<Acc> partial(outer * chunks);
    parallel_for(0, outer * chunks, std::max<int64_t>(1, kChunk * 4 / std::max<int64_t>(r, 1)), [&](int64_t b, int64_t e) {
      for (int64_t w = b; w < e; ++w) {
        const int64_t o = w / chunks, c = w % chunks;
        partial[w] = sum_run<T, Acc>(x + o * r + c * kChunk, std::min(kChunk, r - c * kChunk));
      }
    });
    for (int64_t o = 0; o < outer; ++o) {
      Acc s = 0;
      for (int64_t c = 0; c < chunks; ++c) s += partial[o * chunks + c];
      out[o] = static_cast<R>(s);
    }
    return;
  }
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(r * inner, 1));
  parallel_for(0, outer, grain, [&](int64_t b, int64_t e) {
    std::vector<Acc> acc(inner);
    for (int64_t o = b; o < e; ++o) {
      std::fill(acc.begin(), acc.end(), Acc(0));
      const T* p = x + o * r * inner;
      for (int64_t k = 0; k < r; ++k, p += inner) {
        if constexpr (std::is_floating_point_v<T>) {
          reduce_kernels<T>().accumulate(acc.data(), p, inner);
        } else {
          for (int64_t i = 0; i < inner; ++i) acc[i] += static_cast<Acc>(p[i]);
        }
      }
      for (int64_t i = 0; i < inner; ++i) out[o * inner + i] = static_cast<R>(acc[i]);
    }
  });
}

// Sum over one dim of a contiguous tensor, keeping the dim (size 1).
Tensor sum_one_dim(const Tensor& x, int64_t d) {
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= x.shape()[i];
  for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.shape()[i];
  Shape shape = x.shape();
  const int64_t r = shape[d];
  shape[d] = 1;
  DType od = is_floating(x.dtype()) ? x.dtype() : DType::Int64;
  Tensor out = Tensor::empty(shape, od);
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_all(od, [&](auto otag) {
      using R = typename decltype(otag)::type;
      if constexpr (!std::is_same_v<R, bool>) sum_middle<T, R>(x.data<T>(), out.data<R>(), outer, r, inner);
    });
  });
  return out;
}

Tensor sum_raw(const Tensor& t, const std::vector<bool>& mask, bool keepdim) {
  Tensor x = contiguous(t);
  Shape out_shape = reduced_shape(t.shape(), mask, keepdim);
  bool all = true;
  for (bool m : mask) all = all && m;
  Tensor r;
  if (all) {
    r = sum_one_dim(x.as_strided_alias({x.numel()}, {1}, x.offset()), 0);
  } else {
    r = x;
    for (int64_t d = t.dim() - 1; d >= 0; --d)
      if (mask[d]) r = sum_one_dim(r, d);
  }
  return r.as_strided_alias(out_shape, contiguous_strides(out_shape), r.offset());
}

}  // namespace

Tensor sum(const Tensor& t, Shape dims, bool keepdim) {
  if (is_storage_dtype(t.dtype())) {  // summed as int64 / float32; 16-bit floats round back, as in PyTorch
    Tensor r = sum(to_dtype(t, compute_dtype(t.dtype())), dims, keepdim);
    return is_float_type(t.dtype()) ? to_dtype(r, t.dtype()) : r;
  }
  auto mask = reduced_mask(dims, t.dim(), "sum");
  Tensor out = sum_raw(t, mask, keepdim);
  if (needs_history({t})) {
    Shape in_shape = t.shape(), kept = reduced_shape(t.shape(), mask, true);
    set_history("sum", {t}, {out}, [in_shape, kept](const TensorList& g, const std::vector<bool>&) {
      return TensorList{expand(reshape(g[0], kept), in_shape)};
    });
  }
  return out;
}

Tensor mean(const Tensor& t, Shape dims, bool keepdim) {
  if (is_storage_dtype(t.dtype()) && is_float_type(t.dtype()))
    return to_dtype(mean(to_dtype(t, DType::Float32), dims, keepdim), t.dtype());
  NC_CHECK(is_floating(t.dtype()), TypeError, "[mean] could not infer output dtype: input dtype is ",
           dtype_name(t.dtype()), "; use a floating-point tensor");
  auto mask = reduced_mask(dims, t.dim(), "mean");
  int64_t count = 1;
  for (int64_t i = 0; i < t.dim(); ++i)
    if (mask[i]) count *= t.shape()[i];
  return div(sum(t, dims, keepdim), scalar_tensor(Scalar(static_cast<double>(count)), t.dtype()));
}

Tensor sum_to(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  const int64_t lead = t.dim() - static_cast<int64_t>(shape.size());
  NC_CHECK(lead >= 0, ValueError, "[sum_to] cannot reduce shape ", shape_str(t.shape()), " to ", shape_str(shape));
  Shape dims;
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (i < lead) dims.push_back(i);
    else if (shape[i - lead] == 1 && t.shape()[i] != 1) dims.push_back(i);
  }
  Tensor s = dims.empty() ? t : sum(t, dims, true);
  return reshape(s, shape);
}

}  // namespace nc
