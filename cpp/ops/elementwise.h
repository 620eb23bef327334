#pragma once
// Broadcasting arithmetic. Python numbers reach these as 0-dim tensors made by scalar_tensor().
#include "core/tensor.h"

namespace nc {

// PyTorch's promotion: a 0-dim tensor only decides the dtype when it is of a higher category
// (bool < integer < floating) than the dimensioned operand.
DType result_type(const Tensor& a, const Tensor& b);
// A 0-dim tensor holding a Python number, with the dtype it takes next to a tensor of `like`.
Tensor scalar_tensor(Scalar s, DType like);

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);  // true division: integers give float32
Tensor neg(const Tensor& a);

// In place on a (b broadcast to a's shape; the result must keep a's dtype).
void add_(const Tensor& a, const Tensor& b);
void sub_(const Tensor& a, const Tensor& b);
void mul_(const Tensor& a, const Tensor& b);
void div_(const Tensor& a, const Tensor& b);

}  // namespace nc
