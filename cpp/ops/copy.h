#pragma once
// Copies and conversions: the primitives every other op uses to get a contiguous buffer of the
// right dtype.
#include "core/tensor.h"

namespace nc {

// Writes src (broadcast to dst's shape, converted to dst's dtype) into dst. In place on dst.
void copy_(const Tensor& dst, const Tensor& src);
Tensor clone(const Tensor& t);             // a new contiguous tensor (differentiable)
Tensor contiguous(const Tensor& t);        // t itself when already contiguous
Tensor to_dtype(const Tensor& t, DType d); // t itself when it already has dtype d
// Raw copy without autograd: used inside ops and kernels' callers.
void copy_raw(const Tensor& dst, const Tensor& src);
// Whether writing `out` while reading `v` could change v's values before they are read (they
// share memory, other than element for element). In-place ops then read a copy of v.
bool overlaps(const Tensor& out, const Tensor& v);

}  // namespace nc
