#pragma once
// Indexing: basic indexing as views (ints, slices with steps, new axes), element selection by
// logical position (advanced indexing; the Python layer computes the positions), concatenation.
#include <vector>

#include "core/tensor.h"

namespace nc {

// What one input dimension becomes in a basic view: a range start + step*i for i < length, or a
// single fixed index (the dim is dropped). new_axes lists output positions of inserted size-1 dims.
struct DimSlice {
  int64_t start = 0, step = 1, length = 0;
  bool keep = true;
};
struct BasicIndex {
  std::vector<DimSlice> dims;  // one per input dim
  std::vector<int64_t> new_axes;
};

Tensor basic_index(const Tensor& x, const BasicIndex& index);
// The gradient of basic_index: g scattered into zeros of `shape` (and basic_index's own gradient).
Tensor basic_index_backward(const Tensor& g, const Shape& shape, const BasicIndex& index);

// Elements of x at logical row-major positions (int64 tensor of any shape); result has pos's shape.
Tensor take(const Tensor& x, const Tensor& positions);
// zeros(numel) with src added at positions (repeats accumulate); the gradient of take.
Tensor put_add_new(int64_t numel, const Tensor& positions, const Tensor& src);
// x[positions] = value (value broadcast to positions' shape), in place with autograd.
void put_(const Tensor& x, const Tensor& positions, const Tensor& value);

Tensor cat(const TensorList& tensors, int64_t dim);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& x, int64_t dim, int64_t index);

}  // namespace nc
