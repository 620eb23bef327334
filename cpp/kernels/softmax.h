#pragma once
// Softmax / log_softmax over contiguous float32 rows (the last dimension), forward and fused
// backward. Each row is computed by one call from start to end in a fixed order (sums in fixed
// lanes, then a fixed reduction), so results never depend on how rows are split between threads.
#include <cstdint>

#include "kernels/isa_list.h"

namespace nc::kernels {

template <class T>
struct SoftmaxFns {
  // y[r, :] = (log_)softmax(x[r, :]) for `rows` rows of n elements; y must not alias x.
  void (*rows)(const T* x, T* y, int64_t rows, int64_t n, bool log);
  // softmax: gx = y * (g - sum(g * y)); log_softmax: gx = g - exp(y) * sum(g).
  void (*backward_rows)(const T* g, const T* y, T* gx, int64_t rows, int64_t n, bool log);
};

// Float32 only (other dtypes take the portable op path).
struct SoftmaxKernels {
  SoftmaxFns<float> f32;
};

NC_KERNEL_FAMILY(SoftmaxKernels, softmax)

}  // namespace nc::kernels
