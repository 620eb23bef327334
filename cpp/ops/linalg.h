#pragma once
// Matrix products on the GEMM kernels. Transposed operands are passed to GEMM as flags, never
// copied.
#include "core/tensor.h"

namespace nc {

Tensor matmul(const Tensor& a, const Tensor& b);  // numpy/PyTorch matmul semantics, batched
// y = x W^T + b over the last dim of x; W is (out, in) as in nn.Linear; bias may be undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);
// y (rows x out_features, contiguous) = act(x W^T + bias) (act 0: none, 1: ReLU) from a copy of W
// packed once into the GEMM's panel layout and cached on W's storage, keyed on its version
// counter, offset, shape and strides (an in-place write, optimizer step or load_state_dict bumps
// the version: the next call repacks). Used only where it pays and is safe: float32/float64,
// at least kernels::kPrepackedMinRows rows, no autograd history to record for W (weight_history
// false: no_grad, or a frozen weight), and memory that nothing writes behind the version
// counter (not shared with NumPy). x is contiguous (rows x in_features), bias contiguous or
// undefined, all of W's dtype. Returns false, having written nothing, where the cache is not used.
bool linear_prepacked(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t rows, void* y, int act,
                      bool weight_history);
// Whether W's storage holds a packed copy of W that matches W as it is now (tests).
bool has_packed_weight(const Tensor& weight);
// Gradients {x, weight, bias} of linear (those `needs` asks for) from the output's gradient,
// from differentiable ops (so double backward works).
TensorList linear_backward(const Tensor& grad_out, const Tensor& x, const Tensor& weight,
                           const std::vector<bool>& needs);

}  // namespace nc
