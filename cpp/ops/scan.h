#pragma once
// Cumulative sum and product along one dimension (PyTorch's cumsum / cumprod). The caller picks
// the dtype (PyTorch: integers and bools accumulate as int64); float sums and products accumulate
// in double, as PyTorch's CPU kernel does.
#include "core/tensor.h"

namespace nc {

// out[i] = x[0] + ... + x[i] along dim (reverse: x[i] + ... + x[n-1], cumsum's gradient).
Tensor cumsum(const Tensor& x, int64_t dim, bool reverse = false);
// out[i] = x[0] * ... * x[i] along dim. The gradient is exact with zeros in x.
Tensor cumprod(const Tensor& x, int64_t dim);

}  // namespace nc
