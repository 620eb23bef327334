#pragma once
// 2-D pooling over runs of contiguous (H, W) planes, compiled per ISA. Callers split the planes
// between threads; every output is computed from its own window in one fixed order (window rows
// top to bottom, columns left to right), and the vectorised paths (whole rows of outputs at a
// time) do per output exactly the operations of the scalar path, so results depend neither on
// the thread count nor on which path ran.
#include <cstdint>

#include "kernels/isa_list.h"

namespace nc::kernels {

struct PoolGeometry {
  int64_t h = 1, w = 1;    // input plane
  int64_t oh = 1, ow = 1;  // output plane
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  // Average pooling only: the divisor is divisor_override when > 0, else the window area clipped
  // to the padded input (count_include_pad) or to the input (PyTorch's rule).
  bool count_include_pad = true;
  int64_t divisor_override = 0;
};

// Tap numbers i * kw + j fit a byte for windows of at most 255 taps; this one marks a window
// with no tap inside the plane.
constexpr int64_t kPoolNoTap = 255;

template <class T>
struct PoolFns {
  // y = the max of each window, and where it is: idx (unless null) = the flat position iy * w + ix
  // in its input plane, or tap (unless null; kh * kw < 255) = the tap number i * kw + j in its
  // window, an eighth of the memory for a backward that needs nothing else. A NaN in the window
  // wins (the last NaN); among equal maxima the first wins: PyTorch's rule `v > m || isnan(v)`
  // scanned in window order.
  void (*max_forward)(const T* x, T* y, int64_t* idx, uint8_t* tap, int64_t planes, const PoolGeometry& g);
  // gx = 0, then gy[o] added at the max of window o (given by idx or by tap) within each plane.
  void (*max_backward)(const T* gy, const int64_t* idx, const uint8_t* tap, T* gx, int64_t planes,
                       const PoolGeometry& g);
  // Window averages (dilation 1), the window summed in T in window order, then divided.
  void (*avg_forward)(const T* x, T* y, int64_t planes, const PoolGeometry& g);
  // gx = 0, then gy[o] / divisor added to every element of window o, outputs in row-major order.
  void (*avg_backward)(const T* gy, T* gx, int64_t planes, const PoolGeometry& g);
  // Adaptive averages: output (oy, ox) averages rows [oy*h/oh, ceil((oy+1)*h/oh)) and likewise
  // columns. Global pooling (oh = ow = 1) sums in double with 8 accumulators.
  void (*adaptive_forward)(const T* x, T* y, int64_t planes, const PoolGeometry& g);
  void (*adaptive_backward)(const T* gy, T* gx, int64_t planes, const PoolGeometry& g);
};

struct PoolKernels {
  PoolFns<float> f32;
  PoolFns<double> f64;
  // idx = the flat positions of the maxima recorded as taps by max_forward (-1: no tap).
  void (*max_tap_positions)(const uint8_t* tap, int64_t* idx, int64_t planes, const PoolGeometry& g);
};

NC_KERNEL_FAMILY(PoolKernels, pool)

template <class T>
const PoolFns<T>& pool_fns() {
  if constexpr (sizeof(T) == 4) return pool().f32;
  else return pool().f64;
}

}  // namespace nc::kernels
