#pragma once
// Softmax / log_softmax over contiguous float32 rows (the last dimension), forward and fused
// backward. Each row is computed by one call from start to end in a fixed order (sums in fixed
// lanes, then a fixed reduction), so results never depend on how rows are split between threads.
#include <cstdint>

namespace nc::kernels {

struct SoftmaxKernels {
  // y[r, :] = (log_)softmax(x[r, :]) for `rows` rows of n elements; y must not alias x.
  void (*rows_f32)(const float* x, float* y, int64_t rows, int64_t n, bool log);
  // softmax: gx = y * (g - sum(g * y)); log_softmax: gx = g - exp(y) * sum(g).
  void (*backward_rows_f32)(const float* g, const float* y, float* gx, int64_t rows, int64_t n, bool log);
};

namespace generic { extern const SoftmaxKernels softmax_table; }
namespace avx2 { extern const SoftmaxKernels softmax_table; }

const SoftmaxKernels& softmax();

}  // namespace nc::kernels
