#pragma once
// Convolution kernels on raw contiguous NCHW buffers (compiled per ISA).
//  * conv2d, two paths chosen by conv_direct() below:
//    - direct, for layers with few taps per output (cg*kh*kw <= kDirectMaxTaps, stride 1 along
//      rows): no packing of the input. Each tile is up to 6 output channels (8 in the avx512
//      build; 1 when a group has a single output channel, as in a depthwise layer) times a run
//      of consecutive output positions along one output row held in vector registers (16 floats
//      per vector in the avx512 build, 8 otherwise); every tap adds one broadcast
//      weight times one load from a zero-padded copy of the input rows under the output row (no
//      masked loads). Bias and ReLU in the store. The input gradient of every layer runs on
//      conv2d too, one call per phase of the stride (ops/conv.cpp).
//    - implicit GEMM otherwise. Per group, Y (out channels x positions) = W (out x C*kh*kw) times
//      the column matrix, which is never materialised: each 16-position panel of it (32 in the
//      avx512 build) is gathered from the input straight into the micro-kernel's packed layout,
//      and the weights are packed once per call. Bias and ReLU are applied in the micro-kernel's
//      store.
//    - Winograd (conv_winograd.{h,cpp}), float32 only, where conv_winograd() below holds (3x3,
//      stride 1, dilation 1, enough channels): each output tile of 4x4 is A^T [U . V] A with
//      U = G w G^T (weights, 6x6 per channel pair) and V = B^T d B (the 6x6 input tile d), so the
//      36 element-wise products summed over input channels are 36 GEMMs (out x in channels) x
//      (in channels x tiles) on the packed micro-kernel (2.25 multiplies per output and channel pair
//      instead of 9). Tiles are numbered across the batch and taken 16 at a time (one per lane of
//      the micro-kernel's packed B panel, which the input transform writes directly); the output
//      transform adds the bias, applies the ReLU and stores. Its rounding differs from direct
//      summation (relative to the sum of |products|, about 10x larger; see
//      tests/test_conv_winograd.py); inputs holding inf or NaN take the other paths, which give
//      the mathematical result. The input gradient of such a layer (ops/conv.cpp) runs on it too
//      (gy padded, flipped weights), or, where the output takes fewer tiles than that (no padding,
//      13x13 -> 11x11: 9 against 16), on WinogradKernels::input_grad_f32, the forward's adjoint.
//  * conv2d_weight_grad_direct: the weight gradient of a direct-path layer read straight from
//    the input and the output gradient (no column matrix), where conv_weight_grad_direct() says.
//  * conv2d_weight_grad_implicit: the weight gradient of every other layer as a GEMM over the
//    output positions whose column panels are gathered from the input straight into the
//    micro-kernel's packed layout (no column matrix). Float32 Winograd layers take
//    WinogradKernels::weight_grad_f32 (conv_winograd.h) instead, where x and gy are finite, from
//    the forward's transform of x where the forward kept it (conv2d_keeping_input_f32).
//  * bias_grad: per-channel sums of the output gradient.
//  * col2im for one image: adds a column matrix (one row per (channel, kernel row, kernel col),
//    one column per output position) back into an image (the transposed convolution's forward,
//    in ops/conv_transpose.cpp and the runtime; conv2d itself builds no column matrix).
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

// Taps per output (cg*kh*kw) up to which the direct path runs: the first layers of image models
// (3 x 3x3 = 27, 1 x 3x3 = 9) and depthwise layers. Past it the implicit GEMM's packed panels
// pay for themselves (its micro-kernel runs a longer k loop per store).
constexpr int64_t kDirectMaxTaps = 32;

// The rule that picks the forward path (and the weight gradient's): stride 1 along rows, so that
// a run of output positions reads a contiguous stretch of each input row.
inline bool conv_direct(const ConvGeom& g) { return g.sw == 1 && g.cg * g.kh * g.kw <= kDirectMaxTaps; }

// Winograd (conv_winograd.{h,cpp}, float32 only) for 3x3 kernels, stride 1, dilation 1, any padding,
// with at least kWinogradMinChannels input and output channels per group. Measured on Zen 3 (2
// threads, 16x16 images, padding 1, Winograd vs implicit GEMM): batch 64 with 8 channels in and
// out 0.86x, 12: 1.7x, 16: 1.8x, 32: 2.4x-3.8x; batch 8 on 32x32, 8 channels: 1.4x, 12: 1.5x,
// 16: 1.5x; batch 1, 8..64 channels: 0.93x-1.2x (32 -> 64: 81 -> 72 us). The break-even lies
// near 8-12 channels; 16 keeps every measured batch-8+ case at >= 1.5x (and narrower layers on
// the implicit GEMM, whose rounding the float32 tests of test_conv.py were tuned for).
constexpr int64_t kWinogradMinChannels = 16;
inline bool conv_winograd(const ConvGeom& g) {
  return g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         g.cg >= kWinogradMinChannels && g.og >= kWinogradMinChannels;
}

// The weight gradient reads x and gy directly (conv2d_weight_grad_direct, dot products along the
// positions) for direct-path layers with at most 3 output channels per group (depthwise layers):
// the implicit-GEMM weight gradient's 16-channel panels would be mostly zero padding there.
// Everything else takes conv2d_weight_grad_implicit. Measured on Zen 3 (1 thread, batch 64/128,
// weight gradient alone, ms, noisy machine): 3->32 3x3 pad 1 on 32x32: implicit 2.4-2.6, direct
// (zero-padded copy, no masks) 3.1, im2col + GEMM 2.6; 1->32 3x3 on 28x28: implicit 1.6-2.7,
// direct 2.4-2.6.
constexpr int64_t kDirectWeightGradMaxOg = 3;
inline bool conv_weight_grad_direct(const ConvGeom& g) { return conv_direct(g) && g.og <= kDirectWeightGradMaxOg; }

template <class T>
struct ConvFns {
  // y (n, groups*og, oh, ow) = act(conv(x, w) + bias): x (n, groups*cg, h, w), w (groups*og, cg,
  // kh, kw), bias (groups*og) or null; act 0 none, 1 ReLU. Threads split the output; each output
  // element is computed the same way whatever the thread count.
  void (*conv2d)(const T* x, const T* w, const T* bias, T* y, const ConvGeom& g, int act);
  // gw (groups*og, cg, kh, kw) = the weight gradient summed over images [n0, n1) of x and gy
  // (n, groups*og, oh, ow), in image order; for geometries where conv_direct(g) holds.
  // Single-threaded (callers split the batch into fixed chunks).
  void (*conv2d_weight_grad_direct)(const T* x, const T* gy, T* gw, const ConvGeom& g, int64_t n0, int64_t n1);
  // gwt ([group][cg*kh*kw][og]: the weight gradient transposed), rows [r0, r1) of group gi only,
  // = the sum over images [n0, n1), in image order, of the column matrix times gy^T, for any
  // geometry: the column panels are gathered from x straight into the GEMM micro-kernel's packed
  // layout (no column matrix). The rows are overwritten; each row's sum does not depend on the
  // row range, so callers may split rows between threads freely. Single-threaded.
  void (*conv2d_weight_grad_implicit)(const T* x, const T* gy, T* gwt, const ConvGeom& g, int64_t n0, int64_t n1,
                                      int64_t gi, int64_t r0, int64_t r1);
  // The bias gradient: gb[c] = sum over images i (in order) of the sum of gy[i, c] (n, channels,
  // plane); channels [c0, c1) only (callers split channels between threads).
  void (*bias_grad)(const T* gy, int64_t n, int64_t channels, int64_t plane, int64_t c0, int64_t c1, T* gb);
  // Adds col back into gx (channels, h, w).
  void (*col2im)(const T* col, const Im2colGeom& g, T* gx);
};

struct ConvKernels {
  ConvFns<float> f32;
  ConvFns<double> f64;
};

NC_KERNEL_FAMILY(ConvKernels, conv)

// The table of element type T.
template <class T>
const ConvFns<T>& conv_fns() {
  if constexpr (sizeof(T) == 4)
    return conv().f32;
  else
    return conv().f64;
}

}  // namespace nc::kernels
