#pragma once
// 2-D convolution (NCHW, weight (out, in/groups, kh, kw)) on the kernels of kernels/conv.h, and
// 2-D pooling. conv1d/pool1d are these with a unit height (done in Python).
#include <string>
#include <utility>

#include "core/tensor.h"

namespace nc {

struct Conv2dParams {
  int64_t sh = 1, sw = 1;
  // Padding per side: top, bottom, left, right ('same' with an even effective kernel pads one
  // more at the bottom/right, as PyTorch does).
  int64_t pt = 0, pb = 0, pl = 0, pr = 0;
  int64_t dh = 1, dw = 1;
  int64_t groups = 1;
};

// The three ops record history in terms of each other, so gradients of any order exist.
// relu = true gives relu(conv2d(...)); without autograd history the ReLU is applied in the
// kernel's store (an inference fusion), otherwise it is the ordinary relu op.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
              const std::string& op = "conv2d", bool relu = false);
// d(loss)/d(input) from gy; a transposed convolution of gy with weight.
Tensor conv2d_input_grad(const Tensor& gy, const Tensor& weight, const Shape& x_shape, const Conv2dParams& p);
// d(loss)/d(bias): gy summed over images and positions, per channel (a plain sum when gy has
// autograd history).
Tensor conv2d_bias_grad(const Tensor& gy);
// d(loss)/d(weight) from the input and gy; x_transform: the Winograd forward's transform of x,
// which conv2d keeps for this when the weight needs a gradient (the same result, sooner).
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& gy, const Shape& w_shape, const Conv2dParams& p,
                          const Tensor& x_transform = Tensor());
// Whether weight's storage holds its Winograd transform (made by a forward without weight history,
// core/derived_copy.h) matching it as it is now.
bool has_winograd_weight(const Tensor& weight);

struct Pool2dParams {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  bool ceil_mode = false;
  bool count_include_pad = true;
  int64_t divisor_override = 0;  // 0: none
};

// Values and the argmax of each window as a flat index h * W + w into its input plane (an
// undefined tensor unless return_indices).
std::pair<Tensor, Tensor> max_pool2d(const Tensor& x, const Pool2dParams& p, const std::string& op = "max_pool2d",
                                     bool return_indices = true);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p, const std::string& op = "avg_pool2d");
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t oh, int64_t ow, const std::string& op = "adaptive_avg_pool2d");

}  // namespace nc
