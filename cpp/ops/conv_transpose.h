#pragma once
// Transposed 2-D convolution (PyTorch's conv_transpose2d): the gradient of conv2d with respect
// to its input, with a bias. Input (N, in, H, W), weight (in, out/groups, kh, kw), output
// (N, out, OH, OW) with OH = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1.
// conv_transpose1d is this with a unit height (done in Python).
#include <string>

#include "core/tensor.h"

namespace nc {

struct ConvTranspose2dParams {
  int64_t sh = 1, sw = 1;
  int64_t ph = 0, pw = 0;    // removed from both sides of the output
  int64_t oph = 0, opw = 0;  // added at the bottom/right of the output; < stride or < dilation
  int64_t dh = 1, dw = 1;
  int64_t groups = 1;
};

// Differentiable to any order: the forward and both gradients are the conv2d ops of conv.h
// with the roles of input and output swapped.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvTranspose2dParams& p,
                        const std::string& op = "conv_transpose2d");

}  // namespace nc
