#include "kernels/isa.h"
#include "kernels/optim.h"

#include <cmath>

namespace nc::kernels::NC_ISA {
namespace {

// The option flags are template parameters so that each combination is a branch-free loop the
// compiler vectorises.
template <class T, bool Maximize, bool WeightDecay, bool Decoupled, bool Amsgrad>
void adam_loop(const AdamArgs<T>& a, int64_t begin, int64_t end) {
  T* __restrict p = a.param;
  const T* __restrict g = a.grad;
  T* __restrict m = a.exp_avg;
  T* __restrict v = a.exp_avg_sq;
  T* __restrict vmax = a.max_exp_avg_sq;
  // Hyperparameters in locals: the stores through p/m/v could otherwise alias the struct's fields.
  const T decay = a.decay, wd = a.weight_decay, b1w = a.one_minus_beta1, b2 = a.beta2, b2w = a.one_minus_beta2;
  const T bc2_sqrt = a.bias_correction2_sqrt, eps = a.eps, neg_step = -a.step_size;
  for (int64_t k = begin; k < end; ++k) {
    T d = Maximize ? -g[k] : g[k];
    T pk = p[k];
    if (WeightDecay) {
      if (Decoupled) pk = pk * decay;
      else d = d + wd * pk;
    }
    const T mk = m[k] + b1w * (d - m[k]);  // lerp with weight < 0.5, as PyTorch
    const T vk = v[k] * b2 + b2w * d * d;
    m[k] = mk;
    v[k] = vk;
    T vv = vk;
    if (Amsgrad) {
      vv = vmax[k] > vk ? vmax[k] : vk;
      vmax[k] = vv;
    }
    const T denom = std::sqrt(vv) / bc2_sqrt + eps;
    p[k] = pk + neg_step * mk / denom;
  }
}

template <class T>
void adam(const AdamArgs<T>& a, int64_t begin, int64_t end) {
  const bool wd = a.weight_decay != 0;
  // 16 specialisations; pick one at run time.
  using Fn = void (*)(const AdamArgs<T>&, int64_t, int64_t);
  static const Fn table[16] = {
      adam_loop<T, false, false, false, false>, adam_loop<T, false, false, false, true>,
      adam_loop<T, false, false, true, false>,  adam_loop<T, false, false, true, true>,
      adam_loop<T, false, true, false, false>,  adam_loop<T, false, true, false, true>,
      adam_loop<T, false, true, true, false>,   adam_loop<T, false, true, true, true>,
      adam_loop<T, true, false, false, false>,  adam_loop<T, true, false, false, true>,
      adam_loop<T, true, false, true, false>,   adam_loop<T, true, false, true, true>,
      adam_loop<T, true, true, false, false>,   adam_loop<T, true, true, false, true>,
      adam_loop<T, true, true, true, false>,    adam_loop<T, true, true, true, true>,
  };
  table[(a.maximize << 3) | (wd << 2) | (a.decoupled << 1) | (a.max_exp_avg_sq != nullptr)](a, begin, end);
}

template <class T>
void sgd(const SgdArgs<T>& a, int64_t begin, int64_t end) {
  T* __restrict p = a.param;
  const T* __restrict g = a.grad;
  T* __restrict b = a.momentum_buffer;
  const T wd = a.weight_decay, mom = a.momentum, damp = a.one_minus_dampening, neg_lr = a.neg_lr;
  const bool maximize = a.maximize, nesterov = a.nesterov, first = a.first_step;
  for (int64_t k = begin; k < end; ++k) {
    T d = maximize ? -g[k] : g[k];
    if (wd != 0) d = d + wd * p[k];
    if (b) {
      b[k] = first ? d : b[k] * mom + damp * d;
      d = nesterov ? d + mom * b[k] : b[k];
    }
    p[k] = p[k] + neg_lr * d;
  }
}

}  // namespace

const OptimKernels optim_table = {{adam<float>, sgd<float>}, {adam<double>, sgd<double>}};

}  // namespace nc::kernels::NC_ISA
