#pragma once
// Elementwise math with PyTorch semantics: unary functions, pow, clamp, maximum/minimum, where,
// comparisons and logical ops.
#include "core/tensor.h"

namespace nc {

Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor expm1(const Tensor& x);
Tensor erf(const Tensor& x);
Tensor floor(const Tensor& x);
Tensor ceil(const Tensor& x);
Tensor round(const Tensor& x);

Tensor pow(const Tensor& base, const Tensor& exponent);
// Bounds may be undefined (no bound on that side).
Tensor clamp(const Tensor& x, const Tensor& min, const Tensor& max);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

enum class Compare { Eq, Ne, Lt, Le, Gt, Ge };
Tensor compare(Compare op, const Tensor& a, const Tensor& b);  // bool result
enum class Logical { And, Or, Xor };
Tensor logical(Logical op, const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& x);
Tensor isnan(const Tensor& x);
Tensor isinf(const Tensor& x);
Tensor isfinite(const Tensor& x);

}  // namespace nc
