#pragma once
// Dense matrix multiply on raw row-major buffers: C = alpha * op(A) * op(B) + beta * C,
// op(X) = X or X^T. A is m x k after op, B is k x n after op, C is m x n.
// lda/ldb/ldc are row strides in elements of the stored (untransposed) matrices.
// beta == 0 means C is write-only (its old contents, even NaN, are ignored).
#include <cstdint>

#include "kernels/isa_list.h"

namespace nc::kernels {

template <class T>
struct GemmFns {
  void (*gemm)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc);
  // C = act(alpha * op(A) * op(B) + beta * C + bias), bias[j] per column of C (may be null),
  // act 0: none, 1: ReLU (NaN passes through). The epilogue is fused into the store.
  void (*gemm_bias_act)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                        int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, const T* bias, int act);
};

struct GemmKernels {
  GemmFns<float> f32;
  GemmFns<double> f64;
};

NC_KERNEL_FAMILY(GemmKernels, gemm)

template <class T>
const GemmFns<T>& gemm_fns() {
  if constexpr (sizeof(T) == 4) return gemm().f32;
  else return gemm().f64;
}

}  // namespace nc::kernels
