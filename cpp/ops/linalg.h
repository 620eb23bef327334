#pragma once
// Matrix products on the GEMM kernels. Transposed operands are passed to GEMM as flags, never
// copied.
#include "core/tensor.h"

namespace nc {

Tensor matmul(const Tensor& a, const Tensor& b);  // numpy/PyTorch matmul semantics, batched
// y = x W^T + b over the last dim of x; W is (out, in) as in nn.Linear; bias may be undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);
// Gradients {x, weight, bias} of linear (those `needs` asks for) from the output's gradient,
// from differentiable ops (so double backward works).
TensorList linear_backward(const Tensor& grad_out, const Tensor& x, const Tensor& weight,
                           const std::vector<bool>& needs);

}  // namespace nc
