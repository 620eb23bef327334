#pragma once
// Shape ops. Views share storage with their input (and its version counter); their backward
// maps the gradient back to the input's shape.
#include "core/tensor.h"

namespace nc {

Tensor view(const Tensor& t, Shape shape);     // contiguous-compatible only, one -1 allowed
Tensor reshape(const Tensor& t, Shape shape);  // a view when possible, else a copy
Tensor expand(const Tensor& t, const Shape& shape);  // broadcast with stride 0 (-1 keeps a dim)
Tensor permute(const Tensor& t, Shape dims);
Tensor transpose(const Tensor& t, int64_t d0, int64_t d1);
Tensor squeeze(const Tensor& t);                // all size-1 dims
Tensor squeeze_dim(const Tensor& t, int64_t dim);
Tensor unsqueeze(const Tensor& t, int64_t dim);
Tensor flatten(const Tensor& t, int64_t start_dim, int64_t end_dim);
// Fills in one -1 in `shape` from t's numel; checks the element count matches.
Shape infer_shape(Shape shape, int64_t numel, const Shape& from, const char* op);

}  // namespace nc
