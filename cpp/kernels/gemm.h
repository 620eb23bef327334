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
  // Pre-packed B (a weight multiplied many times): pack_b writes op(B) (k x n) once into the
  // micro-kernel's panel layout of this ISA (packed_b_elems(k, n) elements at dst, 64-byte
  // aligned is best); gemm_prepacked then computes C = act(alpha * op(A) * B + beta * C + bias)
  // from it, with the arithmetic of the packed path of gemm (results do not depend on the thread
  // count). A buffer packed by one ISA's table is read only by the same table.
  int64_t (*packed_b_elems)(int64_t k, int64_t n);
  void (*pack_b)(bool trans_b, int64_t k, int64_t n, const T* b, int64_t ldb, T* dst);
  void (*gemm_prepacked)(bool trans_a, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                         const T* packed_b, T beta, T* c, int64_t ldc, const T* bias, int act);
};

// Fewest rows of C for which callers use a pre-packed B: below it the unpacked paths (dot
// products, broadcast FMAs over rows of B, with tiles for 1-5 leftover rows) pack nothing and
// were as fast or faster (measured on Zen 3, one thread: 8x784x128 34 us unpacked, 40 us from
// packed B; 16x512x512 140 vs 114 us; 64x4096x128 885 vs 850 us).
constexpr int64_t kPrepackedMinRows = 16;

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
