#pragma once
// Sorting and selection along one dimension (PyTorch semantics): sort/argsort, topk, and the
// index search behind multinomial sampling. Indices are computed here; values are gathered with
// gather(), whose backward scatters the gradient back to the chosen positions.
#include "core/tensor.h"
#include "ops/reduce.h"

namespace nc {

// Indices that sort x along dim. Stable: equal elements keep their order (also when descending).
// NaN counts as larger than every number, as in PyTorch (last ascending, first descending).
Tensor argsort(const Tensor& x, int64_t dim, bool descending);
// Values and indices of the sorted x along dim (values carry the gradient).
ValuesIndices sort(const Tensor& x, int64_t dim, bool descending);
// The k largest (or smallest) elements along dim, in sorted order; ties keep the lower index first.
ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim, bool largest);
// For each row r of cumulative weights cdf (rows, n) and each uniform u (rows, k) in [0, 1):
// the first index i with cdf[r, i] > u * cdf[r, n-1] (inverse-CDF sampling; int64 (rows, k)).
Tensor sample_from_cdf(const Tensor& cdf, const Tensor& u);

}  // namespace nc
