#include "ops/embedding.h"

#include <cmath>
#include <cstring>

#include "core/autograd.h"
#include "core/parallel.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/elementwise.h"
#include "ops/gather.h"
#include "ops/shape.h"

namespace nc {

namespace {

void check_table(const Tensor& weight, const char* op) {
  NC_CHECK(weight.dim() == 2, ValueError, "[", op, "] weight must be 2-D (num_embeddings, embedding_dim), got shape ",
           shape_str(weight.shape()));
}

// The indices as a contiguous int64 tensor, every value checked against the table size.
Tensor checked_indices(const Tensor& indices, const Tensor& weight, const char* op) {
  NC_CHECK(indices.dtype() == DType::Int64, TypeError, "[", op, "] indices must be an int64 tensor, got ",
           dtype_name(indices.dtype()), " (indices shape ", shape_str(indices.shape()), ")");
  Tensor idx = contiguous(indices);
  const int64_t rows = weight.shape()[0], n = idx.numel();
  const int64_t* ip = idx.data<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    if (ip[i] < 0 || ip[i] >= rows)
      throw IndexError(cat_str("[", op, "] index ", ip[i], " is out of range for a table of ", rows,
                               " rows (weight shape ", shape_str(weight.shape()), ", indices shape ",
                               shape_str(indices.shape()), ")"));
  return idx;
}

// grad_weight (rows x dim, zeroed) += g[i, :] * scale(i) at row idx[i], skipping padding_idx.
// Threads split the columns; each column adds the indices in their order, so the sums do not
// depend on the thread count.
template <class T>
void scatter_rows(const int64_t* idx, int64_t n, const T* g, T* gw, int64_t rows, int64_t dim, int64_t padding_idx,
                  bool scale_by_freq) {
  std::vector<int64_t> counts;
  if (scale_by_freq) {
    counts.assign(rows, 0);
    for (int64_t i = 0; i < n; ++i) ++counts[idx[i]];
  }
  const int64_t grain = std::max<int64_t>(16, 32768 / std::max<int64_t>(n, 1));
  parallel_for(0, dim, grain, [&](int64_t c0, int64_t c1) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = idx[i];
      if (r == padding_idx) continue;
      const T s = scale_by_freq ? T(1) / T(counts[r]) : T(1);
      const T* src = g + i * dim;
      T* dst = gw + r * dim;
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c] * s;
    }
  });
}

}  // namespace

Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx, bool scale_grad_by_freq) {
  check_table(weight, "embedding");
  NC_CHECK(is_floating(weight.dtype()), TypeError, "[embedding] weight must be float32 or float64, got ",
           dtype_name(weight.dtype()));
  const int64_t rows = weight.shape()[0], dim = weight.shape()[1];
  NC_CHECK(padding_idx >= -1 && padding_idx < rows, ValueError, "[embedding] padding_idx ", padding_idx,
           " is out of range for a table of ", rows, " rows");
  Tensor idx = checked_indices(indices, weight, "embedding");
  Tensor w = contiguous(weight);
  Shape out_shape = indices.shape();
  out_shape.push_back(dim);
  Tensor out = Tensor::empty(out_shape, weight.dtype());
  const int64_t n = idx.numel(), row_bytes = dim * int64_t(weight.itemsize());
  const int64_t* ip = idx.data<int64_t>();
  const char* src = static_cast<const char*>(w.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  parallel_for(0, n, std::max<int64_t>(1, 65536 / std::max<int64_t>(row_bytes, 1)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) std::memcpy(dst + i * row_bytes, src + ip[i] * row_bytes, row_bytes);
  });
  if (needs_history({weight})) {
    Shape wshape = weight.shape();
    set_history("embedding", {weight}, {out},
                [idx, wshape, padding_idx, scale_grad_by_freq](const TensorList& g, const std::vector<bool>&) {
                  const int64_t rows = wshape[0], dim = wshape[1], n = idx.numel();
                  if (GradMode::is_enabled()) {
                    // create_graph: the same sum from differentiable ops (scatter_add's gradient is a gather).
                    Tensor g2 = reshape(g[0], {n, dim});
                    if (padding_idx >= 0 || scale_grad_by_freq) {
                      Tensor scale = Tensor::empty({n, 1}, g2.dtype());
                      std::vector<int64_t> counts(rows, 0);
                      const int64_t* ip = idx.data<int64_t>();
                      for (int64_t i = 0; i < n; ++i) ++counts[ip[i]];
                      dispatch_floating(g2.dtype(), "embedding", [&](auto tag) {
                        using T = typename decltype(tag)::type;
                        for (int64_t i = 0; i < n; ++i)
                          scale.data<T>()[i] = ip[i] == padding_idx ? T(0) : scale_grad_by_freq ? T(1) / T(counts[ip[i]]) : T(1);
                      });
                      g2 = mul(g2, scale);
                    }
                    Tensor index = contiguous(expand(reshape(idx, {n, 1}), {n, dim}));
                    return TensorList{scatter_add_new(wshape, 0, index, g2)};
                  }
                  Tensor gc = contiguous(g[0]);
                  Tensor gw = zeros(wshape, gc.dtype());
                  dispatch_floating(gc.dtype(), "embedding", [&](auto tag) {
                    using T = typename decltype(tag)::type;
                    scatter_rows<T>(idx.data<int64_t>(), n, gc.data<T>(), gw.data<T>(), rows, dim, padding_idx,
                                    scale_grad_by_freq);
                  });
                  return TensorList{gw};
                });
  }
  return out;
}

void embedding_renorm_(const Tensor& weight, const Tensor& indices, double max_norm, double norm_type) {
  check_table(weight, "embedding_renorm_");
  NC_CHECK(weight.is_contiguous(), ValueError, "[embedding_renorm_] weight must be contiguous, got strides ",
           shape_str(weight.strides()));
  NC_CHECK(max_norm >= 0, ValueError, "[embedding_renorm_] max_norm must be non-negative, got ", max_norm);
  Tensor idx = checked_indices(indices, weight, "embedding_renorm_");
  const int64_t rows = weight.shape()[0], dim = weight.shape()[1], n = idx.numel();
  std::vector<char> seen(rows, 0);
  const int64_t* ip = idx.data<int64_t>();
  dispatch_floating(weight.dtype(), "embedding_renorm_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = ip[i];
      if (seen[r]) continue;
      seen[r] = 1;
      T* row = weight.data<T>() + r * dim;
      double norm = 0;
      if (norm_type == 1) {
        for (int64_t c = 0; c < dim; ++c) norm += std::abs(double(row[c]));
      } else if (norm_type == 2) {
        for (int64_t c = 0; c < dim; ++c) norm += double(row[c]) * double(row[c]);
        norm = std::sqrt(norm);
      } else if (std::isinf(norm_type)) {
        for (int64_t c = 0; c < dim; ++c) norm = std::max(norm, std::abs(double(row[c])));
      } else {
        for (int64_t c = 0; c < dim; ++c) norm += std::pow(std::abs(double(row[c])), norm_type);
        norm = std::pow(norm, 1.0 / norm_type);
      }
      if (norm > max_norm) {
        const T scale = static_cast<T>(max_norm / (norm + 1e-7));
        for (int64_t c = 0; c < dim; ++c) row[c] *= scale;
      }
    }
  });
  weight.bump_version();
}

}  // namespace nc
