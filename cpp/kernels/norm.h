#pragma once
// Inner loops of batch_norm / layer_norm on contiguous runs, compiled per ISA. Sums run in double
// with 8 interleaved accumulators in an order fixed by the length alone (no reassociation), so a
// caller that fixes its chunking gets results independent of the thread count.
#include <cstdint>

#include "kernels/isa_list.h"

namespace nc::kernels {

template <class T>
struct NormOps {
  double (*sum)(const T* x, int64_t n);                                 // sum x
  double (*sqdev)(const T* x, int64_t n, double m);                     // sum (x - m)^2
  double (*dotdev)(const T* g, const T* x, int64_t n, double m);        // sum g * (x - m)
  double (*wsum)(const T* g, const T* w, int64_t n);                    // sum g * w (w may be null: sum g)
  double (*wdotdev)(const T* g, const T* w, const T* x, int64_t n, double m);  // sum g * w * (x - m)
  void (*axpb)(const T* x, T* y, int64_t n, T a, T b);                  // y = x * a + b
  void (*bn_grad)(const T* g, const T* x, T* out, int64_t n, T a, T k, T c);   // out = g*a + x*k + c
  // y = (x - m) * is * w + b (w, b may be null)
  void (*ln_forward)(const T* x, const T* w, const T* b, T* y, int64_t n, T m, T is);
  // out = is * (g*w - a - (x - m) * is * c) (w may be null)
  void (*ln_grad)(const T* g, const T* w, const T* x, T* out, int64_t n, double m, double is, double a, double c);
  // aw += g * (x - m) * is; ab += g (one row's share of the weight and bias gradients)
  void (*ln_param_grad)(const T* g, const T* x, double* aw, double* ab, int64_t n, double m, double is);
};

struct NormKernels {
  NormOps<float> f32;
  NormOps<double> f64;
};

NC_KERNEL_FAMILY(NormKernels, norm)

template <class T>
const NormOps<T>& norm_ops() {
  if constexpr (sizeof(T) == 4) return norm().f32;
  else return norm().f64;
}

}  // namespace nc::kernels
