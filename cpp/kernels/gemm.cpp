// GEMM kernels (compiled once per ISA, see isa.h). Row-major C = act(alpha*op(A)*op(B) + beta*C
// + bias), the bias/activation epilogue being optional.
//
// Three paths:
//  * packed (BLIS-style): B is packed into NR-column panels (KC x NC block, shared by the
//    threads), A into MR-row panels (MC x KC block, one per thread); a register-blocked
//    micro-kernel (AVX2: 6x16 floats / 6x8 doubles, 12 ymm accumulators; generic: 4x8 / 4x4
//    plain C the compiler vectorises) applies alpha/beta/bias/act in its store. Threads split
//    the rows of C; K is never split, so results do not depend on the number of threads.
//  * direct (AVX2, small/skinny: m <= 64 or m*n*k <= 2^18): no packing of A, broadcast-FMA over
//    rows of B; op(B) = B^T is transposed block by block (8x8 in registers) into a per-thread
//    buffer, and B blocks whose row stride aliases in L1 are copied there. Threads split columns.
//  * dot (AVX2, small, m < 8, op(A) = A, op(B) = B^T): both operands contiguous along K;
//    vector dot products with a horizontal sum per element.
// In every path the arithmetic of one C element does not depend on the tile it falls in or on
// the thread that computes it (masked edge tiles do the same operations as full ones).
#include "kernels/isa.h"
#include "kernels/gemm.h"
#include "core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace nc::kernels::NC_ISA {
namespace {

// ---------------------------------------------------------------------------------------------
// Common helpers

template <class T>
struct Epi {
  T alpha;
  T beta;         // 0: C is write-only
  const T* bias;  // per column, already offset to the tile's first column; null: none
  int act;        // 0 none, 1 relu
};

template <class T>
inline T epi_scalar(T acc, const T* cp, const Epi<T>& e, int64_t j) {
  T v = e.alpha * acc;
  if (e.beta != T(0)) v = e.beta * *cp + v;
  if (e.bias) v = v + e.bias[j];
  if (e.act == 1) v = v < T(0) ? T(0) : v;  // NaN stays NaN
  return v;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <class T>
T* alloc_buf(int64_t elems) {
  size_t bytes = static_cast<size_t>(elems) * sizeof(T);
  bytes = (bytes + 63) / 64 * 64;
  if (bytes == 0) bytes = 64;
  return static_cast<T*>(std::aligned_alloc(64, bytes));
}

// C = act(beta*C + bias) (k == 0 or alpha == 0: A and B are not read).
template <class T>
void scale_only(int64_t m, int64_t n, T beta, T* c, int64_t ldc, const T* bias, int act) {
  Epi<T> e{T(0), beta, bias, act};
  for (int64_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) ci[j] = epi_scalar(T(0), ci + j, e, j);
  }
}

int threads_for(double work, double min_work_per_thread) {
  if (omp_in_parallel()) return 1;
  int nt = nc::get_num_threads();
  if (nt <= 1) return 1;
  int64_t by_work = static_cast<int64_t>(work / min_work_per_thread);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt, by_work)));
}

// Work split [t*n/nt, (t+1)*n/nt) in units.
inline void split(int64_t units, int t, int nt, int64_t& u0, int64_t& u1) {
  u0 = units * t / nt;
  u1 = units * (t + 1) / nt;
}

// ---------------------------------------------------------------------------------------------
// AVX2 vector helpers

#if NC_HAVE_AVX2
template <class T>
struct V;

template <>
struct V<float> {
  using R = __m256;
  using I = __m256i;
  static constexpr int W = 8;
  static R zero() { return _mm256_setzero_ps(); }
  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static R loadm(const float* p, I m) { return _mm256_maskload_ps(p, m); }
  static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  static void storem(float* p, I m, R v) { _mm256_maskstore_ps(p, m, v); }
  static R bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static R set1(float x) { return _mm256_set1_ps(x); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R relu(R v) { return _mm256_max_ps(_mm256_setzero_ps(), v); }  // NaN passes through
  static I mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static float hsum(R v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

template <>
struct V<double> {
  using R = __m256d;
  using I = __m256i;
  static constexpr int W = 4;
  static R zero() { return _mm256_setzero_pd(); }
  static R load(const double* p) { return _mm256_loadu_pd(p); }
  static R loadm(const double* p, I m) { return _mm256_maskload_pd(p, m); }
  static void store(double* p, R v) { _mm256_storeu_pd(p, v); }
  static void storem(double* p, I m, R v) { _mm256_maskstore_pd(p, m, v); }
  static R bcast(const double* p) { return _mm256_broadcast_sd(p); }
  static R set1(double x) { return _mm256_set1_pd(x); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  static R mul(R a, R b) { return _mm256_mul_pd(a, b); }
  static R add(R a, R b) { return _mm256_add_pd(a, b); }
  static R relu(R v) { return _mm256_max_pd(_mm256_setzero_pd(), v); }
  static I mask(int64_t n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static double hsum(R v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
};

// Stores one accumulator vector: c = act(alpha*acc + beta*c + bias). With MASK only the first
// `cnt` (1..W) lanes are touched; the arithmetic is the same either way.
template <class T, bool MASK>
__attribute__((always_inline)) inline void store_vec(T* c, typename V<T>::R acc, const Epi<T>& e,
                                                     int64_t cnt) {
  using VT = V<T>;
  typename VT::R x = VT::mul(acc, VT::set1(e.alpha));
  if (MASK) {
    const auto m = VT::mask(cnt);
    if (e.beta != T(0)) x = VT::fma(VT::set1(e.beta), VT::loadm(c, m), x);
    if (e.bias) x = VT::add(x, VT::loadm(e.bias, m));
    if (e.act == 1) x = VT::relu(x);
    VT::storem(c, m, x);
  } else {
    if (e.beta != T(0)) x = VT::fma(VT::set1(e.beta), VT::load(c), x);
    if (e.bias) x = VT::add(x, VT::load(e.bias));
    if (e.act == 1) x = VT::relu(x);
    VT::store(c, x);
  }
}

// Vector v of a tile row with `ncols` valid columns.
template <class T, bool MASK>
__attribute__((always_inline)) inline void store_tile_vec(T* c, typename V<T>::R acc,
                                                          const Epi<T>& e, int v, int64_t ncols) {
  constexpr int W = V<T>::W;
  if (!MASK) {
    Epi<T> ev = e;
    if (ev.bias) ev.bias += v * W;
    store_vec<T, false>(c + v * W, acc, ev, W);
    return;
  }
  const int64_t cnt = std::min<int64_t>(W, ncols - v * W);
  if (cnt <= 0) return;
  Epi<T> ev = e;
  if (ev.bias) ev.bias += v * W;
  store_vec<T, true>(c + v * W, acc, ev, cnt);
}

template <class T, int NV, bool MASK>
__attribute__((always_inline)) inline void store_row(T* c, const typename V<T>::R* acc,
                                                     const Epi<T>& e, int64_t ncols) {
  for (int v = 0; v < NV; ++v) store_tile_vec<T, MASK>(c, acc[v], e, v, ncols);
}

// ---- packed micro-kernel: MR x (2 vectors), A packed [p][MR], B packed [p][NR] --------------
template <class T>
struct AvxKernel {
  static constexpr int MR = 6;
  static constexpr int NR = 2 * V<T>::W;

  __attribute__((noinline)) static void ukr(int64_t kc, const T* __restrict ap,
                                            const T* __restrict bp, T* c, int64_t ldc,
                                            const Epi<T>& e, int mr, int64_t ncols) {
    using VT = V<T>;
    using R = typename VT::R;
    constexpr int W = VT::W;
    for (int i = 0; i < MR; ++i) {
      if (i < mr) {
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NR - 1), _MM_HINT_T0);
      }
    }
    R c00 = VT::zero(), c01 = VT::zero(), c10 = VT::zero(), c11 = VT::zero();
    R c20 = VT::zero(), c21 = VT::zero(), c30 = VT::zero(), c31 = VT::zero();
    R c40 = VT::zero(), c41 = VT::zero(), c50 = VT::zero(), c51 = VT::zero();
#define NC_GEMM_STEP(P)                                                   \
  {                                                                       \
    const R b0 = VT::load(bp + (P) * NR), b1 = VT::load(bp + (P) * NR + W); \
    R a;                                                                  \
    a = VT::bcast(ap + (P) * MR + 0);                                     \
    c00 = VT::fma(a, b0, c00);                                            \
    c01 = VT::fma(a, b1, c01);                                            \
    a = VT::bcast(ap + (P) * MR + 1);                                     \
    c10 = VT::fma(a, b0, c10);                                            \
    c11 = VT::fma(a, b1, c11);                                            \
    a = VT::bcast(ap + (P) * MR + 2);                                     \
    c20 = VT::fma(a, b0, c20);                                            \
    c21 = VT::fma(a, b1, c21);                                            \
    a = VT::bcast(ap + (P) * MR + 3);                                     \
    c30 = VT::fma(a, b0, c30);                                            \
    c31 = VT::fma(a, b1, c31);                                            \
    a = VT::bcast(ap + (P) * MR + 4);                                     \
    c40 = VT::fma(a, b0, c40);                                            \
    c41 = VT::fma(a, b1, c41);                                            \
    a = VT::bcast(ap + (P) * MR + 5);                                     \
    c50 = VT::fma(a, b0, c50);                                            \
    c51 = VT::fma(a, b1, c51);                                            \
  }
    int64_t p = 0;
    for (; p + 4 <= kc; p += 4) {
#ifndef NC_PF_DIST
#define NC_PF_DIST 0
#endif
      if (NC_PF_DIST > 0) _mm_prefetch(reinterpret_cast<const char*>(bp + NC_PF_DIST * NR), _MM_HINT_T0);
      NC_GEMM_STEP(0)
      NC_GEMM_STEP(1)
      NC_GEMM_STEP(2)
      NC_GEMM_STEP(3)
      ap += 4 * MR;
      bp += 4 * NR;
    }
    for (; p < kc; ++p) {
      NC_GEMM_STEP(0)
      ap += MR;
      bp += NR;
    }
#undef NC_GEMM_STEP
    const R acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                          {c30, c31}, {c40, c41}, {c50, c51}};
    if (mr == MR && ncols == NR) {
      for (int i = 0; i < MR; ++i) store_row<T, 2, false>(c + i * ldc, acc[i], e, NR);
    } else {
      for (int i = 0; i < mr; ++i) store_row<T, 2, true>(c + i * ldc, acc[i], e, ncols);
    }
  }
};
#endif  // NC_HAVE_AVX2

// ---- generic micro-kernel: plain C over fixed-size arrays (auto-vectorised) ------------------
template <class T>
struct GenericKernel {
  static constexpr int MR = 4;
  static constexpr int NR = 32 / static_cast<int>(sizeof(T));  // 8 floats / 4 doubles

  static void ukr(int64_t kc, const T* __restrict ap, const T* __restrict bp, T* c, int64_t ldc,
                  const Epi<T>& e, int mr, int64_t ncols) {
    T acc[MR][NR];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] = T(0);
    for (int64_t p = 0; p < kc; ++p) {
      const T* a = ap + p * MR;
      const T* b = bp + p * NR;
      for (int i = 0; i < MR; ++i) {
        const T ai = a[i];
        for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
      }
    }
    for (int i = 0; i < mr; ++i) {
      T* ci = c + i * ldc;
      for (int64_t j = 0; j < ncols; ++j) ci[j] = epi_scalar(acc[i][j], ci + j, e, j);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Packed (BLIS-style) driver

template <class T>
struct Blocking;
template <>
struct Blocking<float> {
#ifndef NC_SGEMM_MC
#define NC_SGEMM_MC 96
#define NC_SGEMM_KC 384
#endif
  static constexpr int64_t MC = NC_SGEMM_MC, KC = NC_SGEMM_KC, NC = 4080;
};
template <>
struct Blocking<double> {
  static constexpr int64_t MC = 72, KC = 256, NC = 2040;
};

#if NC_HAVE_AVX2
// In-register 8x8 float transpose: r[i] holds row i on entry, column i on exit.
__attribute__((always_inline)) inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Full 6-row panel of row-major A (A(i, p) = src[i*lda + p]) into [p][6]; returns p done.
inline int64_t pack_a6_rows_avx(const float* src, int64_t lda, int64_t kc, float* d) {
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8) {
    __m256 r[8];
    for (int i = 0; i < 6; ++i) r[i] = _mm256_loadu_ps(src + i * lda + p);
    r[6] = r[7] = _mm256_setzero_ps();
    transpose8(r);
    for (int q = 0; q < 8; ++q) {
      float* o = d + (p + q) * 6;
      _mm_storeu_ps(o, _mm256_castps256_ps128(r[q]));
      _mm_storel_pi(reinterpret_cast<__m64*>(o + 4), _mm256_extractf128_ps(r[q], 1));
    }
  }
  return p;
}

// Full 16-column panel of B^T (B(p, j) = src[j*ldb + p]) into [p][16]; returns p done.
inline int64_t pack_b16_trans_avx(const float* src, int64_t ldb, int64_t kc, float* d) {
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8) {
    for (int h = 0; h < 2; ++h) {
      __m256 r[8];
      for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(src + (h * 8 + j) * ldb + p);
      transpose8(r);
      for (int q = 0; q < 8; ++q) _mm256_storeu_ps(d + (p + q) * 16 + h * 8, r[q]);
    }
  }
  return p;
}
#endif

// Packs rows [i0, i0+mc) x cols [p0, p0+kc) of op(A) into MR-row panels, layout [panel][p][MR],
// rows past mc zero-filled.
template <class T, int MR>
void pack_a(bool ta, const T* a, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            T* __restrict dst) {
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int64_t rows = std::min<int64_t>(MR, mc - ir);
    T* d = dst + ir * kc;
    if (!ta) {  // A(i, p) = a[i*lda + p]
      const T* src = a + (i0 + ir) * lda + p0;
      if (rows == MR) {
        int64_t p = 0;
#if NC_HAVE_AVX2
        if constexpr (sizeof(T) == 4 && MR == 6) p = pack_a6_rows_avx(src, lda, kc, d);
#endif
        for (; p < kc; ++p)
          for (int i = 0; i < MR; ++i) d[p * MR + i] = src[i * lda + p];
      } else {
        for (int64_t p = 0; p < kc; ++p)
          for (int i = 0; i < MR; ++i) d[p * MR + i] = i < rows ? src[i * lda + p] : T(0);
      }
    } else {  // A(i, p) = a[p*lda + i]
      const T* src = a + p0 * lda + i0 + ir;
      if (rows == MR) {
        for (int64_t p = 0; p < kc; ++p)
          for (int i = 0; i < MR; ++i) d[p * MR + i] = src[p * lda + i];
      } else {
        for (int64_t p = 0; p < kc; ++p)
          for (int i = 0; i < MR; ++i) d[p * MR + i] = i < rows ? src[p * lda + i] : T(0);
      }
    }
  }
}

// Packs NR-column panels [q0, q1) of op(B) rows [p0, p0+kc), cols [j0, j0+nc): layout
// [panel][p][NR], columns past nc zero-filled.
template <class T, int NR>
void pack_b(bool tb, const T* b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
            int64_t q0, int64_t q1, T* __restrict dst) {
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t jr = q * NR;
    const int64_t cols = std::min<int64_t>(NR, nc - jr);
    T* d = dst + jr * kc;
    if (!tb) {  // B(p, j) = b[p*ldb + j]
      const T* src = b + p0 * ldb + j0 + jr;
      if (cols == NR) {
        for (int64_t p = 0; p < kc; ++p)
          for (int j = 0; j < NR; ++j) d[p * NR + j] = src[p * ldb + j];
      } else {
        for (int64_t p = 0; p < kc; ++p)
          for (int j = 0; j < NR; ++j) d[p * NR + j] = j < cols ? src[p * ldb + j] : T(0);
      }
    } else {  // B(p, j) = b[j*ldb + p]
      const T* src = b + (j0 + jr) * ldb + p0;
      if (cols == NR) {
        int64_t p = 0;
#if NC_HAVE_AVX2
        if constexpr (sizeof(T) == 4 && NR == 16) p = pack_b16_trans_avx(src, ldb, kc, d);
#endif
        for (int j = 0; j < NR; ++j)
          for (int64_t q = p; q < kc; ++q) d[q * NR + j] = src[j * ldb + q];
      } else {
        for (int j = 0; j < NR; ++j)
          for (int64_t p = 0; p < kc; ++p) d[p * NR + j] = j < cols ? src[j * ldb + p] : T(0);
      }
    }
  }
}

template <class T, class K>
void gemm_packed(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                 int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, const T* bias,
                 int act, int nt) {
  constexpr int MR = K::MR, NR = K::NR;
  constexpr int64_t MC = Blocking<T>::MC / MR * MR, KC = Blocking<T>::KC;
  constexpr int64_t NC = Blocking<T>::NC / NR * NR;
  const int64_t row_panels = ceil_div(m, MR);
  nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt, row_panels)));
  const int64_t kcmax = std::min(KC, k);
  const int64_t ncmax = std::min(NC, ceil_div(n, NR) * NR);
  const int64_t mcmax = std::min(MC, ceil_div(m, MR) * MR);
  T* bbuf = alloc_buf<T>(kcmax * ncmax);
  T* abuf = alloc_buf<T>(static_cast<int64_t>(nt) * mcmax * kcmax);

#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int tid = omp_get_thread_num();
    const int team = omp_get_num_threads();
    int64_t rp0, rp1;
    split(row_panels, tid, team, rp0, rp1);
    const int64_t r0 = rp0 * MR, r1 = std::min(m, rp1 * MR);
    T* ap = abuf + tid * mcmax * kcmax;
    for (int64_t jc = 0; jc < n; jc += NC) {
      const int64_t nc = std::min(NC, n - jc);
      const int64_t npanels = ceil_div(nc, NR);
      for (int64_t pc = 0; pc < k; pc += KC) {
        const int64_t kc = std::min(KC, k - pc);
        const bool last = pc + KC >= k;
        if (team > 1) {
#pragma omp barrier
        }
        int64_t q0, q1;
        split(npanels, tid, team, q0, q1);
        pack_b<T, NR>(tb, b, ldb, pc, kc, jc, nc, q0, q1, bbuf);
        if (team > 1) {
#pragma omp barrier
        }
        Epi<T> e{alpha, pc == 0 ? beta : T(1), last && bias ? bias + jc : nullptr,
                 last ? act : 0};
        for (int64_t ic = r0; ic < r1; ic += MC) {
          const int64_t mc = std::min(MC, r1 - ic);
          pack_a<T, MR>(ta, a, lda, ic, mc, pc, kc, ap);
          for (int64_t jr = 0; jr < nc; jr += NR) {
            const int64_t ncols = std::min<int64_t>(NR, nc - jr);
            Epi<T> ej = e;
            if (ej.bias) ej.bias += jr;
            const T* bpanel = bbuf + jr * kc;
            for (int64_t ir = 0; ir < mc; ir += MR) {
              K::ukr(kc, ap + ir * kc, bpanel, c + (ic + ir) * ldc + jc + jr, ldc, ej,
                     static_cast<int>(std::min<int64_t>(MR, mc - ir)), ncols);
            }
          }
        }
      }
    }
  }
  std::free(abuf);
  std::free(bbuf);
}

#if NC_HAVE_AVX2
// ---------------------------------------------------------------------------------------------
// Direct path (no packing), op(B) = B: C tile M x (NV vectors) += A(rows, p) * B(p, cols).
// A(i, p) = a[i*rsa + p*csa].

#ifndef NC_DIRECT_KC
#define NC_DIRECT_KC 512
#endif
constexpr int64_t kDirectKC = NC_DIRECT_KC;
constexpr int64_t kDirectNB = 256;   // columns per block (multiple of 64)
constexpr int64_t kDirectUnit = 64;  // columns per thread-split unit

template <class T, int M, int NV, bool MASK>
__attribute__((noinline)) void ukr_direct(int64_t kc, const T* a, int64_t rsa, int64_t csa, const T* b, int64_t ldb, T* c,
                int64_t ldc, const Epi<T>& e, int64_t ncols) {
  using VT = V<T>;
  using R = typename VT::R;
  constexpr int W = VT::W;
  R acc[M][NV];
  for (int i = 0; i < M; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = VT::zero();
  typename VT::I mk[NV];
  if (MASK)
    for (int v = 0; v < NV; ++v) mk[v] = VT::mask(std::max<int64_t>(0, ncols - v * W));
  const T* ar[M];
  for (int i = 0; i < M; ++i) ar[i] = a + i * rsa;
  for (int64_t p = 0; p < kc; ++p) {
    const T* bp = b + p * ldb;
    if (M == 1) {
      const R av = VT::bcast(ar[0] + p * csa);
      for (int v = 0; v < NV; ++v)
        acc[0][v] = VT::fma(av, MASK ? VT::loadm(bp + v * W, mk[v]) : VT::load(bp + v * W),
                            acc[0][v]);
    } else {
      R bv[NV];
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) bv[v] = MASK ? VT::loadm(bp + v * W, mk[v]) : VT::load(bp + v * W);
#pragma GCC unroll 16
      for (int i = 0; i < M; ++i) {
        const R av = VT::bcast(ar[i] + p * csa);
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[i][v] = VT::fma(av, bv[v], acc[i][v]);
      }
    }
  }
  // Copy out so the accumulators stay in registers through the loop (a dynamically indexed
  // epilogue would otherwise pin them to memory).
  R out[M][NV];
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) out[i][v] = acc[i][v];
  for (int i = 0; i < M; ++i)
    for (int v = 0; v < NV; ++v) store_tile_vec<T, MASK>(c + i * ldc, out[i][v], e, v, ncols);
}

template <class T, int M, int NV>
void direct_tiles(int64_t kc, const T* a, int64_t rsa, int64_t csa, const T* b, int64_t ldb, T* c,
                  int64_t ldc, const Epi<T>& e, int64_t nb) {
  constexpr int64_t TW = NV * V<T>::W;
  for (int64_t jr = 0; jr < nb; jr += TW) {
    Epi<T> ej = e;
    if (ej.bias) ej.bias += jr;
    if (jr + TW <= nb)
      ukr_direct<T, M, NV, false>(kc, a, rsa, csa, b + jr, ldb, c + jr, ldc, ej, TW);
    else
      ukr_direct<T, M, NV, true>(kc, a, rsa, csa, b + jr, ldb, c + jr, ldc, ej, nb - jr);
  }
}

// dst[p*ldd + j] = src[j*lds + p] for p < kc, j < nb (transposes a block of B^T into B).
template <class T>
void transpose_block(const T* src, int64_t lds, int64_t nb, int64_t kc, T* dst, int64_t ldd) {
  int64_t j = 0;
  if constexpr (sizeof(T) == 4) {
    for (; j + 8 <= nb; j += 8) {
      int64_t p = 0;
      for (; p + 8 <= kc; p += 8) {
        __m256 r[8];
        for (int q = 0; q < 8; ++q) r[q] = _mm256_loadu_ps(src + (j + q) * lds + p);
        transpose8(r);
        for (int q = 0; q < 8; ++q) _mm256_storeu_ps(dst + (p + q) * ldd + j, r[q]);
      }
      for (; p < kc; ++p)
        for (int q = 0; q < 8; ++q) dst[p * ldd + j + q] = src[(j + q) * lds + p];
    }
  }
  for (; j < nb; ++j)
    for (int64_t p = 0; p < kc; ++p) dst[p * ldd + j] = src[j * lds + p];
}

// op(B) = B, or op(B) = B^T transposed block by block into a per-thread buffer.
template <class T>
void gemm_direct(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                 int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, const T* bias,
                 int act, int nt) {
  const int64_t rsa = ta ? 1 : lda, csa = ta ? lda : 1;
  const int64_t units = ceil_div(n, kDirectUnit);
  // B^T blocks are transposed into a compact per-thread buffer; B blocks are copied there when
  // several row blocks reuse them and the row stride is a large multiple of 512 bytes (such rows
  // alias in a few L1 sets: 4 KiB strides ran at a third of the speed).
  const int64_t ldb_bytes = ldb * int64_t(sizeof(T));
  const bool copy_b = tb || (m > 6 && ldb_bytes >= 2048 && ldb_bytes % 512 == 0);
  const int64_t KCD = copy_b ? kDirectKC / 2 : kDirectKC;
  nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt, units)));
  auto body = [&](int64_t j0, int64_t j1) {
    // Buffer rows padded past a power-of-two stride (4 KiB aliasing of the transposing stores).
    const int64_t ldt = kDirectNB + 64 / int64_t(sizeof(T));
    T* tbuf = copy_b ? alloc_buf<T>(KCD * ldt) : nullptr;
    for (int64_t jb = j0; jb < j1; jb += kDirectNB) {
      const int64_t nb = std::min(kDirectNB, j1 - jb);
      for (int64_t pb = 0; pb < k; pb += KCD) {
        const int64_t kc = std::min(KCD, k - pb);
        const bool last = pb + KCD >= k;
        const Epi<T> e{alpha, pb == 0 ? beta : T(1), last && bias ? bias + jb : nullptr,
                       last ? act : 0};
        const T* bb = b + pb * ldb + jb;
        int64_t ldbb = ldb;
        if (tb) {
          transpose_block<T>(b + jb * ldb + pb, ldb, nb, kc, tbuf, ldt);
          bb = tbuf;
          ldbb = ldt;
        } else if (copy_b) {
          for (int64_t p = 0; p < kc; ++p)
            std::memcpy(tbuf + p * ldt, bb + p * ldb, static_cast<size_t>(nb) * sizeof(T));
          bb = tbuf;
          ldbb = ldt;
        }
        for (int64_t ir = 0; ir < m; ir += 6) {
          const T* ab = a + ir * rsa + pb * csa;
          T* cb = c + ir * ldc + jb;
          switch (std::min<int64_t>(6, m - ir)) {
            case 6: direct_tiles<T, 6, 2>(kc, ab, rsa, csa, bb, ldbb, cb, ldc, e, nb); break;
            case 5: direct_tiles<T, 5, 2>(kc, ab, rsa, csa, bb, ldbb, cb, ldc, e, nb); break;
            case 4: direct_tiles<T, 4, 2>(kc, ab, rsa, csa, bb, ldbb, cb, ldc, e, nb); break;
            case 3: direct_tiles<T, 3, 2>(kc, ab, rsa, csa, bb, ldbb, cb, ldc, e, nb); break;
            case 2: direct_tiles<T, 2, 4>(kc, ab, rsa, csa, bb, ldbb, cb, ldc, e, nb); break;
            default: direct_tiles<T, 1, 8>(kc, ab, rsa, csa, bb, ldbb, cb, ldc, e, nb); break;
          }
        }
      }
    }
    std::free(tbuf);
  };
  if (nt <= 1) {
    body(0, n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    int64_t u0, u1;
    split(units, omp_get_thread_num(), omp_get_num_threads(), u0, u1);
    const int64_t j0 = u0 * kDirectUnit, j1 = std::min(n, u1 * kDirectUnit);
    if (j0 < j1) body(j0, j1);
  }
}

// ---------------------------------------------------------------------------------------------
// Dot path, op(A) = A, op(B) = B^T: C(i, j) = sum_p a[i*lda + p] * b[j*ldb + p].

template <class T, int M, int N>
__attribute__((noinline)) void ukr_dot(int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc,
             const Epi<T>& e) {
  using VT = V<T>;
  using R = typename VT::R;
  constexpr int W = VT::W;
  R acc[M][N];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) acc[i][j] = VT::zero();
  int64_t p = 0;
  for (; p + W <= k; p += W) {
    R bv[N];
    for (int j = 0; j < N; ++j) bv[j] = VT::load(b + j * ldb + p);
    for (int i = 0; i < M; ++i) {
      const R av = VT::load(a + i * lda + p);
      for (int j = 0; j < N; ++j) acc[i][j] = VT::fma(av, bv[j], acc[i][j]);
    }
  }
  if (p < k) {
    const auto mk = VT::mask(k - p);
    R bv[N];
    for (int j = 0; j < N; ++j) bv[j] = VT::loadm(b + j * ldb + p, mk);
    for (int i = 0; i < M; ++i) {
      const R av = VT::loadm(a + i * lda + p, mk);
      for (int j = 0; j < N; ++j) acc[i][j] = VT::fma(av, bv[j], acc[i][j]);
    }
  }
  T sums[M][N];
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < N; ++j) sums[i][j] = VT::hsum(acc[i][j]);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) c[i * ldc + j] = epi_scalar(sums[i][j], c + i * ldc + j, e, j);
}

template <class T, int M, int NMAX>
void dot_row_block(int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc,
                   const Epi<T>& e, int64_t j0, int64_t j1) {
  int64_t j = j0;
  for (; j + NMAX <= j1; j += NMAX) {
    Epi<T> ej = e;
    if (ej.bias) ej.bias += j;
    ukr_dot<T, M, NMAX>(k, a, lda, b + j * ldb, ldb, c + j, ldc, ej);
  }
  for (; j < j1; ++j) {
    Epi<T> ej = e;
    if (ej.bias) ej.bias += j;
    ukr_dot<T, M, 1>(k, a, lda, b + j * ldb, ldb, c + j, ldc, ej);
  }
}

template <class T>
void gemm_dot(int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
              int64_t ldb, T beta, T* c, int64_t ldc, const T* bias, int act, int nt) {
  // Columns in blocks whose rows of B stay in L2 while all rows of A pass over them.
  const int64_t jblk = std::max<int64_t>(8, (int64_t(96) << 10) / (k * int64_t(sizeof(T))) / 8 * 8);
  const int64_t units = ceil_div(n, 8);
  nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt, units)));
  const Epi<T> e{alpha, beta, bias, act};
  auto body = [&](int64_t j0, int64_t j1) {
    for (int64_t jb = j0; jb < j1; jb += jblk) {
      const int64_t je = std::min(j1, jb + jblk);
      int64_t i = 0;
      for (; i + 2 <= m; i += 2)
        dot_row_block<T, 2, 4>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, e, jb, je);
      if (i < m) dot_row_block<T, 1, 8>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, e, jb, je);
    }
  };
  if (nt <= 1) {
    body(0, n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    int64_t u0, u1;
    split(units, omp_get_thread_num(), omp_get_num_threads(), u0, u1);
    const int64_t j0 = u0 * 8, j1 = std::min(n, u1 * 8);
    if (j0 < j1) body(j0, j1);
  }
}
#endif  // NC_HAVE_AVX2

// ---------------------------------------------------------------------------------------------
// Entry

#ifndef NC_DOT_MMAX
#define NC_DOT_MMAX 8
#endif
constexpr int64_t kDotMaxM = NC_DOT_MMAX;  // op(B) = B^T with fewer rows: dot products
constexpr double kSmallWork = double(1 << 18);     // multiply-adds: below this, small path
constexpr double kMinWorkPerThread = double(1 << 17);  // multiply-adds per extra thread
constexpr double kMinStreamWorkPerThread = double(1 << 15);  // the same for the dot path

template <class T>
void gemm_impl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
               int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, const T* bias,
               int act) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) {
    scale_only(m, n, beta, c, ldc, bias, act);
    return;
  }
  const double work = double(m) * double(n) * double(k);
  const int nt = threads_for(work, kMinWorkPerThread);
#if NC_HAVE_AVX2
  const bool small = m <= 64 || work <= kSmallWork;
  if (small && !tb) {
    gemm_direct<T>(ta, false, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act, nt);
    return;
  }
  if (small && !ta && k <= 16384 && m < kDotMaxM) {
    // Few rows (batch-1 inference): the time goes into streaming B from cache, so a second
    // thread pays off at a much smaller size than in the compute-bound paths.
    gemm_dot<T>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act, threads_for(work, kMinStreamWorkPerThread));
    return;
  }
  if (small) {
    gemm_direct<T>(ta, true, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act, nt);
    return;
  }
  gemm_packed<T, AvxKernel<T>>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act,
                               nt);
#else
  gemm_packed<T, GenericKernel<T>>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act,
                                   nt);
#endif
}

void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  gemm_impl<float>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nullptr, 0);
}
void dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
           int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  gemm_impl<double>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nullptr, 0);
}
void sgemm_bias_act(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                    const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                    int64_t ldc, const float* bias, int act) {
  gemm_impl<float>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act);
}

}  // namespace

const GemmKernels gemm_table = {sgemm, dgemm, sgemm_bias_act};

}  // namespace nc::kernels::NC_ISA
