#pragma once
// Image resampling for data augmentation: each output pixel of each image reads the input at an
// affine function of its coordinates (rotation, flip, crop, resize and translation are all such
// maps), with nearest or bilinear interpolation. Every output pixel is computed on its own, so
// results never depend on how rows are split between threads.
#include <cstdint>

namespace nc::kernels {

struct ImageKernels {
  // x: (n, c, h, w), y: (n, c, oh, ow), both contiguous float32. theta: n x 6 floats; output
  // pixel (i, j) reads input point (sx, sy) = (t0 j + t1 i + t2, t3 j + t4 i + t5) in pixel
  // indices. bilinear: false = nearest (round half to even). border: true clamps the point into
  // the image (resize); false treats outside taps as missing and blends with fill[c] by the
  // weight of the missing taps (torchvision's rotate/affine with a fill value).
  void (*affine_sample_f32)(const float* x, float* y, int64_t n, int64_t c, int64_t h, int64_t w, int64_t oh,
                            int64_t ow, const float* theta, bool bilinear, bool border, const float* fill,
                            int64_t row_begin, int64_t row_end);
};

namespace generic { extern const ImageKernels image_table; }
namespace avx2 { extern const ImageKernels image_table; }

const ImageKernels& image();

}  // namespace nc::kernels
