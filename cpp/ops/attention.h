#pragma once
// Scaled-dot-product attention, PyTorch's torch.nn.functional.scaled_dot_product_attention:
// softmax(q k^T * scale + mask) v over the last two dims, fused (kernels/attention.h), so no
// L x S matrix is ever held, in the forward or the backward.
#include <optional>

#include "core/tensor.h"

namespace nc {

// q (..., Hq, L, E), k (..., Hk, S, E), v (..., Hk, S, Ev) with equal leading dims (Hq == Hk, or
// Hq a multiple of Hk with enable_gqa). attn_mask (optional) broadcasts to (..., Hq, L, S): bool
// (true = take part) or additive of q's dtype. is_causal: key j visible to query i when j <= i.
// scale defaults to 1 / sqrt(E). dropout_p drops probabilities with the global Philox generator.
// Rows whose keys are all masked out give 0 (as PyTorch's CPU kernel does), and 0 gradients.
// A float attn_mask that requires grad gets d(score) summed to its shape. Backward under grad mode
// (create_graph) runs the same formulas as differentiable ops on an explicit L x S matrix, so
// higher-order gradients exist; the first-order backward stays fused.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                                    double dropout_p, bool is_causal, std::optional<double> scale, bool enable_gqa);

}  // namespace nc
