// Winograd F(m x m, 3x3) convolution (float32), m = 4: y = A^T [ (G w G^T) . (B^T d B) ] A per output
// tile of m x m, input tile d of (m+2) x (m+2). The (m+2)^2 element-wise products, summed over
// input channels, are (m+2)^2 GEMMs (out channels x in channels) x (in channels x tiles) run on
// a packed micro-kernel (gemm_micro.h's; the avx512 build's own, Wino512Kernel below), MR x NR:
//  * weights: U[group][xi][out panel][c][MR] = (G w G^T)[xi], packed once per call as the
//    micro-kernel's A panels (rows past og zero);
//  * input: tiles are numbered across the images of the batch (tile t: image t / tiles per
//    image), so that small images still fill whole panels; a panel of NR consecutive tiles is
//    transformed with one tile per lane, straight into the micro-kernel's packed B layout
//    V[xi][c][NR] (tiles past the end are zero);
//  * per panel and transform point xi, Mx[xi] (out channels x NR) = U[xi] V[xi]; the output
//    transform A^T Mx A then adds the bias, applies the ReLU and stores the m x m outputs of each
//    tile that lie inside the output.
// Work units: (group, panel, block of out panels). Blocks of out channels only when there are
// too few panels to share (batch 1); the input transform of a panel is then done once, before.
// Every output is computed the same way whatever the unit split and the thread count: the sums
// over channels run whole in one micro-kernel call. The weight gradient (weight_grad_f32) and the
// input gradient (input_grad_f32, at the end) run the adjoint transforms on the same tiles.
#include "kernels/conv_winograd.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "kernels/gemm_micro.h"

namespace nc::kernels::NC_ISA {
namespace {

using namespace micro;

#if NC_HAVE_AVX512
// 16 out channels x 16 tiles: one zmm of tiles per row, 16 accumulators. Per channel step, one
// load of V and 16 broadcasts of U (FMA memory operands) feed 16 FMAs: on Zen 5's two 512-bit
// FMA pipes 8 cycles, with 16 independent chains (the 4-cycle latency needs 8). MR = 16 divides
// the seed models' out-channel counts (32, 64), where gemm_micro.h's 12 x 32 tile pads 12.5% of
// the rows; NR = 16 tiles keep a batch-1 16x16 image (16 tiles of 4x4) one full panel, where 32
// would leave half of each GEMM on zero tiles. On the seed's layers (Zen 5, 1 thread, CPU time;
// bench/conv_ab.py) the 12 x 32 tile ran at 0.92-0.99x of this one at batches 32 and 64 and 0.5x
// at batch 1, AvxKernel (6 x 16, 256-bit) at 0.7-0.75x. Each output is the same chain of FMAs over
// channels as in AvxKernel, with the same transforms: the results match the avx2 build's bit for
// bit. The arguments are those of the micro-kernels.
struct Wino512Kernel {
  using VT = V512<float>;
  static constexpr int MR = 16, NR = VT::W;
  __attribute__((noinline)) static void ukr(int64_t kc, const float* __restrict ap, const float* __restrict bp,
                                            float* c, int64_t ldc, const Epi<float>& e, int mr, int64_t ncols) {
    VT::R acc[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) acc[i] = VT::zero();
#pragma GCC unroll 2
    for (int64_t p = 0; p < kc; ++p) {
      const VT::R b = VT::load(bp);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) acc[i] = VT::fma(VT::bcast(ap + i), b, acc[i]);
      ap += MR;
      bp += NR;
    }
    if (mr == MR && ncols == NR) {
      for (int i = 0; i < MR; ++i) store_row<float, 1, false, VT>(c + i * ldc, &acc[i], row_epi(e, i), NR);
    } else {
      for (int i = 0; i < mr; ++i) store_row<float, 1, true, VT>(c + i * ldc, &acc[i], row_epi(e, i), ncols);
    }
  }
};
using Kern = Wino512Kernel;
#elif NC_HAVE_AVX2
using Kern = AvxKernel<float>;
#else
using Kern = GenericKernel<float>;
#endif
constexpr int MR = Kern::MR, NR = Kern::NR;

// F(4x4, 3x3) on the points 0, 1, -1, 2, -2 (and infinity):
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// Each function applies its matrix to vectors of LN lanes, out[i*os + l] = sum_k C[i][k] in[k*is + l],
// with the common subexpressions shared (bt and at on NR lanes, g on the MR rows of a weight panel).
// F(2x2, 3x3) (2.25x fewer multiplies than direct instead of 4x, and 4x as many tiles to transform)
// measured about half as fast on Zen 3 for a batch of 64 (32 -> 64 channels, 16x16), with about
// 15x less rounding error.
// NR lanes as one GCC vector (split into the ISA's registers), loaded and stored unaligned.
typedef float VN __attribute__((vector_size(NR * sizeof(float)), aligned(4), may_alias));
// (By reference: a vector passed by value would change the ABI between the ISA builds.)
inline const VN& ld(const float* p) { return *reinterpret_cast<const VN*>(p); }
inline void st(float* p, const VN& v) { *reinterpret_cast<VN*>(p) = v; }

struct F4 {
  static constexpr int M = 4, A = 6;
  // On registers: o = B^T d for six vectors d (the input transform's rows or columns; W: VN, or
  // one register of lanes).
  template <class W>
  static void bt(const W (&d)[6], W (&o)[6]) {
    const W s12 = d[1] + d[2], s34 = d[3] + d[4], t42 = d[4] - d[2], t31 = d[3] - d[1];
    o[0] = (4.f * d[0] - 5.f * d[2]) + d[4];
    o[1] = s34 - 4.f * s12;
    o[2] = (d[4] - d[3]) + 4.f * (d[1] - d[2]);
    o[3] = t42 + 2.f * t31;
    o[4] = t42 - 2.f * t31;
    o[5] = (4.f * d[1] - 5.f * d[3]) + d[5];
  }
  template <int LN>
  static void g(const float* __restrict in, int64_t is, float* __restrict out, int64_t os) {
    for (int l = 0; l < LN; ++l) {
      const float g0 = in[l], g1 = in[is + l], g2 = in[2 * is + l];
      const float s02 = g0 + g2, h02 = g0 * (1.f / 24) + g2 * (1.f / 6);
      out[l] = g0 * (1.f / 4);
      out[os + l] = -(s02 + g1) * (1.f / 6);
      out[2 * os + l] = -(s02 - g1) * (1.f / 6);
      out[3 * os + l] = h02 + g1 * (1.f / 12);
      out[4 * os + l] = h02 - g1 * (1.f / 12);
      out[5 * os + l] = g2;
    }
  }
  // On registers: o = A^T m for six vectors m (the output transform's columns or rows).
  template <class W>
  static void at(const W (&m)[6], W (&o)[4]) {
    const W s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
    o[0] = (m[0] + s12) + s34;
    o[1] = d12 + 2.f * d34;
    o[2] = s12 + 4.f * s34;
    o[3] = (d12 + 8.f * d34) + m[5];
  }
  // The weight gradient's transforms (the adjoints of at and g). On registers: o = A v for four
  // vectors v (a column or row of an output-gradient tile).
  template <class W>
  static void a(const W (&v)[4], W (&o)[6]) {
    const W s02 = v[0] + v[2], s13 = v[1] + v[3], t02 = v[0] + 4.f * v[2], t13 = 2.f * v[1] + 8.f * v[3];
    o[0] = v[0];
    o[1] = s02 + s13;
    o[2] = s02 - s13;
    o[3] = t02 + t13;
    o[4] = t02 - t13;
    o[5] = v[3];
  }
  // On registers: o = G^T u for six vectors u.
  template <class W>
  static void gt(const W (&u)[6], W (&o)[3]) {
    const W s12 = u[1] + u[2], s34 = u[3] + u[4];
    o[0] = (u[0] * (1.f / 4) + s34 * (1.f / 24)) - s12 * (1.f / 6);
    o[1] = (u[2] - u[1]) * (1.f / 6) + (u[3] - u[4]) * (1.f / 12);
    o[2] = (s34 - s12) * (1.f / 6) + u[5];
  }
  // The input gradient's: o = B v for six vectors v (the adjoint of bt).
  template <class W>
  static void b(const W (&v)[6], W (&o)[6]) {
    const W s12 = v[1] + v[2], s34 = v[3] + v[4];
    o[0] = 4.f * v[0];
    o[1] = (4.f * (v[2] - v[1]) + 2.f * (v[4] - v[3])) + 4.f * v[5];
    o[2] = (-5.f * v[0] - 4.f * s12) - s34;
    o[3] = ((v[1] - v[2]) + 2.f * (v[3] - v[4])) - 5.f * v[5];
    o[4] = (v[0] + s12) + s34;
    o[5] = v[5];
  }
};

// The matrix's two-sided product C in C^T: in (K x K) element (k, l) at in + (k*K + l)*is, out
// (R x R) element (i, j) at out + (i*R + j)*os, each a vector of LN lanes; Col applies C.
template <int R, int K, int LN, void (*Col)(const float*, int64_t, float*, int64_t)>
__attribute__((always_inline)) inline void transform2d(const float* in, int64_t is, float* out, int64_t os) {
  alignas(64) float tmp[R * K * LN];  // tmp(i, l) = sum_k C[i][k] in(k, l), at (i*K + l)*LN
  for (int l = 0; l < K; ++l) Col(in + l * is, K * is, tmp + l * LN, K * LN);
  for (int i = 0; i < R; ++i) Col(tmp + i * K * LN, LN, out + i * R * os, os);
}

// Where the tiles of a panel are: per lane, the image (times groups), the top-left input
// position of its (m+2)^2 tile and its top-left output position; img < 0 past the last tile.
struct LaneTile {
  int64_t img, iy, ix, oy, ox;
};

template <class F>
struct Plan {
  int64_t th, tw, tiles, panels, opan;
  Plan(const ConvGeom& g) {
    th = ceil_div(g.oh, F::M), tw = ceil_div(g.ow, F::M);
    tiles = g.n * th * tw, panels = ceil_div(tiles, NR);
    opan = ceil_div(g.og, MR);
  }
  void lanes(const ConvGeom& g, int64_t panel, LaneTile* lt) const {
    for (int l = 0; l < NR; ++l) {
      const int64_t t = panel * NR + l;
      if (t >= tiles) {
        lt[l] = {-1, 0, 0, 0, 0};
        continue;
      }
      const int64_t img = t / (th * tw), r = t % (th * tw), ty = r / tw, tx = r % tw;
      lt[l] = {img, ty * F::M - g.pt, tx * F::M - g.pl, ty * F::M, tx * F::M};
    }
  }
};

// U (see the file comment) for out panels [q0, q1) of every group.
template <class F>
void transform_weights(const float* w, const ConvGeom& g, const Plan<F>& pl, int64_t q0, int64_t q1, float* u) {
  constexpr int A = F::A;
  const int64_t xi_stride = pl.opan * g.cg * MR;  // between transform points of one group
  alignas(64) float in[9 * MR];
  for (int64_t gi = 0; gi < g.groups; ++gi)
    for (int64_t q = q0; q < q1; ++q)
      for (int64_t c = 0; c < g.cg; ++c) {
        for (int l = 0; l < MR; ++l) {
          const int64_t o = q * MR + l;
          for (int t = 0; t < 9; ++t) in[t * MR + l] = o < g.og ? w[((gi * g.og + o) * g.cg + c) * 9 + t] : 0.f;
        }
        transform2d<A, 3, MR, F::template g<MR>>(in, MR, u + gi * A * A * xi_stride + (q * g.cg + c) * MR, xi_stride);
      }
}

// The floats between transform points xi of one panel's V (V[xi][c][NR]) and of the GEMMs' results
// Mx (Mx[xi][o][NR]): one cache line more than the data, so that the 36 points of one channel or
// one out channel, which the transforms read or write together, do not all fall in the same L1
// set (at 32 or 64 channels the data alone are 2 or 4 KiB: 36 lines for 12 ways).
inline int64_t point_stride(int64_t rows) { return (rows + 1) * NR; }

// V[xi][c][NR] for channels [c0, c1) of one panel of group gi (element (xi, c) at
// v + xi*point_stride(cg) + c*NR). Per channel, the six rows of the panel's tiles (one tile per
// lane) are made one at a time and transformed as they come (d B, on registers), then the six
// columns of that (B^T (d B)) are stored: the same operations in every build, whatever the lanes
// per vector. (Made column by column and reloaded 16 lanes wide, the avx512 build stalled on store
// forwarding from the 8-lane stores.) Returns false when a value of V is not finite: the check
// runs on the registers as V is made (x - x is 0 for finite x, NaN for inf and NaN).
template <class F>
bool transform_input(const float* x, const ConvGeom& g, int64_t gi, const LaneTile* lt, int64_t c0, int64_t c1,
                     float* v) {
  constexpr int A = F::A;
  static_assert(A == 6, "F::bt transforms six vectors");
  const int64_t plane = g.h * g.w, xs = point_stride(g.cg);
  // rows(r, c, d): d[q] = column q of input row r of the panel's tiles in channel c (zero outside
  // the image and past the last tile).
#if NC_HAVE_AVX2
  // Per tile, one masked load of each input row (its A columns inside the image; nothing is read
  // outside, and rows outside the image load nothing), then an 8x8 transpose turns 8 tiles' rows
  // into the lanes of the columns. The avx512 build's masked loads take a k-mask (AVX2's
  // vmaskmovps is slow on Zen).
  static_assert(A <= 8 && NR % 8 == 0, "tile rows must fit one vector");
  const float* base[NR];  // the tile's top-left input position in channel c0
#if NC_HAVE_AVX512
  __mmask8 mask[A][NR];
#else
  __m256i mask[A][NR];
#endif
  for (int l = 0; l < NR; ++l) {
    const LaneTile& t = lt[l];
    const unsigned lo = static_cast<unsigned>(std::clamp<int64_t>(-t.ix, 0, A));
    const unsigned hi = static_cast<unsigned>(std::clamp<int64_t>(g.w - t.ix, 0, A));
    const unsigned cols = hi > lo ? (1u << hi) - (1u << lo) : 0u;  // bits [lo, hi)
    base[l] = t.img < 0 ? x : x + ((t.img * g.groups + gi) * g.cg + c0) * plane + t.iy * g.w + t.ix;
    for (int r = 0; r < A; ++r) {
      const unsigned m = t.img >= 0 && t.iy + r >= 0 && t.iy + r < g.h ? cols : 0u;
#if NC_HAVE_AVX512
      mask[r][l] = static_cast<__mmask8>(m);
#else
      const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
      mask[r][l] = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(m)), bit), bit);
#endif
    }
  }
  static_assert(NR == 16, "two halves of 8 lanes");
  const auto load8 = [&](int r, int64_t c, int l0, __m256 (&t)[8]) {  // lanes l0..l0+7, transposed
    const int64_t off = (c - c0) * plane + r * g.w;
    for (int k = 0; k < 8; ++k) {
      const int l = l0 + k;
#if NC_HAVE_AVX512
      t[k] = _mm256_maskz_loadu_ps(mask[r][l], base[l] + off);
#else
      t[k] = _mm256_maskload_ps(base[l] + off, mask[r][l]);
#endif
    }
    transpose8(t);
  };
#if NC_HAVE_AVX512
  using W = VN;  // all NR lanes at once
  constexpr int WL = NR;
  const auto rows = [&](int r, int64_t c, int, W (&d)[A]) {
    __m256 lo[8], hi[8];
    load8(r, c, 0, lo);
    load8(r, c, 8, hi);
    for (int q = 0; q < A; ++q)
      d[q] = (VN)__builtin_shufflevector(lo[q], hi[q], 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  };
  const auto store = [](float* p, const W& w) { st(p, w); };
#else
  // 8 lanes at a time: GCC spills arrays of VN (two registers here) in 16-byte pieces, which
  // stall the 32-byte reloads (the 16-lane version measured 7% slower than the code before).
  using W = __m256;
  constexpr int WL = 8;
  const auto rows = [&](int r, int64_t c, int l0, W (&d)[A]) {
    __m256 t[8];
    load8(r, c, l0, t);
    for (int q = 0; q < A; ++q) d[q] = t[q];
  };
  const auto store = [](float* p, const W& w) { _mm256_storeu_ps(p, w); };
#endif
#else
  using W = VN;
  constexpr int WL = NR;
  const auto rows = [&](int r, int64_t c, int, VN (&d)[A]) {
    alignas(64) float buf[A * NR];
    for (int l = 0; l < NR; ++l) {
      const LaneTile& t = lt[l];
      const int64_t iy = t.iy + r;
      const bool row_in = t.img >= 0 && iy >= 0 && iy < g.h;
      const float* p = row_in ? x + ((t.img * g.groups + gi) * g.cg + c) * plane + iy * g.w : x;
      for (int q = 0; q < A; ++q) {
        const int64_t ix = t.ix + q;
        buf[q * NR + l] = row_in && ix >= 0 && ix < g.w ? p[ix] : 0.f;
      }
    }
    for (int q = 0; q < A; ++q) d[q] = ld(buf + q * NR);
  };
  const auto store = [](float* p, const VN& w) { st(p, w); };
#endif
  W bad{};
  for (int64_t c = c0; c < c1; ++c)
    for (int l0 = 0; l0 < NR; l0 += WL) {
      W db[A][A];  // db[r] = (d B)'s row r
      for (int r = 0; r < A; ++r) {
        W d[A];
        rows(r, c, l0, d);
        F::bt(d, db[r]);
      }
      for (int j = 0; j < A; ++j) {
        const W col[A] = {db[0][j], db[1][j], db[2][j], db[3][j], db[4][j], db[5][j]};
        W o[A];
        F::bt(col, o);
        for (int i = 0; i < A; ++i) {
          store(v + (i * A + j) * xs + c * NR + l0, o[i]);
          bad += o[i] - o[i];
        }
      }
    }
  alignas(64) float lanes[WL];
  __builtin_memcpy(lanes, &bad, sizeof bad);
  bool finite = true;
  for (int l = 0; l < WL; ++l) finite &= lanes[l] == 0.f;
  return finite;
}

// Out panels [q0, q1) of one panel of group gi: the GEMMs, then the output transform, bias, ReLU
// and the store of every output of the panel's tiles inside the output.
template <class F>
void multiply_and_store(const float* u, const float* v, const float* bias, float* y, const ConvGeom& g,
                        const Plan<F>& pl, int64_t gi, const LaneTile* lt, int64_t q0, int64_t q1, int act, float* mx) {
  constexpr int A = F::A, M = F::M;
  static_assert(A == 6 && M == 4, "F::at maps six vectors to four");
  const int64_t rows = std::min(g.og, q1 * MR) - q0 * MR, rows_pad = (q1 - q0) * MR;
  const int64_t u_stride = pl.opan * g.cg * MR, vs = point_stride(g.cg), ms = point_stride(rows_pad);
  const Epi<float> e{1.f, 0.f, nullptr, 0};
  // mx[xi][o][NR] (o relative to q0 * MR) at mx + xi*ms + o*NR
  for (int xi = 0; xi < A * A; ++xi) {
    const float* ux = u + gi * A * A * u_stride + xi * u_stride;
    for (int64_t q = q0; q < q1; ++q)
      Kern::ukr(g.cg, ux + q * g.cg * MR, v + xi * vs, mx + xi * ms + (q - q0) * MR * NR, NR, e,
                static_cast<int>(std::min<int64_t>(MR, g.og - q * MR)), NR);
  }
  const int64_t L = g.oh * g.ow;
  // Per lane: the output of its tile's top-left position in out channel 0 of the group, and
  // whether its whole tile lies inside the output.
  float* ybase[NR];
  bool whole[NR];
  bool all_whole = true;
  for (int l = 0; l < NR; ++l) {
    const LaneTile& t = lt[l];
    whole[l] = t.img >= 0 && t.oy + M <= g.oh && t.ox + M <= g.ow;
    all_whole &= whole[l];
    ybase[l] = t.img < 0 ? y : y + (t.img * g.groups + gi) * g.og * L + t.oy * g.ow + t.ox;
  }
  alignas(64) float out[M * M * NR];  // out[(r*M + q)*NR + l]: output (r, q) of lane l's tile
  // W: WL lanes at a time, as in transform_input.
#if NC_HAVE_AVX2 && !NC_HAVE_AVX512
  using W = __m256;
  constexpr int WL = 8;
  const auto ldw = [](const float* p) { return _mm256_loadu_ps(p); };
  const auto stw = [](float* p, const W& w) { _mm256_storeu_ps(p, w); };
#else
  using W = VN;
  constexpr int WL = NR;
  const auto ldw = [](const float* p) -> const VN& { return ld(p); };
  const auto stw = [](float* p, const W& w) { st(p, w); };
#endif
  for (int64_t o = 0; o < rows; ++o) {
    const int64_t oc = q0 * MR + o;
    const float b = bias ? bias[gi * g.og + oc] : 0.f;
    for (int l0 = 0; l0 < NR; l0 += WL) {
      // A^T Mx A: the columns of Mx first (into tmp, in L1), then the rows of tmp on registers.
      alignas(64) float tmp[M * A * WL];  // tmp[(i*A + l)*WL]
      for (int l = 0; l < A; ++l) {
        const float* m = mx + l * ms + o * NR + l0;
        const W col[A] = {ldw(m), ldw(m + A * ms), ldw(m + 2 * A * ms), ldw(m + 3 * A * ms), ldw(m + 4 * A * ms),
                          ldw(m + 5 * A * ms)};
        W t4[M];
        F::at(col, t4);
        for (int i = 0; i < M; ++i) stw(tmp + (i * A + l) * WL, t4[i]);
      }
      for (int r = 0; r < M; ++r) {
        const W row[A] = {ldw(tmp + r * A * WL), ldw(tmp + (r * A + 1) * WL), ldw(tmp + (r * A + 2) * WL),
                          ldw(tmp + (r * A + 3) * WL), ldw(tmp + (r * A + 4) * WL), ldw(tmp + (r * A + 5) * WL)};
        W yr[M];  // yr[q]: output (r, q) of every lane
        F::at(row, yr);
        for (int q = 0; q < M; ++q) {
          yr[q] += b;
          if (act == 1) yr[q] = yr[q] < 0.f ? W{} : yr[q];  // NaN stays NaN
        }
#if NC_HAVE_AVX512
        // 4x4 transposes within each 128-bit lane: z[j]'s 128-bit lane k holds row r of lane
        // 4k + j's tile; the whole tiles' rows are stored from there.
        const __m512 a0 = (__m512)yr[0], a1 = (__m512)yr[1], a2 = (__m512)yr[2], a3 = (__m512)yr[3];
        const __m512 t0 = _mm512_unpacklo_ps(a0, a1), t1 = _mm512_unpackhi_ps(a0, a1);
        const __m512 t2 = _mm512_unpacklo_ps(a2, a3), t3 = _mm512_unpackhi_ps(a2, a3);
        const __m512 z[4] = {(__m512)_mm512_unpacklo_pd((__m512d)t0, (__m512d)t2),
                             (__m512)_mm512_unpackhi_pd((__m512d)t0, (__m512d)t2),
                             (__m512)_mm512_unpacklo_pd((__m512d)t1, (__m512d)t3),
                             (__m512)_mm512_unpackhi_pd((__m512d)t1, (__m512d)t3)};
        const int64_t off = oc * L + r * g.ow;
        for (int j = 0; j < 4; ++j) {
          const __m128 c[4] = {_mm512_castps512_ps128(z[j]), _mm512_extractf32x4_ps(z[j], 1),
                               _mm512_extractf32x4_ps(z[j], 2), _mm512_extractf32x4_ps(z[j], 3)};
          for (int k = 0; k < 4; ++k)
            if (whole[4 * k + j]) _mm_storeu_ps(ybase[4 * k + j] + off, c[k]);
        }
        if (!all_whole)
#endif
          for (int q = 0; q < M; ++q) stw(out + (r * M + q) * NR + l0, yr[q]);
      }
    }
    if (all_whole && NC_HAVE_AVX512) continue;
    int l = 0;
#if NC_HAVE_AVX2 && !NC_HAVE_AVX512
    // 4 whole tiles at a time: a 4x4 transpose per output row
    for (; l + 4 <= NR && whole[l] && whole[l + 1] && whole[l + 2] && whole[l + 3]; l += 4) {
      float* y0 = ybase[l] + oc * L;
      float* y1 = ybase[l + 1] + oc * L;
      float* y2 = ybase[l + 2] + oc * L;
      float* y3 = ybase[l + 3] + oc * L;
      for (int r = 0; r < M; ++r) {
        __m128 a0 = _mm_load_ps(out + (r * M + 0) * NR + l), a1 = _mm_load_ps(out + (r * M + 1) * NR + l);
        __m128 a2 = _mm_load_ps(out + (r * M + 2) * NR + l), a3 = _mm_load_ps(out + (r * M + 3) * NR + l);
        _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
        _mm_storeu_ps(y0 + r * g.ow, a0);
        _mm_storeu_ps(y1 + r * g.ow, a1);
        _mm_storeu_ps(y2 + r * g.ow, a2);
        _mm_storeu_ps(y3 + r * g.ow, a3);
      }
    }
#endif
    for (; l < NR; ++l) {
      const LaneTile& t = lt[l];
      if (t.img < 0) break;
      if (NC_HAVE_AVX512 && whole[l]) continue;  // stored above
      float* yo = ybase[l] + oc * L;
      const int64_t nr = std::min<int64_t>(M, g.oh - t.oy), nc = std::min<int64_t>(M, g.ow - t.ox);
      for (int64_t r = 0; r < nr; ++r)
        for (int64_t q = 0; q < nc; ++q) yo[r * g.ow + q] = out[(r * M + q) * NR + l];
    }
  }
}

// Whether every value of p[0, n) is finite (x - x is 0 for finite x, NaN for inf and NaN).
bool all_finite(const float* p, int64_t n) {
  constexpr int64_t kLanes = 16;
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) acc[l] *= p[i + l] - p[i + l];  // 0 * NaN is NaN
  float r = 0.f;
  for (; i < n; ++i) r *= p[i] - p[i];
  for (int64_t l = 0; l < kLanes; ++l) r += acc[l];
  return r == 0.f;
}

// Units of (group, panel) below which out channels are split into blocks too (batch 1).
constexpr int64_t kMinUnits = 8;

template <class F>
int64_t weights_size(const ConvGeom& g) {
  return g.groups * F::A * F::A * Plan<F>(g).opan * g.cg * MR;
}

// Returns false when an input tile transform is not finite (an inf or NaN in x, or an overflow).
// With u_ready (transform_weights' result) the weights are not transformed again.
template <class F>
bool conv2d_wino(const float* x, const float* w, const float* u_ready, const float* bias, float* y, const ConvGeom& g,
                 int act) {
  constexpr int A = F::A;
  const Plan<F> pl(g);
  float* u = u_ready ? const_cast<float*>(u_ready)
                     : static_cast<float*>(scratch<Scratch::kWeights>(sizeof(float) * weights_size<F>(g)));
  const double work = double(g.n) * double(g.groups * g.og) * double(g.oh * g.ow) * double(g.cg * 9);
  const bool par = threads_for(work, double(1 << 17)) > 1;
  const auto run = [&](int64_t begin, int64_t end, int64_t grain, const auto& body) {
    if (par)
      nc::parallel_for(begin, end, grain, body);
    else
      body(begin, end);
  };
  const auto weights = [&](int64_t q0, int64_t q1) { transform_weights<F>(w, g, pl, q0, q1, u); };
  const int64_t units = g.groups * pl.panels;
  const int64_t oblocks = units >= kMinUnits ? 1 : std::min(pl.opan, ceil_div(kMinUnits, units));
  const int64_t per_block = ceil_div(pl.opan, oblocks);
  const int64_t vsize = A * A * point_stride(g.cg);  // floats of one panel's V
  const int64_t msize = A * A * point_stride(per_block * MR);
  std::atomic<bool> finite{true};
  if (oblocks == 1) {
    if (!u_ready) run(0, pl.opan, std::max<int64_t>(1, 64 / (g.cg * g.groups)), weights);
    run(0, units, 1, [&](int64_t u0, int64_t u1) {
      float* v = static_cast<float*>(scratch<Scratch::kColumns>(sizeof(float) * vsize));
      float* mx = static_cast<float*>(scratch<Scratch::kTile>(sizeof(float) * msize));
      LaneTile lt[NR];
      for (int64_t un = u0; un < u1; ++un) {
        const int64_t gi = un / pl.panels, panel = un % pl.panels;
        pl.lanes(g, panel, lt);
        if (!transform_input<F>(x, g, gi, lt, 0, g.cg, v)) finite.store(false, std::memory_order_relaxed);
        multiply_and_store<F>(u, v, bias, y, g, pl, gi, lt, 0, pl.opan, act, mx);
      }
    });
    return finite.load();
  }
  // Few panels: the weight transforms (one item per out panel, none with u_ready) and the panels'
  // input transforms (one per block of channels) in one parallel loop, then the out-channel blocks.
  float* vall = static_cast<float*>(scratch<Scratch::kColumns>(sizeof(float) * units * vsize));
  constexpr int64_t kCb = 8;
  const int64_t cblocks = ceil_div(g.cg, kCb), witems = u_ready ? 0 : pl.opan;
  run(0, witems + units * cblocks, 1, [&](int64_t a0, int64_t a1) {
    LaneTile lt[NR];
    for (int64_t a = a0; a < a1; ++a) {
      if (a < witems) {
        weights(a, a + 1);
        continue;
      }
      const int64_t un = (a - witems) / cblocks, cb = (a - witems) % cblocks;
      const int64_t gi = un / pl.panels, panel = un % pl.panels;
      pl.lanes(g, panel, lt);
      const int64_t c0 = cb * kCb, c1 = std::min(g.cg, c0 + kCb);
      if (!transform_input<F>(x, g, gi, lt, c0, c1, vall + un * vsize)) finite.store(false, std::memory_order_relaxed);
    }
  });
  if (!finite.load()) return false;
  run(0, units * oblocks, 1, [&](int64_t b0, int64_t b1) {
    float* mx = static_cast<float*>(scratch<Scratch::kTile>(sizeof(float) * msize));
    LaneTile lt[NR];
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t un = b / oblocks, ob = b % oblocks, gi = un / pl.panels, panel = un % pl.panels;
      const int64_t q0 = ob * per_block, q1 = std::min(pl.opan, q0 + per_block);
      if (q0 >= q1) continue;
      pl.lanes(g, panel, lt);
      multiply_and_store<F>(u, vall + un * vsize, bias, y, g, pl, gi, lt, q0, q1, act, mx);
    }
  });
  return true;
}

bool conv2d_f32(const float* x, const float* w, const float* bias, float* y, const ConvGeom& g, int act) {
  // The transforms add and subtract the values of a tile: one inf or NaN would spread to outputs
  // whose window does not hold it (inf - inf). Such inputs take the other paths (checked on the
  // weights, and on the transformed input tiles, in cache, as they are made).
  if (!all_finite(w, g.groups * g.og * g.cg * 9)) return false;
  return conv2d_wino<F4>(x, w, nullptr, bias, y, g, act);
}

int64_t weights_elems(const ConvGeom& g) { return weights_size<F4>(g); }

bool transform_weights_all(const float* w, const ConvGeom& g, float* u) {
  if (!all_finite(w, g.groups * g.og * g.cg * 9)) return false;
  const Plan<F4> pl(g);
  const double work = double(g.groups * pl.opan) * double(g.cg) * 1000;  // ~1000 flops per (panel, channel)
  const auto body = [&](int64_t q0, int64_t q1) { transform_weights<F4>(w, g, pl, q0, q1, u); };
  if (threads_for(work, double(1 << 17)) > 1)
    nc::parallel_for(0, pl.opan, 1, body);
  else
    body(0, pl.opan);
  return true;
}

bool conv2d_transformed_f32(const float* x, const float* u, const float* bias, float* y, const ConvGeom& g, int act) {
  return conv2d_wino<F4>(x, nullptr, u, bias, y, g, act);
}

// ---- weight gradient ----------------------------------------------------------------------------
// Per tile the weight gradient is the adjoint of the forward's y = A^T [U . V] A in U:
// gw += G^T [ V . (A gy A^T) ] G, with V = B^T d B the forward's input transform (transform_input,
// one tile per lane) and gy the tile's m x m output gradient (zero past the output). Summed over
// the tiles first, the (m+2)^2 points are (m+2)^2 GEMMs S[xi] (in x out channels) = V[xi] (in x
// tiles) times M[xi]^T (tiles x out), for 4 x 4 tiles 36 multiplies per channel pair and tile
// where the direct sum takes 144; G^T S G then gives the 3 x 3 taps. The out channels are the
// vector lanes of M, S and the two transforms on either side, one register of them at a time
// (kOutLanes; as 16-lane GCC vectors, two registers in the avx2 build, GCC spilled the arrays of
// them: 2.5x slower), padded to 16.
constexpr int kOutLanes = NC_HAVE_AVX512 ? 16 : NC_HAVE_AVX2 ? 8 : 4;
typedef float VO __attribute__((vector_size(kOutLanes * sizeof(float)), aligned(4), may_alias));
inline const VO& ldo(const float* p) { return *reinterpret_cast<const VO*>(p); }
inline void sto(float* p, const VO& v) { *reinterpret_cast<VO*>(p) = v; }
// Floats between the transform points of M and S: the data plus one cache line, so that the
// 36 points of a tile or channel, which the transforms read or write together, do not fall in one
// L1 set (a chunk of 8 16x16 images has 128 tiles: 32 KiB a point at 64 channels). Measured on
// Zen 5 (1 thread, batch 64 32->64 16x16 pad 1): 1.26 ms against 1.64-1.78 ms without.
inline int64_t points_apart(int64_t rows, int64_t cols) { return rows * cols + 16; }

// Rows (in channels) of the GEMM's register tile: one accumulator register each, 16 of the avx512
// build's 32 registers, 12 of the 16 elsewhere.
constexpr int kWgradRows = NC_HAVE_AVX512 ? 16 : 12;

// S[xi] rows [c0, c0 + mr) x out-channel vector ov: the sum over tiles t in order (t is lane
// t % NR of input panel t / NR) of V[xi][c][t] M[xi][t][o], one FMA chain per element from zero.
// Rows past mr read whatever follows (V's buffer has RB rows of slack) and are not stored.
template <int RB>
void wgrad_points_tile(const float* v, int64_t vsize, const float* m, int64_t tiles, int64_t ogp, int64_t c0, int mr,
                       float* s) {
  VO acc[RB];
  for (int i = 0; i < RB; ++i) acc[i] = VO{};
  for (int64_t t0 = 0; t0 < tiles; t0 += NR) {
    const float* vp = v + (t0 / NR) * vsize + c0 * NR;
    const float* mp = m + t0 * ogp;
    const int64_t lanes = std::min<int64_t>(NR, tiles - t0);
    for (int64_t l = 0; l < lanes; ++l, mp += ogp) {
      const VO mv = ldo(mp);
#pragma GCC unroll 16
      for (int i = 0; i < RB; ++i) acc[i] += vp[i * NR + l] * mv;
    }
  }
  for (int i = 0; i < mr; ++i) sto(s + (c0 + i) * ogp, acc[i]);
}

// M[xi][t0 + t][o] (row stride ogp = og rounded up to 16, point stride ps floats) = (A gy A^T)[xi]
// of the image's tiles t (row-major, 4 x 4 outputs each, zero past the output) for the image's
// output gradient gyg (og planes); gyt: L x ogp floats of scratch (gy^T). Returns false when gy
// holds an inf or NaN.
bool transform_output_grad(const float* gyg, const ConvGeom& g, int64_t t0, int64_t ps, float* m, float* gyt) {
  using F = F4;
  constexpr int A = F::A, M = F::M;
  const int64_t L = g.oh * g.ow, og = g.og, ogp = ceil_div(og, 16) * 16, tw = ceil_div(g.ow, M);
  if (!all_finite(gyg, og * L)) return false;
  for (int64_t o0 = 0; o0 < ogp; o0 += 16) {
    int64_t done = 0;
#if NC_HAVE_AVX2
    if (o0 + 16 <= og) done = pack_b16_trans_avx(gyg + o0 * L, L, L, gyt + o0, ogp);
#endif
    for (int64_t o = o0; o < o0 + 16; ++o)
      for (int64_t q = done; q < L; ++q) gyt[q * ogp + o] = o < og ? gyg[o * L + q] : 0.f;
  }
  for (int64_t ty = 0; ty * M < g.oh; ++ty)
    for (int64_t tx = 0; tx < tw; ++tx) {
      const int64_t t = t0 + ty * tw + tx;
      for (int64_t ov = 0; ov < ogp / kOutLanes; ++ov) {
        VO ca[M][A];  // ca[c] = A times column c of the tile
        for (int64_t c = 0; c < M; ++c) {
          VO col[M];
          for (int64_t r = 0; r < M; ++r) {
            const int64_t oy = ty * M + r, ox = tx * M + c;
            col[r] = oy < g.oh && ox < g.ow ? ldo(gyt + (oy * g.ow + ox) * ogp + ov * kOutLanes) : VO{};
          }
          F::a(col, ca[c]);
        }
        for (int i = 0; i < A; ++i) {
          const VO row[M] = {ca[0][i], ca[1][i], ca[2][i], ca[3][i]};
          VO o[A];
          F::a(row, o);
          for (int j = 0; j < A; ++j) sto(m + (i * A + j) * ps + t * ogp + ov * kOutLanes, o[j]);
        }
      }
    }
  return true;
}

// gwt rows of group gi ([group][cg*9][og], all of them) = the weight gradient over images
// [n0, n1). Returns false (gwt then unspecified) when a transformed input tile or gy holds an inf
// or NaN: the transforms would spread it to taps whose sums do not hold it.
bool weight_grad_f32(const float* x, const float* gy, float* gwt, const ConvGeom& g, int64_t n0, int64_t n1,
                     int64_t gi) {
  using F = F4;
  constexpr int A = F::A, P = A * A;
  ConvGeom gc = g;  // the chunk as a batch of its own
  gc.n = n1 - n0;
  const float* xc = x + n0 * g.groups * g.cg * g.h * g.w;
  const float* gyc = gy + n0 * g.groups * g.og * g.oh * g.ow;
  const Plan<F> pl(gc);
  const int64_t L = g.oh * g.ow, og = g.og, ogp = ceil_div(og, 16) * 16, ovs = ogp / kOutLanes, T = pl.tiles;
  const int64_t vsize = P * point_stride(g.cg);
  float* v = static_cast<float*>(scratch<Scratch::kColumns>(sizeof(float) * (pl.panels * vsize + kWgradRows * NR)));
  const int64_t mps = points_apart(T, ogp), sps = points_apart(g.cg, ogp);
  float* m = static_cast<float*>(scratch<Scratch::kTile>(sizeof(float) * P * mps));
  float* s = static_cast<float*>(scratch<Scratch::kWeights>(sizeof(float) * P * sps));
  float* gyt = static_cast<float*>(scratch<Scratch::kPlan>(sizeof(float) * L * ogp));
  LaneTile lt[NR];
  for (int64_t panel = 0; panel < pl.panels; ++panel) {
    pl.lanes(gc, panel, lt);
    if (!transform_input<F>(xc, gc, gi, lt, 0, g.cg, v + panel * vsize)) return false;
  }
  // M[xi][t][o] = (A gy A^T)[xi] of tile t, one image at a time.
  for (int64_t img = 0; img < gc.n; ++img)
    if (!transform_output_grad(gyc + (img * g.groups + gi) * og * L, g, img * pl.th * pl.tw, mps, m, gyt)) return false;
  for (int xi = 0; xi < P; ++xi)
    for (int64_t c0 = 0; c0 < g.cg; c0 += kWgradRows)
      for (int64_t ov = 0; ov < ovs; ++ov)
        wgrad_points_tile<kWgradRows>(v + xi * point_stride(g.cg), vsize, m + xi * mps + ov * kOutLanes, T, ogp, c0,
                                      static_cast<int>(std::min<int64_t>(kWgradRows, g.cg - c0)),
                                      s + xi * sps + ov * kOutLanes);
  // gw[c][o] = G^T S[c][o] G, stored as gwt rows (c, i, j).
  float* gw = gwt + gi * g.cg * 9 * og;
  for (int64_t c = 0; c < g.cg; ++c)
    for (int64_t ov = 0; ov < ovs; ++ov) {
      VO gc3[A][3];  // gc3[j] = G^T times column j of S
      for (int j = 0; j < A; ++j) {
        VO col[A];
        for (int i = 0; i < A; ++i) col[i] = ldo(s + (i * A + j) * sps + c * ogp + ov * kOutLanes);
        F::gt(col, gc3[j]);
      }
      const int64_t n = std::min<int64_t>(kOutLanes, og - ov * kOutLanes);
      for (int i = 0; i < 3; ++i) {
        const VO row[A] = {gc3[0][i], gc3[1][i], gc3[2][i], gc3[3][i], gc3[4][i], gc3[5][i]};
        VO o[3];
        F::gt(row, o);
        for (int j = 0; j < 3; ++j) {
          float* dst = gw + (c * 9 + i * 3 + j) * og + ov * kOutLanes;
          if (n == kOutLanes)
            sto(dst, o[j]);
          else
            for (int64_t l = 0; l < n; ++l) dst[l] = o[j][l];
        }
      }
    }
  return true;
}


// ---- input gradient -----------------------------------------------------------------------------
// Per tile the input gradient is the adjoint of the forward's y = A^T [U . V] A in d (V = B^T d B):
// the (m+2) x (m+2) window of tile gets B [ U^T . (A gy A^T) ] B^T added, windows overlapping by
// 2. On the forward's tiles of the output (an 11x11 output: 9 tiles of 4x4; as a convolution of gy
// padded by 2, its 13x13 result takes 16) and with the forward's machinery with the roles of the
// channels swapped: a panel of NR consecutive tiles of the images gets V'[xi][o][NR] = A gy A^T
// (one tile per lane), the micro-kernel makes Z[xi] (in channels x NR) = U^T[xi] V'[xi] with U^T
// packed as its A panels (the weights' transform with in and out channels swapped), and B Z B^T
// is added into gx tile by tile in tile order, so each input's sum has one order.

// U^T for input_grad_f32: transform_weights of the weights transposed (in channels as out).
ConvGeom swapped(const ConvGeom& g) {
  ConvGeom s = g;
  s.cg = g.og, s.og = g.cg;
  return s;
}

int64_t input_grad_weights_elems(const ConvGeom& g) { return weights_size<F4>(swapped(g)); }

bool transform_weights_for_input_grad(const float* w, const ConvGeom& g, float* u) {
  if (!all_finite(w, g.groups * g.og * g.cg * 9)) return false;
  std::vector<float> wt(static_cast<size_t>(g.groups * g.og * g.cg * 9));  // [group][c][o][tap]
  for (int64_t gi = 0; gi < g.groups; ++gi)
    for (int64_t o = 0; o < g.og; ++o)
      for (int64_t c = 0; c < g.cg; ++c)
        for (int t = 0; t < 9; ++t)
          wt[((gi * g.cg + c) * g.og + o) * 9 + t] = w[((gi * g.og + o) * g.cg + c) * 9 + t];
  const ConvGeom s = swapped(g);
  const Plan<F4> pl(s);
  transform_weights<F4>(wt.data(), s, pl, 0, pl.opan, u);
  return true;
}

// Images per input_grad_f32 call that make whole panels of tiles (the last call of a batch may
// take fewer), or 0 where the input gradient as the forward of gy on the flipped weights (16
// tiles for a 13x13 input whose 11x11 output takes 9 here) takes under 4/3 as many tiles as the
// output: per tile, the windows' overlapping adds cost more than the forward's stores (Zen 5,
// 1 thread, batch 64 32->64 16x16 padding 1, 16 tiles either way: 1.87 ms against 1.37).
int64_t input_grad_images(const ConvGeom& g) {
  const int64_t t = ceil_div(g.oh, int64_t(4)) * ceil_div(g.ow, int64_t(4));
  if (3 * ceil_div(g.h, int64_t(4)) * ceil_div(g.w, int64_t(4)) < 4 * t) return 0;
  int64_t k = 1;
  while ((k * t) % NR != 0) ++k;
  return k;
}

// V'[xi][o][NR] (element (xi, o) at v + xi*point_stride(og) + o*NR) = A gy A^T of the panel's
// tiles of group gi (zero past the output and the last tile). Returns false when a value is not
// finite (an inf or NaN in gy).
template <class F>
bool transform_output_grad_panel(const float* gy, const ConvGeom& g, int64_t gi,
                                                           const LaneTile* lt, float* v) {
  constexpr int A = F::A, M = F::M;
  static_assert(M == 4 && NR % 4 == 0, "4x4 transposes of four tiles' rows");
  const int64_t L = g.oh * g.ow, vs = point_stride(g.og);
  // Per lane: its tile's top-left output in out channel 0, and the columns of each of its rows
  // inside the output (none past the last tile).
  const float* base[NR];
  int cols[NR][M];
  for (int l = 0; l < NR; ++l) {
    const LaneTile& t = lt[l];
    base[l] = t.img < 0 ? gy : gy + (t.img * g.groups + gi) * g.og * L + t.oy * g.ow + t.ox;
    for (int r = 0; r < M; ++r)
      cols[l][r] = t.img < 0 || t.oy + r >= g.oh ? 0 : static_cast<int>(std::min<int64_t>(M, g.ow - t.ox));
  }
  alignas(64) float buf[M * M * NR];  // buf[(r*M + c)*NR + l]: row r, column c of lane l's tile
  VN bad{};
  for (int64_t o = 0; o < g.og; ++o) {
    for (int r = 0; r < M; ++r)
      for (int l0 = 0; l0 < NR; l0 += 4) {
#if NC_HAVE_AVX2
        // rows r of four tiles (masked loads: nothing is read outside the output), transposed into
        // their columns
        __m128 q[4];
        for (int k = 0; k < 4; ++k) {
          const float* src = base[l0 + k] + o * L + r * g.ow;
          const int n = cols[l0 + k][r];
#if NC_HAVE_AVX512
          q[k] = _mm_maskz_loadu_ps(static_cast<__mmask8>((1u << n) - 1), src);
#else
          q[k] = n == M ? _mm_loadu_ps(src)
                        : _mm_maskload_ps(src, _mm_cmpgt_epi32(_mm_set1_epi32(n), _mm_setr_epi32(0, 1, 2, 3)));
#endif
        }
        _MM_TRANSPOSE4_PS(q[0], q[1], q[2], q[3]);
        for (int c = 0; c < M; ++c) _mm_store_ps(buf + (r * M + c) * NR + l0, q[c]);
#else
        for (int k = 0; k < 4; ++k) {
          const float* src = base[l0 + k] + o * L + r * g.ow;
          for (int c = 0; c < M; ++c) buf[(r * M + c) * NR + l0 + k] = c < cols[l0 + k][r] ? src[c] : 0.f;
        }
#endif
      }
    VN ca[M][A];  // ca[c] = A times column c of the tiles
    for (int c = 0; c < M; ++c) {
      const VN col[M] = {ld(buf + c * NR), ld(buf + (M + c) * NR), ld(buf + (2 * M + c) * NR), ld(buf + (3 * M + c) * NR)};
      F::a(col, ca[c]);
    }
    for (int i = 0; i < A; ++i) {
      const VN row[M] = {ca[0][i], ca[1][i], ca[2][i], ca[3][i]};
      VN out[A];
      F::a(row, out);
      for (int j = 0; j < A; ++j) {
        st(v + (i * A + j) * vs + o * NR, out[j]);
        bad += out[j] - out[j];
      }
    }
  }
  bool finite = true;
  for (int l = 0; l < NR; ++l) finite &= bad[l] == 0.f;
  return finite;
}

// gx += B Z B^T of the panel's tiles (Z[xi][c][NR] at z + xi*zs + c*NR), each tile's window
// clipped to the input, tile after tile.
template <class F>
void add_windows(const float* z, int64_t zs, const ConvGeom& g, int64_t gi,
                                           const LaneTile* lt, float* gx) {
  constexpr int A = F::A;
  static_assert(A == 6, "window rows of six, padded to eight");
  const int64_t hw = g.h * g.w;
  alignas(64) float out[A * A * NR];  // out[(k*A + l)*NR + lane]: window row k, column l
  alignas(64) float win[NR * A * 8];  // win[(lane*A + k)*8 + l]: the same, a lane's rows together
  for (int64_t c = 0; c < g.cg; ++c) {
    alignas(64) float bc[A * A * NR];  // bc[(k*A + j)*NR]: B times column j of Z, element k
    for (int j = 0; j < A; ++j) {
      const float* zc = z + j * zs + c * NR;
      const VN col[A] = {ld(zc), ld(zc + A * zs), ld(zc + 2 * A * zs), ld(zc + 3 * A * zs), ld(zc + 4 * A * zs),
                         ld(zc + 5 * A * zs)};
      VN o[A];
      F::b(col, o);
      for (int k = 0; k < A; ++k) st(bc + (k * A + j) * NR, o[k]);
    }
    for (int k = 0; k < A; ++k) {
      const VN row[A] = {ld(bc + k * A * NR), ld(bc + (k * A + 1) * NR), ld(bc + (k * A + 2) * NR),
                         ld(bc + (k * A + 3) * NR), ld(bc + (k * A + 4) * NR), ld(bc + (k * A + 5) * NR)};
      VN o[A];
      F::b(row, o);
      for (int l = 0; l < A; ++l) st(out + (k * A + l) * NR, o[l]);
    }
#if NC_HAVE_AVX2
    for (int k = 0; k < A; ++k)
      for (int l0 = 0; l0 < NR; l0 += 8) {
        __m256 t[8];
        for (int l = 0; l < A; ++l) t[l] = _mm256_load_ps(out + (k * A + l) * NR + l0);
        t[6] = t[7] = _mm256_setzero_ps();
        transpose8(t);
        for (int i = 0; i < 8; ++i) _mm256_store_ps(win + ((l0 + i) * A + k) * 8, t[i]);
      }
#else
    for (int k = 0; k < A; ++k)
      for (int l = 0; l < A; ++l)
        for (int lane = 0; lane < NR; ++lane) win[(lane * A + k) * 8 + l] = out[(k * A + l) * NR + lane];
#endif
    for (int lane = 0; lane < NR; ++lane) {
      const LaneTile& t = lt[lane];
      if (t.img < 0) break;
      float* p = gx + ((t.img * g.groups + gi) * g.cg + c) * hw + t.iy * g.w + t.ix;
      const float* wl = win + lane * A * 8;
      const int64_t k0 = std::max<int64_t>(0, -t.iy), k1 = std::min<int64_t>(A, g.h - t.iy);
      const int64_t j0 = std::max<int64_t>(0, -t.ix), j1 = std::min<int64_t>(A, g.w - t.ix);
      for (int64_t k = k0; k < k1; ++k) {
        float* pk = p + k * g.w;
        const float* wk = wl + k * 8;
#if NC_HAVE_AVX2
        if (j0 == 0 && j1 == A) {  // the whole row: 4 + 2 floats
          _mm_storeu_ps(pk, _mm_add_ps(_mm_loadu_ps(pk), _mm_load_ps(wk)));
          const __m128 e = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(pk + 4)));
          _mm_store_sd(reinterpret_cast<double*>(pk + 4), _mm_castps_pd(_mm_add_ps(e, _mm_load_ps(wk + 4))));
          continue;
        }
#endif
        for (int64_t j = j0; j < j1; ++j) pk[j] += wk[j];
      }
    }
  }
}

// gx of images [n0, n1) (every group) from gy and u (transform_weights_for_input_grad's). Single-
// threaded. Returns false (those images of gx then unspecified) when gy holds an inf or NaN there.
bool input_grad_f32(const float* gy, const float* u, float* gx, const ConvGeom& g, int64_t n0, int64_t n1) {
  using F = F4;
  constexpr int A = F::A, M = F::M, P = A * A;
  const int64_t th = ceil_div(g.oh, int64_t(M)), tw = ceil_div(g.ow, int64_t(M)), T = th * tw;
  const int64_t tiles = (n1 - n0) * T, hw = g.h * g.w;
  const int64_t cpan = ceil_div(g.cg, int64_t(MR)), u_stride = cpan * g.og * MR;
  const int64_t vs = point_stride(g.og), zs = point_stride(cpan * MR);
  float* v = static_cast<float*>(scratch<Scratch::kColumns>(sizeof(float) * P * vs));
  float* z = static_cast<float*>(scratch<Scratch::kTile>(sizeof(float) * P * zs));
  std::fill(gx + n0 * g.groups * g.cg * hw, gx + n1 * g.groups * g.cg * hw, 0.f);
  const Epi<float> e{1.f, 0.f, nullptr, 0};
  LaneTile lt[NR];
  for (int64_t gi = 0; gi < g.groups; ++gi)
    for (int64_t t0 = 0; t0 < tiles; t0 += NR) {
      for (int l = 0; l < NR; ++l) {
        const int64_t t = t0 + l;
        if (t >= tiles) {
          lt[l] = {-1, 0, 0, 0, 0};
          continue;
        }
        const int64_t img = n0 + t / T, ty = t % T / tw, tx = t % tw;
        lt[l] = {img, ty * M - g.pt, tx * M - g.pl, ty * M, tx * M};
      }
      if (!transform_output_grad_panel<F>(gy, g, gi, lt, v)) return false;
      for (int xi = 0; xi < P; ++xi) {
        const float* ux = u + (gi * P + xi) * u_stride;
        for (int64_t q = 0; q < cpan; ++q)
          Kern::ukr(g.og, ux + q * g.og * MR, v + xi * vs, z + xi * zs + q * MR * NR, NR, e,
                    static_cast<int>(std::min<int64_t>(MR, g.cg - q * MR)), NR);
      }
      add_windows<F>(z, zs, g, gi, lt, gx);
    }
  return true;
}

}  // namespace

const WinogradKernels winograd_table = {conv2d_f32, weights_elems, transform_weights_all, conv2d_transformed_f32,
                                        weight_grad_f32,
                                        input_grad_images,
                                        input_grad_weights_elems,
                                        transform_weights_for_input_grad,
                                        input_grad_f32};

}  // namespace nc::kernels::NC_ISA
