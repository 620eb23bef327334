// GEMM kernels (compiled per ISA). Straightforward cache-friendly loops for now; the BLIS-style
// packed kernel replaces this.
#include "kernels/isa.h"
#include "kernels/gemm.h"
#include "core/parallel.h"

namespace nc::kernels::NC_ISA {
namespace {

template <class T>
void gemm_ref(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
              const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  nc::parallel_for(0, m, 1 + (1 << 16) / (n * k + 1), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      T* ci = c + i * ldc;
      for (int64_t j = 0; j < n; ++j) ci[j] = beta == T(0) ? T(0) : beta * ci[j];
      for (int64_t p = 0; p < k; ++p) {
        T av = alpha * (ta ? a[p * lda + i] : a[i * lda + p]);
        if (tb) {
          for (int64_t j = 0; j < n; ++j) ci[j] += av * b[j * ldb + p];
        } else {
          const T* bp = b + p * ldb;
          for (int64_t j = 0; j < n; ++j) ci[j] += av * bp[j];
        }
      }
    }
  });
}

void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  gemm_ref<float>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
           int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  gemm_ref<double>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

const GemmKernels gemm_table = {sgemm, dgemm};

}  // namespace nc::kernels::NC_ISA
