#pragma once
// The GEMM building blocks shared by the GEMM drivers (gemm.cpp) and the implicit-GEMM
// convolution (conv.cpp): the epilogue, the register-blocked micro-kernels and A-panel packing.
// Included only from kernel files, so everything lives in the ISA namespace (see isa.h).
#include "kernels/isa.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>

#include "core/parallel.h"

namespace nc::kernels::NC_ISA::micro {

// ---------------------------------------------------------------------------------------------
// Common helpers

template <class T>
struct Epi {
  T alpha;
  T beta;         // 0: C is write-only
  const T* bias;  // per column, already offset to the tile's first column; null: none
  int act;        // 0 none, 1 relu
  // Per row of C (a convolution's per-channel bias), already offset to the row being stored:
  // the micro-kernels advance it row by row. Null: none.
  const T* row_bias = nullptr;
};

// The epilogue of row i of a tile.
template <class T>
inline Epi<T> row_epi(const Epi<T>& e, int i) {
  Epi<T> r = e;
  if (r.row_bias) r.row_bias += i;
  return r;
}

template <class T>
inline T epi_scalar(T acc, const T* cp, const Epi<T>& e, int64_t j) {
  T v = e.alpha * acc;
  if (e.beta != T(0)) v = e.beta * *cp + v;
  if (e.bias) v = v + e.bias[j];
  if (e.row_bias) v = v + *e.row_bias;
  if (e.act == 1) v = v < T(0) ? T(0) : v;  // NaN stays NaN
  return v;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Per-thread buffers that outlive a call, one per purpose: allocating the packing buffers on
// every call cost more than a batch-1 convolution itself (blocks over glibc's mmap threshold
// come back page-faulted each time). They grow to the largest request and are kept. Chunks of a
// parallel loop run on whichever pool thread claims them, so each thread has its own.
enum class Scratch { kGemmA, kGemmB, kWeights, kColumns, kTile, kPlan, kPaddedImage };

template <Scratch S>
void* scratch(size_t bytes) {
  thread_local void* buf = nullptr;
  thread_local size_t cap = 0;
  if (bytes > cap) {
    std::free(buf);
    cap = (bytes + 4095) / 4096 * 4096;
    buf = std::aligned_alloc(64, cap);
  }
  return buf;
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

inline int threads_for(double work, double min_work_per_thread) {
  if (omp_in_parallel()) return 1;
  int nt = nc::get_num_threads();
  if (nt <= 1) return 1;
  int64_t by_work = static_cast<int64_t>(work / min_work_per_thread);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt, by_work)));
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

#if NC_HAVE_AVX512
// AVX-512 vector helpers: 16 floats / 8 doubles per zmm register; ragged edges use mask registers
// (masked-off lanes are neither read nor written, and cannot fault).
template <class T>
struct V512;

template <>
struct V512<float> {
  using R = __m512;
  using I = __mmask16;
  static constexpr int W = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static R loadm(const float* p, I m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static void storem(float* p, I m, R v) { _mm512_mask_storeu_ps(p, m, v); }
  static R bcast(const float* p) { return _mm512_set1_ps(*p); }
  static R set1(float x) { return _mm512_set1_ps(x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R relu(R v) { return _mm512_max_ps(_mm512_setzero_ps(), v); }  // NaN passes through
  // The first n lanes (n clamped to [0, W]).
  static I mask(int64_t n) { return n >= W ? I(0xFFFF) : n <= 0 ? I(0) : static_cast<I>((1u << n) - 1); }
  // The two 8-lane halves added, then the AVX2 order (written out rather than
  // _mm512_reduce_add_ps so that every build sums in the same order).
  static float hsum(R v) {
    const __m256 lo = _mm512_castps512_ps256(v);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return V<float>::hsum(_mm256_add_ps(lo, hi));
  }
};

template <>
struct V512<double> {
  using R = __m512d;
  using I = __mmask8;
  static constexpr int W = 8;
  static R zero() { return _mm512_setzero_pd(); }
  static R load(const double* p) { return _mm512_loadu_pd(p); }
  static R loadm(const double* p, I m) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(double* p, R v) { _mm512_storeu_pd(p, v); }
  static void storem(double* p, I m, R v) { _mm512_mask_storeu_pd(p, m, v); }
  static R bcast(const double* p) { return _mm512_set1_pd(*p); }
  static R set1(double x) { return _mm512_set1_pd(x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_pd(a, b); }
  static R add(R a, R b) { return _mm512_add_pd(a, b); }
  static R relu(R v) { return _mm512_max_pd(_mm512_setzero_pd(), v); }
  static I mask(int64_t n) { return n >= W ? I(0xFF) : n <= 0 ? I(0) : static_cast<I>((1u << n) - 1); }
  static double hsum(R v) {
    return V<double>::hsum(_mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1)));
  }
};
#endif  // NC_HAVE_AVX512

// Stores one accumulator vector: c = act(alpha*acc + beta*c + bias). With MASK only the first
// `cnt` (1..W) lanes are touched; the arithmetic is the same either way.
template <class T, bool MASK, class VT = V<T>>
__attribute__((always_inline)) inline void store_vec(T* c, typename VT::R acc, const Epi<T>& e,
                                                     int64_t cnt) {
  typename VT::R x = VT::mul(acc, VT::set1(e.alpha));
  if (MASK) {
    const auto m = VT::mask(cnt);
    if (e.beta != T(0)) x = VT::fma(VT::set1(e.beta), VT::loadm(c, m), x);
    if (e.bias) x = VT::add(x, VT::loadm(e.bias, m));
    if (e.row_bias) x = VT::add(x, VT::set1(*e.row_bias));
    if (e.act == 1) x = VT::relu(x);
    VT::storem(c, m, x);
  } else {
    if (e.beta != T(0)) x = VT::fma(VT::set1(e.beta), VT::load(c), x);
    if (e.bias) x = VT::add(x, VT::load(e.bias));
    if (e.row_bias) x = VT::add(x, VT::set1(*e.row_bias));
    if (e.act == 1) x = VT::relu(x);
    VT::store(c, x);
  }
}

// Vector v of a tile row with `ncols` valid columns.
template <class T, bool MASK, class VT = V<T>>
__attribute__((always_inline)) inline void store_tile_vec(T* c, typename VT::R acc,
                                                          const Epi<T>& e, int v, int64_t ncols) {
  constexpr int W = VT::W;
  if (!MASK) {
    Epi<T> ev = e;
    if (ev.bias) ev.bias += v * W;
    store_vec<T, false, VT>(c + v * W, acc, ev, W);
    return;
  }
  const int64_t cnt = std::min<int64_t>(W, ncols - v * W);
  if (cnt <= 0) return;
  Epi<T> ev = e;
  if (ev.bias) ev.bias += v * W;
  store_vec<T, true, VT>(c + v * W, acc, ev, cnt);
}

template <class T, int NV, bool MASK, class VT = V<T>>
__attribute__((always_inline)) inline void store_row(T* c, const typename VT::R* acc,
                                                     const Epi<T>& e, int64_t ncols) {
  for (int v = 0; v < NV; ++v) store_tile_vec<T, MASK, VT>(c, acc[v], e, v, ncols);
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
      for (int i = 0; i < MR; ++i) store_row<T, 2, false>(c + i * ldc, acc[i], row_epi(e, i), NR);
    } else {
      for (int i = 0; i < mr; ++i) store_row<T, 2, true>(c + i * ldc, acc[i], row_epi(e, i), ncols);
    }
  }
};

#if NC_HAVE_AVX512
// ---- AVX-512 packed micro-kernel: 12 rows x 2 zmm (12x32 floats / 12x16 doubles) ------------
// Register budget: 24 accumulators + 2 vectors of B + 1 broadcast of A = 27 of the 32 zmm.
// Zen 4 runs a 512-bit FMA as two 256-bit halves on its two FMA pipes (one zmm FMA per cycle,
// 4 cycles latency) and loads 2 x 256 bits per cycle. Per k step this tile issues 24 FMAs
// (24 cycles) against 2 zmm loads of B and 12 broadcasts of A (about 8 cycles of load slots), so
// the FMA pipes stay the bottleneck, with 24 independent chains (>= the 4 Zen 4 needs, and the
// 8 of Intel's two 512-bit pipes). 14 x 2 would leave one spare register (spills around the
// broadcasts); 8 x 3 gives the same 24 FMAs per step but a 48-wide B panel (more zero padding
// for the layer widths of the seed models) and 3 loads of B per step.
// KC = 192 makes the B panel (KC x NR, reused by every A panel of the block) 24 KiB, inside
// Zen 5's 48 KiB L1 with the A panel. Measured on Zen 5 (one thread, CPU time): KC 384 / 512 /
// 1024 ran 1024^3 +4% / +5% / +8% and 2048^3 +2% / +6% / +6% (a 64 KiB panel streams from L2
// and every K block fewer saves a pass over C), but KC 512 made an LSTM training step (batch 32,
// 100 steps, hidden 128, 2 threads, same-run A/B) 1.3x slower (5.9 -> 7.7 ms; not analysed yet:
// its backward runs many tall-k products), and KC 1024 lost 1-5% on the direct path. So
// KC_LARGE = 512 only for large products (m and n >= 256, gemm.cpp's k_block): 1024^3 ran at
// 92% of the FMA peak instead of 85-88%, 2048^3 at 89% instead of 85-87% (KC 384: +1-4%,
// KC 1024: the same as 512); moving the prefetch of C to the last 32 k steps and an unrolled
// store for the K blocks before the last gained nothing measurable on top (1 thread, CPU time).
// conv.cpp's avx512 forward runs on this kernel (the weight gradient, conv_wgrad.cpp, on a tile of
// its own that reads the image directly); the Winograd files multiply on a 16 x 16 tile of their own
// (conv_winograd_tiles.h).
template <class T>
struct Avx512Kernel {
  using VT = V512<T>;
  static constexpr int MR = 12;
  static constexpr int NR = 2 * VT::W;
  static constexpr int64_t KC = 24576 / (NR * int64_t(sizeof(T)));
  // The K block of large products (gemm.cpp's k_block): a 64 KiB B panel, read from L2.
  static constexpr int64_t KC_LARGE = 65536 / (NR * int64_t(sizeof(T)));

  __attribute__((noinline)) static void ukr(int64_t kc, const T* __restrict ap,
                                            const T* __restrict bp, T* c, int64_t ldc,
                                            const Epi<T>& e, int mr, int64_t ncols) {
    using R = typename VT::R;
    constexpr int W = VT::W;
    for (int i = 0; i < mr; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NR - 1), _MM_HINT_T0);
    }
    R acc[MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = VT::zero();
#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; ++p) {
      const R b0 = VT::load(bp), b1 = VT::load(bp + W);
#pragma GCC unroll 12
      for (int i = 0; i < MR; ++i) {
        const R a = VT::bcast(ap + i);
        acc[i][0] = VT::fma(a, b0, acc[i][0]);
        acc[i][1] = VT::fma(a, b1, acc[i][1]);
      }
      ap += MR;
      bp += NR;
    }
    if (mr == MR && ncols == NR) {
      for (int i = 0; i < MR; ++i) store_row<T, 2, false, VT>(c + i * ldc, acc[i], row_epi(e, i), NR);
    } else {
      for (int i = 0; i < mr; ++i) store_row<T, 2, true, VT>(c + i * ldc, acc[i], row_epi(e, i), ncols);
    }
  }
};
#endif  // NC_HAVE_AVX512
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
      const Epi<T> ei = row_epi(e, i);
      for (int64_t j = 0; j < ncols; ++j) ci[j] = epi_scalar(acc[i][j], ci + j, ei, j);
    }
  }
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

// Full MR-row panel (MR = 6 or 12) of row-major A (A(i, p) = src[i*lda + p]) into [p][MR],
// 8 rows at a time through the 8x8 transpose (missing rows of a group read as zero and are not
// stored); returns p done. The scalar copy of the 12-row panels took ~6% of a 1024^3 product.
template <int MR>
inline int64_t pack_a_rows_avx(const float* src, int64_t lda, int64_t kc, float* d) {
  static_assert(MR == 6 || MR == 12, "row groups of 8, then 6 or 4");
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8) {
    for (int i0 = 0; i0 < MR; i0 += 8) {
      const int rows = std::min(8, MR - i0);
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = i < rows ? _mm256_loadu_ps(src + (i0 + i) * lda + p) : _mm256_setzero_ps();
      transpose8(r);
      for (int q = 0; q < 8; ++q) {
        float* o = d + (p + q) * MR + i0;
        if (rows == 8) {
          _mm256_storeu_ps(o, r[q]);
        } else {
          _mm_storeu_ps(o, _mm256_castps256_ps128(r[q]));
          if (rows == 6) _mm_storel_pi(reinterpret_cast<__m64*>(o + 4), _mm256_extractf128_ps(r[q], 1));
        }
      }
    }
  }
  return p;
}

// Full 16-column panel of B^T (B(p, j) = src[j*ldb + p]) into [p][ldd] (ldd = the panel width,
// 16 or 32 with the second half at d + 16); returns p done.
inline int64_t pack_b16_trans_avx(const float* src, int64_t ldb, int64_t kc, float* d, int64_t ldd = 16) {
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8) {
    for (int h = 0; h < 2; ++h) {
      __m256 r[8];
      for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(src + (h * 8 + j) * ldb + p);
      transpose8(r);
      for (int q = 0; q < 8; ++q) _mm256_storeu_ps(d + (p + q) * ldd + h * 8, r[q]);
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
        if constexpr (sizeof(T) == 4 && (MR == 6 || MR == 12)) p = pack_a_rows_avx<MR>(src, lda, kc, d);
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

}  // namespace nc::kernels::NC_ISA::micro
