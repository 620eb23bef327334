#pragma once
// Dense matrix multiply on raw row-major buffers: C = alpha * op(A) * op(B) + beta * C,
// op(X) = X or X^T. A is m x k after op, B is k x n after op, C is m x n.
// lda/ldb/ldc are row strides in elements of the stored (untransposed) matrices.
// beta == 0 means C is write-only (its old contents, even NaN, are ignored).
#include <cstdint>

namespace nc::kernels {

struct GemmKernels {
  void (*sgemm)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                int64_t ldc);
  void (*dgemm)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
                int64_t ldc);
  // C = act(alpha * op(A) * op(B) + beta * C + bias), bias[j] per column of C (may be null),
  // act 0: none, 1: ReLU (NaN passes through). The epilogue is fused into the store.
  void (*sgemm_bias_act)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                         const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                         float* c, int64_t ldc, const float* bias, int act);
};

namespace generic { extern const GemmKernels gemm_table; }
namespace avx2 { extern const GemmKernels gemm_table; }

const GemmKernels& gemm();

}  // namespace nc::kernels
