#pragma once
// Convolution kernels on raw contiguous NCHW buffers (compiled per ISA).
//  * conv2d: implicit GEMM. Per group, Y (out channels x positions) = W (out x C*kh*kw) times
//    the column matrix, which is never materialised: each 16-position panel of it is gathered
//    from the input straight into the micro-kernel's packed layout, and the weights are packed
//    once per call. Bias and ReLU are applied in the micro-kernel's store.
//  * im2col / col2im for one image: the column matrix has one row per (channel, kernel row,
//    kernel col) and one column per output position (used by the backward passes).
#include <cstdint>

#include "kernels/isa_list.h"

namespace nc::kernels {

struct Im2colGeom {
  int64_t channels, h, w;  // input image
  int64_t kh, kw, oh, ow;  // kernel, output
  int64_t sh, sw, pt, pl, dh, dw;  // stride, top/left padding, dilation
};

struct ConvGeom {
  int64_t n, groups;
  int64_t cg, h, w;        // input channels per group, input size
  int64_t og, kh, kw;      // output channels per group, kernel size
  int64_t oh, ow;          // output size
  int64_t sh, sw, pt, pl, dh, dw;  // stride, top/left padding, dilation
};

struct ConvKernels {
  // y (n, groups*og, oh, ow) = act(conv(x, w) + bias): x (n, groups*cg, h, w), w (groups*og, cg,
  // kh, kw), bias (groups*og) or null; act 0 none, 1 ReLU. Threads split the output panels; each
  // output element is computed the same way whatever the thread count.
  void (*conv2d_f32)(const float* x, const float* w, const float* bias, float* y, const ConvGeom& g, int act);
  void (*conv2d_f64)(const double* x, const double* w, const double* bias, double* y, const ConvGeom& g,
                     int act);
  // col (channels*kh*kw, oh*ow) from x (channels, h, w); out-of-range taps are zero.
  void (*im2col_f32)(const float* x, const Im2colGeom& g, float* col);
  void (*im2col_f64)(const double* x, const Im2colGeom& g, double* col);
  // Adds col back into gx (channels, h, w).
  void (*col2im_f32)(const float* col, const Im2colGeom& g, float* gx);
  void (*col2im_f64)(const double* col, const Im2colGeom& g, double* gx);
};

NC_KERNEL_FAMILY(ConvKernels, conv)

}  // namespace nc::kernels
