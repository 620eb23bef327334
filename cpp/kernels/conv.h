#pragma once
// im2col / col2im for one image on raw contiguous buffers (compiled per ISA). The column matrix
// has one row per (channel, kernel row, kernel col) and one column per output position.
#include <cstdint>

namespace nc::kernels {

struct Im2colGeom {
  int64_t channels, h, w;  // input image
  int64_t kh, kw, oh, ow;  // kernel, output
  int64_t sh, sw, pt, pl, dh, dw;  // stride, top/left padding, dilation
};

struct ConvKernels {
  // col (channels*kh*kw, oh*ow) from x (channels, h, w); out-of-range taps are zero.
  void (*im2col_f32)(const float* x, const Im2colGeom& g, float* col);
  void (*im2col_f64)(const double* x, const Im2colGeom& g, double* col);
  // Adds col back into gx (channels, h, w).
  void (*col2im_f32)(const float* col, const Im2colGeom& g, float* gx);
  void (*col2im_f64)(const double* col, const Im2colGeom& g, double* gx);
};

namespace generic { extern const ConvKernels conv_table; }
namespace avx2 { extern const ConvKernels conv_table; }

const ConvKernels& conv();

}  // namespace nc::kernels
