#pragma once
// gather / scatter_add along one dimension (PyTorch semantics). Each is the other's gradient.
#include "core/tensor.h"

namespace nc {

// out[..i..] = x[..index[..i..]..] along `dim`; index is int64 with x's number of dims and
// index.size(d) <= x.size(d) for d != dim.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// zeros(shape) with src[..i..] added at [..index[..i..]..] along `dim`.
Tensor scatter_add_new(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& src);

// PyTorch's scatter: a copy of x with src[..i..] written (or added / multiplied, by `reduce`) at
// [..index[..i..]..] along dim. src is a tensor of x's dtype with index.size(d) <= src.size(d),
// or a 0-dim value (src_is_value) written at every index. index.size(d) <= x.size(d) for d != dim.
enum class ScatterReduce { None, Add, Multiply };
// `op` names the caller in errors (scatter, scatter_add).
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, bool src_is_value,
               ScatterReduce reduce, const char* op = "scatter");

}  // namespace nc
