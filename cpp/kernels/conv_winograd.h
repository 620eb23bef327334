#pragma once
// Winograd convolution for 3x3, stride-1, dilation-1 layers (float32), compiled per ISA. The
// kernel-level conv2d (conv.cpp) hands it the geometries where conv_winograd() (conv.h) holds;
// the method and its layout are described in conv.h's header comment and in conv_winograd.cpp
// (the forward; the backward is in conv_winograd_backward.cpp).
#include "kernels/conv.h"
#include "kernels/isa_list.h"

namespace nc::kernels {

struct WinogradKernels {
  // The contract of ConvFns<float>::conv2d (same arguments, same result up to rounding) for a
  // geometry with kh = kw = 3, stride 1 and dilation 1; any padding, size, groups and batch.
  // Returns false when x or w holds an inf or NaN (see the .cpp); y is then to be overwritten.
  bool (*conv2d_f32)(const float* x, const float* w, const float* bias, float* y, const ConvGeom& g, int act);
  // The weights' transform alone, for callers that keep it between calls (a layer in eval, the
  // runtime's constant weights): weights_elems(g) floats, which depend on groups, og and cg only
  // (and on this kernel build's panel layout). Returns false when w holds an inf or NaN.
  int64_t (*weights_elems)(const ConvGeom& g);
  bool (*transform_weights)(const float* w, const ConvGeom& g, float* u);
  // conv2d_f32 with u from transform_weights of the same weights (bit-identical results).
  bool (*conv2d_transformed_f32)(const float* x, const float* u, const float* bias, float* y, const ConvGeom& g,
                                 int act);
  // conv2d_f32 that also keeps the input's transform, which the weight gradient would otherwise
  // make again: x_transform (input_transform_elems(g) floats, about 2.3 per value of x for 16x16 images)
  // for weight_grad_f32. Returns false as conv2d_f32 does (x_transform then unspecified).
  int64_t (*input_transform_elems)(const ConvGeom& g);
  bool (*conv2d_keeping_input_f32)(const float* x, const float* w, const float* bias, float* y, const ConvGeom& g,
                                   int act, float* x_transform);
  // The weight gradient of such a layer (3x3, stride 1, dilation 1): gwt ([group][cg*9][og], the
  // weight gradient transposed), group gi's rows, = the sum over images [n0, n1) (F(4x4, 3x3)'s
  // adjoint: see conv_winograd_backward.cpp), from x_transform (conv2d_keeping_input_f32's, of
  // the whole batch; the same result) or, where that is null, from x. Single-threaded. Returns
  // false (gwt then unspecified) when x or gy holds an inf or NaN.
  bool (*weight_grad_f32)(const float* x, const float* x_transform, const float* gy, float* gwt, const ConvGeom& g,
                          int64_t n0, int64_t n1, int64_t gi);
  // The input gradient of such a layer, the forward's adjoint on the forward's tiles (see the
  // .cpp): u ([input_grad_weights_elems] floats) from transform_weights_for_input_grad (false when
  // w holds an inf or NaN), then input_grad_f32 for images [n0, n1) of gx, every group, single-
  // threaded, false (those images then unspecified) when gy holds an inf or NaN there. Calls on
  // multiples of input_grad_images(g) images fill whole panels of tiles, and the result of an
  // image does not depend on the range it was computed in; input_grad_images is 0 where the
  // input gradient as a Winograd forward of gy (conv2d_f32 on the flipped weights) is the faster.
  int64_t (*input_grad_images)(const ConvGeom& g);
  int64_t (*input_grad_weights_elems)(const ConvGeom& g);
  bool (*transform_weights_for_input_grad)(const float* w, const ConvGeom& g, float* u);
  bool (*input_grad_f32)(const float* gy, const float* u, float* gx, const ConvGeom& g, int64_t n0, int64_t n1);
};

NC_KERNEL_FAMILY(WinogradKernels, winograd)

}  // namespace nc::kernels
