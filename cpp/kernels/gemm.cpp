// GEMM kernels (compiled once per ISA, see isa.h). Row-major C = act(alpha*op(A)*op(B) + beta*C
// + bias), the bias/activation epilogue being optional.
//
// Three paths:
//  * packed (BLIS-style): B is packed into NR-column panels (KC x NC block, shared by the
//    threads), A into MR-row panels (MC x KC block, one per thread); a register-blocked
//    micro-kernel (AVX-512: 12x32 floats / 12x16 doubles, 24 zmm accumulators; AVX2: 6x16 /
//    6x8, 12 ymm accumulators; generic: 4x8 / 4x4 plain C the compiler vectorises) applies
//    alpha/beta/bias/act in its store. Blocks of rows of C go to whichever thread is free
//    (nc::parallel_for); K is never split, so results do not depend on the number of threads.
//    B may also come packed once by pack_b (gemm_prepacked: weights multiplied many times).
//  * direct (AVX2 and AVX-512, in the vectors of the build; small/skinny: m <= 64 or
//    m*n*k <= 2^18): no packing of A, broadcast-FMA over rows of B; op(B) = B^T is transposed
//    block by block (8x8 in registers) into a per-thread buffer, and B blocks whose row stride
//    aliases in L1 are copied there. Chunks of columns go to whichever thread is free. Its K
//    blocks are the packed path's, so both give the same bits (see k_block).
//  * dot (AVX2 and AVX-512, small, m < 8, op(A) = A, op(B) = B^T): both operands contiguous
//    along K; vector dot products with a horizontal sum per element.
// In every path the arithmetic of one C element does not depend on the tile it falls in or on
// the thread that computes it (masked edge tiles do the same operations as full ones).
#include "kernels/isa.h"
#include "kernels/gemm.h"
#include "kernels/gemm_micro.h"
#include "core/parallel.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>

namespace nc::kernels::NC_ISA {
namespace {

using namespace micro;


// ---------------------------------------------------------------------------------------------
// Packed (BLIS-style) driver

template <class T>
struct Blocking;
template <>
struct Blocking<float> {
#ifndef NC_SGEMM_MC
#define NC_SGEMM_MC 96
#define NC_SGEMM_KC 256
#endif
  static constexpr int64_t MC = NC_SGEMM_MC, KC = NC_SGEMM_KC, NC = 4080;
};
template <>
struct Blocking<double> {
  static constexpr int64_t MC = 72, KC = 256, NC = 2040;
};


// Packs NR-column panels [q0, q1) of op(B) rows [p0, p0+kc), cols [j0, j0+nc): layout
// [panel][p][NR], columns past nc zero-filled.
template <class T, int NR>
void pack_b(bool tb, const T* b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
            int64_t q0, int64_t q1, T* __restrict dst) {
  if (!tb) {
    // Full panels row by row of B, all panels of a row at once: the reads run along the rows of B
    // (panel by panel they went down its columns, one row of 128 bytes per page in a large B).
    const int64_t q_full = std::max(q0, std::min(q1, nc / NR));
    for (int64_t p = 0; p < kc; ++p) {
      const T* src = b + (p0 + p) * ldb + j0;
      for (int64_t q = q0; q < q_full; ++q) {
        T* d = dst + q * NR * kc + p * NR;
#if NC_HAVE_AVX2
        // In 32-byte moves: GCC made the element loop a call to memmove per row of a panel.
        for (int v = 0; v < NR * int(sizeof(T)) / 32; ++v)
          _mm256_storeu_ps(reinterpret_cast<float*>(d) + 8 * v,
                           _mm256_loadu_ps(reinterpret_cast<const float*>(src + q * NR) + 8 * v));
#else
        for (int j = 0; j < NR; ++j) d[j] = src[q * NR + j];
#endif
      }
    }
    q0 = q_full;  // the ragged last panel, if any, below
  }
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t jr = q * NR;
    const int64_t cols = std::min<int64_t>(NR, nc - jr);
    T* d = dst + jr * kc;
    if (!tb) {  // B(p, j) = b[p*ldb + j]
      const T* src = b + p0 * ldb + j0 + jr;
      for (int64_t p = 0; p < kc; ++p)
        for (int j = 0; j < NR; ++j) d[p * NR + j] = j < cols ? src[p * ldb + j] : T(0);
    } else {  // B(p, j) = b[j*ldb + p]
      const T* src = b + (j0 + jr) * ldb + p0;
      if (cols == NR) {
        int64_t p = 0;
#if NC_HAVE_AVX2
        if constexpr (sizeof(T) == 4 && NR == 16) p = pack_b16_trans_avx(src, ldb, kc, d);
        if constexpr (sizeof(T) == 4 && NR == 32) {
          p = pack_b16_trans_avx(src, ldb, kc, d, 32);
          pack_b16_trans_avx(src + 16 * ldb, ldb, p, d + 16, 32);
        }
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

// K block of a micro-kernel: its own KC when it sets one (sized to its B panel), else Blocking's.
template <class T, class K, class = void>
struct KcOf {
  static constexpr int64_t value = Blocking<T>::KC;
};
template <class T, class K>
struct KcOf<T, K, std::void_t<decltype(K::KC)>> {
  static constexpr int64_t value = K::KC;
};
// K block of a micro-kernel for large products (see k_block): its KC_LARGE, else its KC.
template <class T, class K, class = void>
struct KcLargeOf {
  static constexpr int64_t value = KcOf<T, K>::value;
};
template <class T, class K>
struct KcLargeOf<T, K, std::void_t<decltype(K::KC_LARGE)>> {
  static constexpr int64_t value = K::KC_LARGE;
};

// The packed path's micro-kernel in this build.
#if NC_HAVE_AVX512
template <class T>
using PackedKernel = Avx512Kernel<T>;
#elif NC_HAVE_AVX2
template <class T>
using PackedKernel = AvxKernel<T>;
#else
template <class T>
using PackedKernel = GenericKernel<T>;
#endif

// The K block of a product, in the packed path and the direct path alike: each K block is summed
// from zero in a register and then added to C, so with the same blocks a row of C comes out
// bit-identical whichever of the two paths ran it (a Linear's output under no_grad, from a
// pre-packed weight, equals the one computed for training). Large products (m and n from
// kLargeBlockMin) take the kernel's KC_LARGE: each K block is a pass over the block of C and a
// new B panel per tile, which its longer panels (from L2) amortise; the small-m products of
// recurrent layers (and everything on the direct path, m <= 64) keep the KC whose panel stays in
// L1 (KC 512 for every shape made an LSTM training step 1.3x slower).
constexpr int64_t kLargeBlockMin = 256;

template <class T, class K = PackedKernel<T>>
inline int64_t k_block(int64_t m, int64_t n) {
  return m >= kLargeBlockMin && n >= kLargeBlockMin ? KcLargeOf<T, K>::value : KcOf<T, K>::value;
}

// Columns per slab of packed B: the slab (k x NC, every K block of those columns) is packed once
// and then read by all threads from the shared L3, so it is bounded to a few MiB there.
// A function of k only, so that pack_b_full and gemm_packed agree on the layout.
template <class T, int NR>
inline int64_t slab_cols(int64_t k) {
  constexpr int64_t kSlabBytes = int64_t(4) << 20;
  const int64_t cols = kSlabBytes / (std::max<int64_t>(k, 1) * int64_t(sizeof(T))) / NR * NR;
  return std::clamp<int64_t>(cols, 8 * NR, Blocking<T>::NC / NR * NR);
}

// The packed driver. Per slab of columns: B is packed whole (all K blocks; skipped when it comes
// `prepacked` by pack_b_full), by all threads, into the calling thread's scratch buffer; then
// units of (block of rows) x (group of column panels) go to whichever thread is free, each
// running every K block of its unit (packing its rows of A per K block). So there are two
// synchronisations per slab, not two per K block, and a thread set aside by a busy machine holds
// nobody up unless it is inside a unit. The units and the K order are fixed by the shape,
// whatever the thread count: results do not depend on it.
template <class T, class K>
void gemm_packed(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                 int64_t lda, const T* b, int64_t ldb, const T* prepacked, T beta, T* c, int64_t ldc,
                 const T* bias, int act, int nt) {
  constexpr int MR = K::MR, NR = K::NR;
  constexpr int64_t MC = Blocking<T>::MC / MR * MR;
  const int64_t KC = k_block<T, K>(m, n);
  const int64_t NC = slab_cols<T, NR>(k);
  const int64_t kcmax = std::min(KC, k);
  // Rows in blocks of whole panels, about 16 per matrix (at most MC rows each), the panels spread
  // evenly over the blocks: block r has panels [r*P/R, (r+1)*P/R). Blocks rounded up to a fixed
  // size left a short last one (1024 rows: 14 x 72 + 16), and too few blocks for 16 units, so the
  // columns were split in two groups as well and every A block was packed twice. The pool gives
  // each thread a contiguous range of the units (nc::parallel_for), so the longer blocks must be
  // spread out: with all of them first, the first of two threads got 46 of 1024 rows' 86 panels
  // and the other 40 (4% of the product idle).
  const int64_t row_panels = ceil_div(m, MR);
  const int64_t row_blocks = std::max(ceil_div(row_panels, MC / MR), std::min<int64_t>(16, row_panels));
  const int64_t rows_per_block = ceil_div(row_panels, row_blocks) * MR;  // the largest block
  // Kept between calls: a fresh slab came back page-faulted on every call.
  T* bbuf = prepacked ? nullptr
                      : static_cast<T*>(scratch<Scratch::kGemmB>(sizeof(T) * k * std::min(NC, ceil_div(n, NR) * NR)));
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = std::min(NC, n - jc);
    const int64_t npanels = ceil_div(nc, NR);
    const T* slab = prepacked ? prepacked + jc * k : bbuf;  // see pack_b_full
    // Few row blocks (small m): the panels split into groups too, for at least ~16 units.
    const int64_t groups = std::min(npanels, ceil_div(16, row_blocks));
    const int64_t panels_per_group = ceil_div(npanels, groups);
    const int64_t col_groups = ceil_div(npanels, panels_per_group);
    const auto pack = [&](int64_t q0, int64_t q1) { pack_b<T, NR>(tb, b, ldb, 0, k, jc, nc, q0, q1, bbuf); };
    const auto compute = [&](int64_t u0, int64_t u1) {
      T* ap = static_cast<T*>(scratch<Scratch::kGemmA>(sizeof(T) * rows_per_block * kcmax));
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t r = u / col_groups;
        const int64_t ic = r * row_panels / row_blocks * MR;
        const int64_t mc = std::min(m, (r + 1) * row_panels / row_blocks * MR) - ic;
        const int64_t j0 = (u % col_groups) * panels_per_group * NR;
        const int64_t j1 = std::min(nc, j0 + panels_per_group * NR);
        for (int64_t pc = 0; pc < k; pc += KC) {
          const int64_t kc = std::min(KC, k - pc);
          const bool last = pc + KC >= k;
          const Epi<T> e{alpha, pc == 0 ? beta : T(1), last && bias ? bias + jc : nullptr, last ? act : 0};
          pack_a<T, MR>(ta, a, lda, ic, mc, pc, kc, ap);
          for (int64_t jr = j0; jr < j1; jr += NR) {
            const int64_t ncols = std::min<int64_t>(NR, nc - jr);
            Epi<T> ej = e;
            if (ej.bias) ej.bias += jr;
            const T* bpanel = slab + jr * k + pc * NR;  // panel jr/NR from row pc
            for (int64_t ir = 0; ir < mc; ir += MR) {
              K::ukr(kc, ap + ir * kc, bpanel, c + (ic + ir) * ldc + jc + jr, ldc, ej,
                     static_cast<int>(std::min<int64_t>(MR, mc - ir)), ncols);
            }
          }
        }
      }
    };
    const int64_t units = row_blocks * col_groups;
    if (nt <= 1) {
      if (!prepacked) pack(0, npanels);
      compute(0, units);
    } else {
      // Chunks of 4 panels at least: pack_b reads each row of B 4 x NR columns at a time.
      if (!prepacked) nc::parallel_for(0, npanels, 4, pack);
      nc::parallel_for(0, units, 1, compute);
    }
  }
}

// op(B) (k x n) packed whole, in the order gemm_packed reads it: the slabs one after the other
// (each full one k * NC elements), in each the NR-column panels over all of K ([panel][p][NR]),
// so that the layout does not depend on the K block (k_block).
template <class T, class K>
void pack_b_full(bool tb, int64_t k, int64_t n, const T* b, int64_t ldb, T* dst) {
  constexpr int NR = K::NR;
  const int64_t NC = slab_cols<T, NR>(k);
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = std::min(NC, n - jc);
    pack_b<T, NR>(tb, b, ldb, 0, k, jc, nc, 0, ceil_div(nc, NR), dst + jc * k);
  }
}

#if NC_HAVE_AVX2
// ---------------------------------------------------------------------------------------------
// Direct path (no packing), op(B) = B: C tile M x (NV vectors) += A(rows, p) * B(p, cols).
// A(i, p) = a[i*rsa + p*csa].

constexpr int64_t kDirectNB = 256;   // columns per block (multiple of 64)
constexpr int64_t kDirectUnit = 64;  // columns per thread-split unit
// Multiply-adds per chunk of columns at least, in the direct and dot paths: the chunks (fixed by
// the shape, whatever the thread count) go to whichever thread is free, see nc::parallel_for.
constexpr double kMinChunkWork = double(1 << 15);

// Units of `unit_work` multiply-adds each that make up at least `min_work`.
inline int64_t min_units(double min_work, double unit_work) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(min_work / std::max(unit_work, 1.0))));
}

template <class T, class VT, int M, int NV, bool MASK>
__attribute__((noinline)) void ukr_direct(int64_t kc, const T* a, int64_t rsa, int64_t csa, const T* b, int64_t ldb, T* c,
                int64_t ldc, const Epi<T>& block_epi, int64_t row0, int64_t col0, int64_t ncols) {
  // The tile's epilogue made here, not passed in: a struct written field by field just before a
  // call and then copied whole stalled store forwarding (6% of a batch-32 MLP training step).
  Epi<T> e = block_epi;
  if (e.bias) e.bias += col0;
  if (e.row_bias) e.row_bias += row0;
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
    for (int v = 0; v < NV; ++v) store_tile_vec<T, MASK, VT>(c + i * ldc, out[i][v], row_epi(e, i), v, ncols);
}

template <class T, class VT, int M, int NV>
void direct_tiles(int64_t kc, const T* a, int64_t rsa, int64_t csa, const T* b, int64_t ldb, T* c,
                  int64_t ldc, const Epi<T>& e, int64_t row0, int64_t nb) {
  constexpr int64_t TW = NV * VT::W;
  for (int64_t jr = 0; jr < nb; jr += TW) {
    if (jr + TW <= nb)
      ukr_direct<T, VT, M, NV, false>(kc, a, rsa, csa, b + jr, ldb, c + jr, ldc, e, row0, jr, TW);
    else
      ukr_direct<T, VT, M, NV, true>(kc, a, rsa, csa, b + jr, ldb, c + jr, ldc, e, row0, jr, nb - jr);
  }
}

// Rows [0, m) of a block of C (nb columns, one K block) in strips of up to 6 rows.
template <class T, class VT>
void direct_strips(int64_t m, int64_t kc, const T* a, int64_t rsa, int64_t csa, const T* b, int64_t ldb, T* c,
                   int64_t ldc, const Epi<T>& e, int64_t nb) {
  for (int64_t ir = 0; ir < m; ir += 6) {
    const T* ab = a + ir * rsa;
    T* cb = c + ir * ldc;
    switch (std::min<int64_t>(6, m - ir)) {
      case 6: direct_tiles<T, VT, 6, 2>(kc, ab, rsa, csa, b, ldb, cb, ldc, e, ir, nb); break;
      case 5: direct_tiles<T, VT, 5, 2>(kc, ab, rsa, csa, b, ldb, cb, ldc, e, ir, nb); break;
      case 4: direct_tiles<T, VT, 4, 2>(kc, ab, rsa, csa, b, ldb, cb, ldc, e, ir, nb); break;
      case 3: direct_tiles<T, VT, 3, 2>(kc, ab, rsa, csa, b, ldb, cb, ldc, e, ir, nb); break;
      case 2: direct_tiles<T, VT, 2, 4>(kc, ab, rsa, csa, b, ldb, cb, ldc, e, ir, nb); break;
      default: direct_tiles<T, VT, 1, 8>(kc, ab, rsa, csa, b, ldb, cb, ldc, e, ir, nb); break;
    }
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
template <class T, class VT>
void gemm_direct(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                 int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, const T* bias,
                 int act, int nt) {
  const int64_t rsa = ta ? 1 : lda, csa = ta ? lda : 1;
  const int64_t units = ceil_div(n, kDirectUnit);
  // B^T blocks are transposed into a compact per-thread buffer; B blocks are copied there when
  // several row blocks reuse them and the row stride is a multiple of 4 KiB (loads of B then
  // alias C's pending stores: 4 KiB strides ran at a third of the speed; 8 KiB 20% slower than
  // copied). Other strides, 2 and 3 KiB included, are read in place: copying them cost 10-20%
  // at m = 32 (32x512x512: 186 -> 223 GFLOP/s on one Zen 5 core).
  const int64_t ldb_bytes = ldb * int64_t(sizeof(T));
  const bool copy_b = tb || (m > 6 && ldb_bytes % 4096 == 0);
  const int64_t KCD = k_block<T>(m, n);
  nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt, units)));
  // op(B) = B^T beside few rows of op(A) (a PyTorch-layout Linear at batch 16-64): C^T =
  // op(B)^T op(A)^T is computed instead, block by block into a per-thread buffer that is then
  // transposed into C. Per K block that transposes the m x kc block of op(A) rather than the
  // nb x kc block of B^T (a fifth of the time of 32x128x784). Each element's arithmetic is
  // unchanged: fma(a, b, c) = fma(b, a, c), the same K blocks, the bias added at the same point
  // as a per-row bias. So are the bits. Not with beta: C would have to be transposed in too; and
  // only while the kc x m block of op(A)^T stays in L1 under every strip of B^T's rows (64x512x512
  // gained nothing).
  const bool via_ct = tb && beta == T(0) && m > VT::W && KCD * m * int64_t(sizeof(T)) <= (int64_t(32) << 10) &&
                      m * (k * nt + n) < n * k;
  auto body = [&](int64_t j0, int64_t j1) {
    // Buffer rows padded past a power-of-two stride (4 KiB aliasing of the transposing stores).
    const int64_t ldt = kDirectNB + 64 / int64_t(sizeof(T));
    // (Kept between calls: a fresh buffer of this size came back page-faulted on every call.)
    T* tbuf = copy_b ? static_cast<T*>(scratch<Scratch::kGemmB>(sizeof(T) * KCD * ldt)) : nullptr;
    for (int64_t jb = j0; jb < j1; jb += kDirectNB) {
      const int64_t nb = std::min(kDirectNB, j1 - jb);
      if (via_ct) {
        const int64_t ldct = ceil_div(m, VT::W) * VT::W + VT::W;
        T* ct = static_cast<T*>(scratch<Scratch::kGemmA>(sizeof(T) * kDirectNB * ldct));
        for (int64_t pb = 0; pb < k; pb += KCD) {
          const int64_t kc = std::min(KCD, k - pb);
          const bool last = pb + KCD >= k;
          const Epi<T> e{alpha, pb == 0 ? T(0) : T(1), nullptr, last ? act : 0, last && bias ? bias + jb : nullptr};
          if (ta) {  // op(A)^T(p, i) = a[p*lda + i]: rows already
            for (int64_t p = 0; p < kc; ++p)
              std::memcpy(tbuf + p * ldt, a + (pb + p) * lda, static_cast<size_t>(m) * sizeof(T));
          } else {
            transpose_block<T>(a + pb, lda, m, kc, tbuf, ldt);
          }
          direct_strips<T, VT>(nb, kc, b + jb * ldb + pb, ldb, 1, tbuf, ldt, ct, ldct, e, m);
        }
        transpose_block<T>(ct, ldct, nb, m, c + jb, ldc);
        continue;
      }
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
        direct_strips<T, VT>(m, kc, a + pb * csa, rsa, csa, bb, ldbb, c + jb, ldc, e, nb);
      }
    }
  };
  if (nt <= 1) {
    body(0, n);
    return;
  }
  // Column units in chunks of at least kMinChunkWork multiply-adds, claimed by any free thread.
  nc::parallel_for(0, units, min_units(kMinChunkWork, double(m) * double(k) * kDirectUnit),
                   [&](int64_t u0, int64_t u1) { body(u0 * kDirectUnit, std::min(n, u1 * kDirectUnit)); });
}

// ---------------------------------------------------------------------------------------------
// Dot path, op(A) = A, op(B) = B^T: C(i, j) = sum_p a[i*lda + p] * b[j*ldb + p].

template <class T, class VT, int M, int N>
__attribute__((noinline)) void ukr_dot(int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc,
             const Epi<T>& e) {
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

template <class T, class VT, int M, int NMAX>
void dot_row_block(int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc,
                   const Epi<T>& e, int64_t j0, int64_t j1) {
  int64_t j = j0;
  for (; j + NMAX <= j1; j += NMAX) {
    Epi<T> ej = e;
    if (ej.bias) ej.bias += j;
    ukr_dot<T, VT, M, NMAX>(k, a, lda, b + j * ldb, ldb, c + j, ldc, ej);
  }
  for (; j < j1; ++j) {
    Epi<T> ej = e;
    if (ej.bias) ej.bias += j;
    ukr_dot<T, VT, M, 1>(k, a, lda, b + j * ldb, ldb, c + j, ldc, ej);
  }
}

template <class T, class VT>
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
        dot_row_block<T, VT, 2, 4>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, e, jb, je);
      if (i < m) dot_row_block<T, VT, 1, 8>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, e, jb, je);
    }
  };
  if (nt <= 1) {
    body(0, n);
    return;
  }
  nc::parallel_for(0, units, min_units(kMinChunkWork, double(m) * double(k) * 8),
                   [&](int64_t u0, int64_t u1) { body(u0 * 8, std::min(n, u1 * 8)); });
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
#if NC_HAVE_AVX512
  using VT = V512<T>;
#elif NC_HAVE_AVX2
  using VT = V<T>;
#endif
  using Packed = PackedKernel<T>;
#if NC_HAVE_AVX2
  // A short K (a Linear's weight gradient at batch 32, x^T g) leaves too few multiply-adds per
  // packed element to repay packing, while the block of C stays small enough for the direct
  // path's column sweeps (one core, k = 32: 128x784 37 -> 32 us, 128x256 12.8 -> 10.9 us;
  // 512x512 and larger were slower).
  const bool small = m <= 64 || work <= kSmallWork || (k <= 32 && double(m) * double(n) <= double(1 << 17));
  if (small && !tb) {
    gemm_direct<T, VT>(ta, false, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act, nt);
    return;
  }
  if (small && !ta && k <= 16384 && m < kDotMaxM) {
    // Few rows (batch-1 inference): the time goes into streaming B from cache, so a second
    // thread pays off at a much smaller size than in the compute-bound paths.
    gemm_dot<T, VT>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act, threads_for(work, kMinStreamWorkPerThread));
    return;
  }
  if (small) {
    gemm_direct<T, VT>(ta, true, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act, nt);
    return;
  }
  gemm_packed<T, Packed>(ta, tb, m, n, k, alpha, a, lda, b, ldb, nullptr, beta, c, ldc, bias, act, nt);
#else
  gemm_packed<T, Packed>(ta, tb, m, n, k, alpha, a, lda, b, ldb, nullptr, beta, c, ldc, bias, act, nt);
#endif
}

template <class T>
int64_t packed_b_elems(int64_t k, int64_t n) {
  return std::max<int64_t>(k, 0) * ceil_div(std::max<int64_t>(n, 0), PackedKernel<T>::NR) * PackedKernel<T>::NR;
}

template <class T>
void pack_b_whole(bool tb, int64_t k, int64_t n, const T* b, int64_t ldb, T* dst) {
  if (k > 0 && n > 0) pack_b_full<T, PackedKernel<T>>(tb, k, n, b, ldb, dst);
}

template <class T>
void gemm_prepacked(bool ta, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* packed_b,
                    T beta, T* c, int64_t ldc, const T* bias, int act) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) {
    scale_only(m, n, beta, c, ldc, bias, act);
    return;
  }
  const int nt = threads_for(double(m) * double(n) * double(k), kMinWorkPerThread);
  gemm_packed<T, PackedKernel<T>>(ta, false, m, n, k, alpha, a, lda, nullptr, 0, packed_b, beta, c, ldc, bias, act,
                                  nt);
}

template <class T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc) {
  gemm_impl<T>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nullptr, 0);
}

}  // namespace

const GemmKernels gemm_table = {
    {gemm<float>, gemm_impl<float>, packed_b_elems<float>, pack_b_whole<float>, gemm_prepacked<float>},
    {gemm<double>, gemm_impl<double>, packed_b_elems<double>, pack_b_whole<double>, gemm_prepacked<double>}};

}  // namespace nc::kernels::NC_ISA
