// The backward of the Winograd F(4x4, 3x3) convolution (float32): the weight gradient and the
// input gradient as the adjoints of the forward's transforms (conv_winograd.cpp), on the forward's
// tiles and with its micro-kernel (conv_winograd_tiles.h).
#include <algorithm>
#include <vector>

#include "kernels/conv_winograd_tiles.h"

namespace nc::kernels::NC_ISA::wino {
namespace {

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
static_assert(kWgradRows <= kInputTransformSlackRows, "V's buffers hold the rows the tile reads past the last");

// S[xi] rows [c0, c0 + mr) x out-channel vector ov: the sum over the chunk's tiles t in order of
// V[xi][c][ta + t] M[xi][t][o], one FMA chain per element from zero. V numbers the tiles from ta
// before the chunk's first (tile ta + t is lane (ta + t) % NR of panel (ta + t) / NR): 0 for V made
// of the chunk alone, the chunk's first tile in the batch for the forward's V of the whole batch.
// Rows past mr read whatever follows (V's buffer has RB rows of slack) and are not stored.
template <int RB>
void wgrad_points_tile(const float* v, int64_t vsize, int64_t ta, const float* m, int64_t tiles, int64_t ogp,
                       int64_t c0, int mr, float* s) {
  VO acc[RB];
  for (int i = 0; i < RB; ++i) acc[i] = VO{};
  for (int64_t t = 0; t < tiles;) {
    const int64_t l0 = (ta + t) % NR, l1 = std::min<int64_t>(NR, l0 + tiles - t);
    const float* vp = v + (ta + t) / NR * vsize + c0 * NR;
    const float* mp = m + t * ogp;
    for (int64_t l = l0; l < l1; ++l, mp += ogp) {
      const VO mv = ldo(mp);
#pragma GCC unroll 16
      for (int i = 0; i < RB; ++i) acc[i] += vp[i * NR + l] * mv;
    }
    t += l1 - l0;
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

}  // namespace

// gwt rows of group gi ([group][cg*9][og], all of them) = the weight gradient over images
// [n0, n1), from the forward's transform of x (x_transform) or, without it, from x. Returns false
// (gwt then unspecified) when a transformed input tile or gy holds an inf or NaN: the transforms
// would spread it to taps whose sums do not hold it.
bool weight_grad_f32(const float* x, const float* x_transform, const float* gy, float* gwt, const ConvGeom& g,
                     int64_t n0, int64_t n1, int64_t gi) {
  using F = F4;
  constexpr int A = F::A, P = A * A;
  ConvGeom gc = g;  // the chunk as a batch of its own
  gc.n = n1 - n0;
  const float* xc = x + n0 * g.groups * g.cg * g.h * g.w;
  const float* gyc = gy + n0 * g.groups * g.og * g.oh * g.ow;
  const Plan<F> pl(gc);
  const int64_t L = g.oh * g.ow, og = g.og, ogp = ceil_div(og, 16) * 16, ovs = ogp / kOutLanes, T = pl.tiles;
  const int64_t vsize = P * point_stride(g.cg);
  const int64_t mps = points_apart(T, ogp), sps = points_apart(g.cg, ogp);
  float* m = static_cast<float*>(scratch<Scratch::kTile>(sizeof(float) * P * mps));
  float* s = static_cast<float*>(scratch<Scratch::kWeights>(sizeof(float) * P * sps));
  float* gyt = static_cast<float*>(scratch<Scratch::kPlan>(sizeof(float) * L * ogp));
  const float* v;  // V of the chunk's tiles, numbered from ta before its first
  int64_t ta = 0;
  if (x_transform) {
    const Plan<F> batch(g);
    v = x_transform + gi * batch.panels * vsize;
    ta = n0 * pl.th * pl.tw;
  } else {
    float* vc = static_cast<float*>(
        scratch<Scratch::kColumns>(sizeof(float) * (pl.panels * vsize + kInputTransformSlackRows * NR)));
    LaneTile lt[NR];
    for (int64_t panel = 0; panel < pl.panels; ++panel) {
      pl.lanes(gc, panel, lt);
      if (!transform_input<F>(xc, gc, gi, lt, 0, g.cg, vc + panel * vsize)) return false;
    }
    v = vc;
  }
  // M[xi][t][o] = (A gy A^T)[xi] of tile t, one image at a time.
  for (int64_t img = 0; img < gc.n; ++img)
    if (!transform_output_grad(gyc + (img * g.groups + gi) * og * L, g, img * pl.th * pl.tw, mps, m, gyt)) return false;
  for (int xi = 0; xi < P; ++xi)
    for (int64_t c0 = 0; c0 < g.cg; c0 += kWgradRows)
      for (int64_t ov = 0; ov < ovs; ++ov)
        wgrad_points_tile<kWgradRows>(v + xi * point_stride(g.cg), vsize, ta, m + xi * mps + ov * kOutLanes, T, ogp,
                                      c0, static_cast<int>(std::min<int64_t>(kWgradRows, g.cg - c0)),
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

namespace {

// U^T for input_grad_f32: transform_weights of the weights transposed (in channels as out).
ConvGeom swapped(const ConvGeom& g) {
  ConvGeom s = g;
  s.cg = g.og, s.og = g.cg;
  return s;
}

}  // namespace

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

namespace {

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

}  // namespace

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

}  // namespace nc::kernels::NC_ISA::wino
