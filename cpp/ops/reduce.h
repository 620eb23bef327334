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
