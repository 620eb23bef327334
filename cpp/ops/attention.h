#pragma once
// Scaled-dot-product attention, PyTorch's torch.nn.functional.scaled_dot_product_attention:
// softmax(q k^T * scale + mask) v over the last two dims, fused (kernels/attention.h), so no
// L x S matrix is ever held, in the forward or the backward.
#include <optional>

#include "core/tensor.h"
#include "kernels/attention.h"

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

// Inference on contiguous float32 buffers, for the embedded runtime: the same kernel calls as
// scaled_dot_product_attention on contiguous tensors (so the same results), nothing allocated.
// q (..., Hq, L, E), k (..., Hq / group, S, E), v (..., Hq / group, S, Ev), out (..., Hq, L, Ev).
struct SdpaInfer {
  int nlead = 0;
  int64_t lead[16] = {};  // q's leading dims (..., Hq)
  int64_t group = 1;      // query heads per key/value head
  int64_t L = 0, S = 0, E = 0, Ev = 0;
  double scale = 0;       // 0: 1 / sqrt(E)
  bool causal = false;
  // Mask element (i, j) of query head b: mask[off(b) + i * m_rs + j * m_cs], off(b) summing
  // index * mask_lead[d] over b's leading dims (strides 0 where the mask broadcasts).
  kernels::AttnMask mask_kind = kernels::AttnMask::None;  // Bool: uint8, Additive: float
  const void* mask = nullptr;
  int64_t mask_lead[16] = {};
  int64_t m_rs = 0, m_cs = 0;
};

// Floats of scratch sdpa_infer needs.
int64_t sdpa_infer_scratch(const SdpaInfer& a);
void sdpa_infer(const SdpaInfer& a, const float* q, const float* k, const float* v, float* out, float* scratch);

}  // namespace nc
