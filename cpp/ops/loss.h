#pragma once
// Loss functions with torch.nn.functional semantics. Reductions: "mean", "sum", "none".
#include <string>

#include "core/tensor.h"

namespace nc {

enum class Reduction { None, Mean, Sum };
Reduction parse_reduction(const std::string& r, const char* op);

// input (N, C) / (C,) / (N, C, d1, ...) log-probabilities, target int64 class indices.
Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                Reduction reduction);
// Logits with class-index targets (int64) or class-probability targets (float, input's shape).
Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                     Reduction reduction, double label_smoothing);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction);
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction);
Tensor huber_loss(const Tensor& input, const Tensor& target, Reduction reduction, double delta);
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, double beta);
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight, Reduction reduction);
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight,
                                        const Tensor& pos_weight, Reduction reduction);

}  // namespace nc
