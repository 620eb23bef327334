#pragma once
// Image resampling for data augmentation (neurocore.transforms): no autograd, float32 images.
#include <vector>

#include "core/tensor.h"

namespace nc {

// (n, c, oh, ow) images read from x (n, c, h, w) at the affine map theta (n, 2, 3) of each output
// pixel's (column, row) indices; see kernels/image.h for nearest/bilinear and the edge modes.
Tensor affine_sample(const Tensor& x, const Tensor& theta, int64_t oh, int64_t ow, bool bilinear, int edge,
                     const std::vector<double>& fill);

}  // namespace nc
