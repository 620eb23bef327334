#pragma once
// Tensor factories (no autograd history; the Python layer sets requires_grad).
#include "core/tensor.h"

namespace nc {

Tensor full(const Shape& shape, Scalar value, DType dtype);
Tensor zeros(const Shape& shape, DType dtype);
Tensor ones(const Shape& shape, DType dtype);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, Scalar value);
Tensor empty_like(const Tensor& t);
// Fills t in place (bumps its version; refused on a leaf that requires grad while recording).
void fill_(const Tensor& t, Scalar value);

}  // namespace nc
