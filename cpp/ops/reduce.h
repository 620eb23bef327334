#pragma once
// Reductions. Results never depend on the thread count: each output is summed in a fixed order
// over fixed-size chunks.
#include "core/tensor.h"

namespace nc {

// dims empty = all dims. Integers and bools sum to int64.
Tensor sum(const Tensor& t, Shape dims, bool keepdim);
Tensor mean(const Tensor& t, Shape dims, bool keepdim);
// Sums a broadcast gradient back down to `shape` (the inverse of broadcasting).
Tensor sum_to(const Tensor& t, const Shape& shape);

// Normalises a dims list (negative, repeats) for a tensor of `ndim` dims; empty means all.
std::vector<bool> reduced_mask(const Shape& dims, int64_t ndim, const char* op);
// The output shape of a reduction over `mask`.
Shape reduced_shape(const Shape& shape, const std::vector<bool>& mask, bool keepdim);

}  // namespace nc

namespace nc {

// max/min along one dim: values and the index of the first extreme (NaN counts as extreme).
struct ValuesIndices {
  Tensor values, indices;
};
ValuesIndices max_dim(const Tensor& x, int64_t dim, bool keepdim, bool is_max);
// Extreme over dims (empty = all); the gradient is shared evenly among tied elements.
Tensor amax(const Tensor& x, Shape dims, bool keepdim, bool is_max);
// Index of the extreme along dim, or in the flattened tensor when dim < 0 is not given (has_dim false).
Tensor argmax(const Tensor& x, bool has_dim, int64_t dim, bool keepdim, bool is_max);
Tensor var(const Tensor& x, Shape dims, double correction, bool keepdim);
Tensor std_dev(const Tensor& x, Shape dims, double correction, bool keepdim);
Tensor logsumexp(const Tensor& x, Shape dims, bool keepdim);
// Bool reductions: all / any over dims (empty = all).
Tensor all(const Tensor& x, Shape dims, bool keepdim);
Tensor any(const Tensor& x, Shape dims, bool keepdim);

}  // namespace nc
