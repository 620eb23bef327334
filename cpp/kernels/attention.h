#pragma once
// Fused scaled-dot-product attention on one head, compiled per ISA (flash-attention style).
// Tiles of kRowTile queries meet tiles of kKeyTile keys; the forward keeps a running row max and
// sum (online softmax) and never holds more than one tile of scores; the backward recomputes the
// probabilities of each tile from the saved row log-sum-exp. Every value is computed by one call
// in an order fixed by the shapes alone, so callers that split work by heads and query tiles get
// results independent of the thread count.
#include <cstdint>

#include "kernels/isa_list.h"

namespace nc::kernels {

enum class AttnMask : int { None = 0, Bool = 1, Additive = 2 };

// One head: q (L x E), k (S x E), v (S x Ev), rows `*_rs` elements apart, last dim contiguous.
template <class T>
struct AttnHead {
  const T* q = nullptr;
  const T* k = nullptr;
  const T* v = nullptr;
  int64_t q_rs = 0, k_rs = 0, v_rs = 0;
  int64_t L = 0, S = 0, E = 0, Ev = 0;
  T scale = T(1);
  // Mask element (i, j) at mask[i * m_rs + j * m_cs]: bool (uint8, 0 = masked out) or additive T.
  AttnMask mask_kind = AttnMask::None;
  const void* mask = nullptr;
  int64_t m_rs = 0, m_cs = 0;
  bool causal = false;  // key j is visible to query i when j <= i (top-left aligned, as PyTorch)
  // Dropout of the probabilities: element (i, j) is kept when the top 24 bits of Philox word
  // (rng_elem0 + i * S + j) of stream (rng_key, rng_counter) give a uniform >= dropout_p; kept
  // values are scaled by 1 / (1 - dropout_p). Forward and backward draw the same words.
  double dropout_p = 0.0;
  uint64_t rng_key = 0, rng_counter = 0, rng_elem0 = 0;
  // Optional: the keys already transposed (E x S, row stride kt_ld), shared by the forward calls
  // of one head; null: each forward call transposes the keys it needs.
  const T* kt = nullptr;
  int64_t kt_ld = 0;
};

template <class T>
struct AttentionOps {
  // Query rows [i0, i1): o rows (stride o_rs) and lse[i] = log sum_j exp(score_ij). A row whose
  // keys are all masked out gets o = 0 and lse = +inf (its probabilities are then all 0).
  void (*forward)(const AttnHead<T>& h, int64_t i0, int64_t i1, T* o, int64_t o_rs, T* lse);
  // Gradients of one head from its output o, output gradient go and lse: gq is overwritten,
  // gk and gv are accumulated into (heads that share keys and values add up in call order).
  // gm (may be null): the gradient of an additive mask, dS_ij accumulated into
  // gm[i * gm_rs + j * gm_cs] (strides 0 along the dims the mask broadcasts over).
  void (*backward)(const AttnHead<T>& h, const T* o, int64_t o_rs, const T* go, int64_t go_rs, const T* lse,
                   T* gq, int64_t gq_rs, T* gk, int64_t gk_rs, T* gv, int64_t gv_rs, T* gm, int64_t gm_rs,
                   int64_t gm_cs);
  // The head's dropout factors as an L x S matrix (row stride ld): 1 / (1 - p) where kept, else 0;
  // the same words as forward and backward draw (for the explicit create_graph backward).
  void (*dropout_keep)(const AttnHead<T>& h, T* keep, int64_t ld);
  // kt (E x S, row stride ldt = attn_transposed_stride(S, sizeof(T))) = the head's keys transposed.
  void (*transpose_keys)(const AttnHead<T>& h, T* kt, int64_t ldt);
};

struct AttentionKernels {
  AttentionOps<float> f32;
  AttentionOps<double> f64;
};

NC_KERNEL_FAMILY(AttentionKernels, attention)

template <class T>
const AttentionOps<T>& attention_ops() {
  if constexpr (sizeof(T) == 4) return attention().f32;
  else return attention().f64;
}

// Query rows per forward work item (callers split rows at multiples of this).
constexpr int64_t kAttnRowTile = 64;

// Row stride (elements of `itemsize` bytes) for n transposed keys: rows a multiple of 512 bytes
// apart alias in L1 (and make the GEMM copy its operand), so such strides get one more cache line.
inline int64_t attn_transposed_stride(int64_t n, int64_t itemsize) {
  int64_t ld = (n + 15) / 16 * 16;
  if ((ld * itemsize) % 512 == 0) ld += 64 / itemsize;
  return ld;
}

}  // namespace nc::kernels
