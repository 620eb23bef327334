#pragma once
// Image resampling for data augmentation: each output pixel of each image reads the input at an
// affine function of its coordinates (rotation, flip, crop, resize and translation are all such
// maps), with nearest or bilinear interpolation. Every output pixel is computed on its own, so
// results never depend on how rows are split between threads.
#include <cstdint>

#include "kernels/isa_list.h"

namespace nc::kernels {

enum EdgeMode : int {
  kEdgeFill = 0,     // outside taps are missing; blended with fill[c] by their weight (torchvision)
  kEdgeClamp = 1,    // the point is clamped into the image (resize; Keras fill_mode='nearest')
  kEdgeReflect = 2,  // the point is mirrored about the image borders (Keras fill_mode='reflect')
};

template <class T>
struct ImageFns {
  // x: (n, c, h, w), y: (n, c, oh, ow), both contiguous float32. theta: n x 6 floats; output
  // pixel (i, j) reads input point (sx, sy) = (t0 j + t1 i + t2, t3 j + t4 i + t5) in pixel
  // indices. bilinear: false = nearest (round half to even). edge: how a point outside the image
  // reads it (see EdgeMode). Computes output rows [row_begin, row_end) of the n * oh rows.
  void (*affine_sample)(const T* x, T* y, int64_t n, int64_t c, int64_t h, int64_t w, int64_t oh,
                            int64_t ow, const float* theta, bool bilinear, int edge, const T* fill,
                            int64_t row_begin, int64_t row_end);
};

// Float32 only.
struct ImageKernels {
  ImageFns<float> f32;
};

NC_KERNEL_FAMILY(ImageKernels, image)

}  // namespace nc::kernels
