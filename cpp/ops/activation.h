#pragma once
// Activation functions (PyTorch semantics) and dropout.
#include <string>

#include "core/tensor.h"

namespace nc {

Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope);
Tensor elu(const Tensor& x, double alpha);
Tensor selu(const Tensor& x);
Tensor gelu(const Tensor& x, const std::string& approximate);  // "none" or "tanh"
Tensor silu(const Tensor& x);
Tensor mish(const Tensor& x);  // x * tanh(softplus(x))
Tensor softplus(const Tensor& x, double beta, double threshold);
Tensor hardtanh(const Tensor& x, double min_val, double max_val);
// Zeroes each element with probability p and scales the rest by 1/(1-p); identity when !training.
Tensor dropout(const Tensor& x, double p, bool training);

}  // namespace nc
