#pragma once
// Fused optimizer steps: one call updates every parameter of a parameter group in place, with
// PyTorch's single-tensor (for-loop) update formulas and order of floating-point operations, so
// trajectories match PyTorch's. No autograd is recorded; versions are bumped.
#include "core/tensor.h"

namespace nc {

struct SgdOptions {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, maximize;
};
// momentum_buffers[i] may be undefined on the first step: it is then created (PyTorch clones
// the gradient) and returned through the same vector.
void sgd_step(const TensorList& params, const TensorList& grads, TensorList& momentum_buffers, const SgdOptions& o);

struct AdamOptions {
  double lr, beta1, beta2, eps, weight_decay;
  bool amsgrad, maximize, decoupled_weight_decay;  // decoupled = AdamW
};
// steps: the step count of each parameter after this step (1 on the first step).
void adam_step(const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
               const TensorList& exp_avg_sqs, const TensorList& max_exp_avg_sqs, const std::vector<int64_t>& steps,
               const AdamOptions& o);

struct RmspropOptions {
  double lr, alpha, eps, weight_decay, momentum;
  bool centered, maximize;
};
void rmsprop_step(const TensorList& params, const TensorList& grads, const TensorList& square_avgs,
                  const TensorList& momentum_buffers, const TensorList& grad_avgs, const RmspropOptions& o);

struct AdagradOptions {
  double lr, lr_decay, weight_decay, eps;
  bool maximize;
};
void adagrad_step(const TensorList& params, const TensorList& grads, const TensorList& state_sums,
                  const std::vector<int64_t>& steps, const AdagradOptions& o);

}  // namespace nc
