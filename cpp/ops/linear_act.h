#pragma once
// The feed-forward step act(x W^T + b) of Transformer layers as one op: with ReLU (float32) the
// activation runs in the GEMM's store (kernels/gemm.h epilogue) and the backward masks the output
// gradient with the saved output, so the pre-activation is never kept; with GELU the GEMM stores
// the pre-activation once (kept for the backward) and the activation kernel writes the output.
#include <string>

#include "core/tensor.h"

namespace nc {

// x (..., in), weight (out, in), bias (out) or undefined; activation "relu" or "gelu" (exact,
// PyTorch's approximate='none'). Same values as relu/gelu(linear(x, weight, bias)).
Tensor linear_act(const Tensor& x, const Tensor& weight, const Tensor& bias, const std::string& activation);

}  // namespace nc
