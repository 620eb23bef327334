#pragma once
// Optimizer update loops on raw contiguous buffers (compiled per ISA so they vectorise with
// AVX2). The formulas and their order of operations follow PyTorch's single-tensor optimizers.
#include <cstdint>

#include "kernels/isa_list.h"

namespace nc::kernels {

template <class T>
struct AdamArgs {
  T* param;
  const T* grad;
  T* exp_avg;
  T* exp_avg_sq;
  T* max_exp_avg_sq;  // null unless amsgrad
  int64_t n;
  T step_size, bias_correction2_sqrt, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay;
  bool maximize, decoupled;
};

template <class T>
struct SgdArgs {
  T* param;
  const T* grad;
  T* momentum_buffer;  // null without momentum
  int64_t n;
  T neg_lr, weight_decay, momentum, one_minus_dampening;
  bool maximize, nesterov, first_step;
};

template <class T>
struct OptimFns {
  void (*adam)(const AdamArgs<T>& a, int64_t begin, int64_t end);
  void (*sgd)(const SgdArgs<T>& a, int64_t begin, int64_t end);
};

struct OptimKernels {
  OptimFns<float> f32;
  OptimFns<double> f64;
};

NC_KERNEL_FAMILY(OptimKernels, optim)

}  // namespace nc::kernels
