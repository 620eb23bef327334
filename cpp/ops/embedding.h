#pragma once
// embedding: rows of a (num_embeddings, dim) table picked by int64 indices (nn.Embedding).
// Backward is a scatter-add into the table that adds each index's gradient row in index order,
// so the result is the same on any number of threads.
#include "core/tensor.h"

namespace nc {

// out[..., :] = weight[indices[...], :]. padding_idx (in [0, num_embeddings) or -1 for none)
// gets no gradient; scale_grad_by_freq divides each row's gradient by how often its index occurs.
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx, bool scale_grad_by_freq);
// In place, without autograd: every row named in `indices` whose norm_type-norm exceeds max_norm is
// scaled by max_norm / (norm + 1e-7) (PyTorch's embedding_renorm_).
void embedding_renorm_(const Tensor& weight, const Tensor& indices, double max_norm, double norm_type);

}  // namespace nc
