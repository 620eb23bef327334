#pragma once
// softmax / log_softmax along one dim: numerically stable (max subtracted), one fused pass per
// row forward and backward.
#include "core/tensor.h"

namespace nc {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace nc
