#pragma once
// The pieces of the Winograd F(4x4, 3x3) kernels (compiled per ISA) that the forward
// (conv_winograd.cpp) and the backward (conv_winograd_backward.cpp) share: the micro-kernel and its
// panel sizes, the transform matrices, the tiles' numbering (Plan, LaneTile), the weights' and the
// input's transforms and the finiteness check. Included only from those two files; the method and
// its layouts are described in conv_winograd.cpp's header comment.
#include <algorithm>

#include "kernels/conv.h"
#include "kernels/gemm_micro.h"

namespace nc::kernels::NC_ISA::wino {

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

// Whether every value of p[0, n) is finite (x - x is 0 for finite x, NaN for inf and NaN).
inline bool all_finite(const float* p, int64_t n) {
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

template <class F>
int64_t weights_size(const ConvGeom& g) {
  return g.groups * F::A * F::A * Plan<F>(g).opan * g.cg * MR;
}

// Channel rows the weight gradient's register tile may read past a panel's last channel (its
// rows are at most this many).
constexpr int64_t kInputTransformSlackRows = 16;

// The input's transform of a whole batch: V of every (group, panel), panel un = group * panels +
// panel at un * A*A*point_stride(cg), then the slack the weight gradient reads.
template <class F>
int64_t input_transform_size(const ConvGeom& g) {
  return g.groups * Plan<F>(g).panels * F::A * F::A * point_stride(g.cg) + kInputTransformSlackRows * NR;
}

// The backward's entry points (conv_winograd_backward.cpp), for the table in conv_winograd.cpp;
// their contracts are WinogradKernels' (conv_winograd.h).
bool weight_grad_f32(const float* x, const float* x_transform, const float* gy, float* gwt, const ConvGeom& g,
                     int64_t n0, int64_t n1, int64_t gi);
int64_t input_grad_images(const ConvGeom& g);
int64_t input_grad_weights_elems(const ConvGeom& g);
bool transform_weights_for_input_grad(const float* w, const ConvGeom& g, float* u);
bool input_grad_f32(const float* gy, const float* u, float* gx, const ConvGeom& g, int64_t n0, int64_t n1);

}  // namespace nc::kernels::NC_ISA::wino
