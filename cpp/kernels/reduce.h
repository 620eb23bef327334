#pragma once
// Reductions over contiguous runs, compiled per ISA. Sums accumulate in double in one fixed order
// that both builds follow exactly, so a sum never depends on the ISA path or on how the caller
// split the work between threads (callers split into fixed-size chunks, see ops/reduce.cpp).
#include <cstdint>

#include "kernels/isa_list.h"

namespace nc::kernels {

template <class T>
struct ReduceFns {
  // Sum of x[0..n) in double: element i goes to partial sum i % 32, and the 32 partials are
  // added pairwise (p[k] += p[k + 16], then + 8, 4, 2, 1).
  double (*sum)(const T* x, int64_t n);
  // acc[i] += x[i] for i < n (one row of a sum over rows).
  void (*accumulate)(double* acc, const T* x, int64_t n);
  // The largest (is_max) or smallest element of x[0..n), n >= 1; NaN if any element is NaN.
  // Of equal elements (+0 and -0) any may be returned: callers that need the first one look it up.
  T (*extreme)(const T* x, int64_t n, bool is_max);
};

struct ReduceKernels {
  ReduceFns<float> f32;
  ReduceFns<double> f64;
};

NC_KERNEL_FAMILY(ReduceKernels, reduce)

}  // namespace nc::kernels
