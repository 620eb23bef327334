#pragma once
// Normalisation layers: batch_norm over (N, C, *) per channel, layer_norm and rms_norm over the
// trailing normalized_shape. Fused forward (statistics in double from fixed-size chunks, so results do not
// depend on the thread count; normalise + affine in one pass) and fused backward; under
// create_graph the backward is built from differentiable ops so higher-order gradients are right.
#include "core/tensor.h"

namespace nc {

// running_mean / running_var may be undefined (no tracking); when training and defined they are
// updated in place as PyTorch does: r = (1 - momentum) * r + momentum * stat, with the unbiased
// variance for running_var. weight / bias may be undefined (no affine).
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum, double eps);

Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps);

// x / sqrt(mean(x^2 over normalized_shape) + eps) * weight (weight may be undefined).
Tensor rms_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight, double eps);

}  // namespace nc
