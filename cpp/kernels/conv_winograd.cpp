// Winograd F(m x m, 3x3) convolution (float32), m = 4: y = A^T [ (G w G^T) . (B^T d B) ] A per output
// tile of m x m, input tile d of (m+2) x (m+2). The (m+2)^2 element-wise products, summed over
// input channels, are (m+2)^2 GEMMs (out channels x in channels) x (in channels x tiles) run on
// a packed micro-kernel (gemm_micro.h's; the avx512 build's own, Wino512Kernel in
// conv_winograd_tiles.h), MR x NR:
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
// input gradient (input_grad_f32) run the adjoint transforms on the same tiles
// (conv_winograd_backward.cpp); the pieces both sides use are in conv_winograd_tiles.h.
#include "kernels/conv_winograd.h"

#include <algorithm>
#include <atomic>

#include "kernels/conv_winograd_tiles.h"

namespace nc::kernels::NC_ISA {
namespace {

using namespace wino;

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

// Units of (group, panel) below which out channels are split into blocks too (batch 1).
constexpr int64_t kMinUnits = 8;

// Returns false when an input tile transform is not finite (an inf or NaN in x, or an overflow).
// With u_ready (transform_weights' result) the weights are not transformed again; with v_keep
// every panel's V is written there (input_transform_size floats) instead of to scratch.
template <class F>
bool conv2d_wino(const float* x, const float* w, const float* u_ready, const float* bias, float* y, const ConvGeom& g,
                 int act, float* v_keep) {
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
      float* vscratch = v_keep ? nullptr : static_cast<float*>(scratch<Scratch::kColumns>(sizeof(float) * vsize));
      float* mx = static_cast<float*>(scratch<Scratch::kTile>(sizeof(float) * msize));
      LaneTile lt[NR];
      for (int64_t un = u0; un < u1; ++un) {
        const int64_t gi = un / pl.panels, panel = un % pl.panels;
        pl.lanes(g, panel, lt);
        float* v = v_keep ? v_keep + un * vsize : vscratch;
        if (!transform_input<F>(x, g, gi, lt, 0, g.cg, v)) finite.store(false, std::memory_order_relaxed);
        multiply_and_store<F>(u, v, bias, y, g, pl, gi, lt, 0, pl.opan, act, mx);
      }
    });
    return finite.load();
  }
  // Few panels: the weight transforms (one item per out panel, none with u_ready) and the panels'
  // input transforms (one per block of channels) in one parallel loop, then the out-channel blocks.
  float* vall = v_keep ? v_keep : static_cast<float*>(scratch<Scratch::kColumns>(sizeof(float) * units * vsize));
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
  return conv2d_wino<F4>(x, w, nullptr, bias, y, g, act, nullptr);
}

int64_t input_transform_elems(const ConvGeom& g) { return input_transform_size<F4>(g); }

bool conv2d_keeping_input_f32(const float* x, const float* w, const float* bias, float* y, const ConvGeom& g, int act,
                              float* v) {
  if (!all_finite(w, g.groups * g.og * g.cg * 9)) return false;
  return conv2d_wino<F4>(x, w, nullptr, bias, y, g, act, v);
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
  return conv2d_wino<F4>(x, nullptr, u, bias, y, g, act, nullptr);
}

}  // namespace

const WinogradKernels winograd_table = {conv2d_f32,
                                        weights_elems,
                                        transform_weights_all,
                                        conv2d_transformed_f32,
                                        input_transform_elems,
                                        conv2d_keeping_input_f32,
                                        wino::weight_grad_f32,
                                        wino::input_grad_images,
                                        wino::input_grad_weights_elems,
                                        wino::transform_weights_for_input_grad,
                                        wino::input_grad_f32};

}  // namespace nc::kernels::NC_ISA
