#pragma once
// What the convolution kernels of conv.cpp (forward, col2im, bias gradient) and conv_wgrad.cpp
// (weight gradients) share, compiled per ISA. Included only from those two files.
#include <algorithm>
#include <cstdint>

#include "kernels/conv.h"
#include "kernels/gemm_micro.h"

namespace nc::kernels::NC_ISA::conv_common {

using namespace micro;

// The outputs ox in [lo, hi) whose tap x0 + ox * s lands inside [0, w): computed once per
// kernel column, so the inner loops have no bounds checks.
inline void valid_range(int64_t x0, int64_t s, int64_t w, int64_t ow, int64_t& lo, int64_t& hi) {
  lo = x0 >= 0 ? 0 : (-x0 + s - 1) / s;
  hi = x0 >= w ? 0 : std::min(ow, (w - 1 - x0) / s + 1);
  lo = std::min(lo, ow);
  hi = std::max(hi, lo);
}

// The direct path's vectors (its forward tiles and the direct weight gradient's).
#if NC_HAVE_AVX512
template <class T>
using DirectV = V512<T>;
template <class T>
constexpr int kLanes = V512<T>::W;
#elif NC_HAVE_AVX2
template <class T>
using DirectV = V<T>;
template <class T>
constexpr int kLanes = V<T>::W;
#else
template <class T>
constexpr int kLanes = 32 / int(sizeof(T));
#endif

// The weight gradients (conv_wgrad.cpp), for the table in conv.cpp; their contracts are ConvFns'
// (conv.h). Instantiated there for float and double.
template <class T>
void conv2d_weight_grad_direct(const T* x, const T* gy, T* gw, const ConvGeom& g, int64_t n0, int64_t n1);
template <class T>
void conv2d_weight_grad_implicit(const T* x, const T* gy, T* gwt, const ConvGeom& g, int64_t n0, int64_t n1,
                                 int64_t gi, int64_t r0, int64_t r1);

}  // namespace nc::kernels::NC_ISA::conv_common
