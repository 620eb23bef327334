#include "kernels/conv.h"

#include <algorithm>
#include <cstring>

#include "kernels/conv_common.h"
#include "kernels/conv_winograd.h"

namespace nc::kernels::NC_ISA {
namespace {

using namespace conv_common;

template <class T>
void col2im(const T* col, const Im2colGeom& g, T* gx) {
  const int64_t L = g.oh * g.ow;
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* row = col + ((c * g.kh + i) * g.kw + j) * L;
        T* plane = gx + c * g.h * g.w;
        const int64_t x0 = -g.pl + j * g.dw;
        int64_t lo, hi;
        valid_range(x0, g.sw, g.w, g.ow, lo, hi);
        for (int64_t oy = 0; oy < g.oh; ++oy) {
          const int64_t iy = oy * g.sh - g.pt + i * g.dh;
          if (iy < 0 || iy >= g.h) continue;
          const T* r = row + oy * g.ow;
          T* dst = plane + iy * g.w + x0;
          if (g.sw == 1)
            for (int64_t ox = lo; ox < hi; ++ox) dst[ox] += r[ox];
          else
            for (int64_t ox = lo; ox < hi; ++ox) dst[ox * g.sw] += r[ox];
        }
      }
}

// ---- implicit GEMM forward ------------------------------------------------------------------

// Rows of the column matrix per K block: a 12 KiB column panel (KC x 16 floats) stays in L1
// while every weight panel streams over it. Measured on Zen 3: 24 KiB panels (the GEMM's KC)
// ran about 30% slower here, 8 KiB no faster. Wider panels (the avx512 build's 32 floats) are
// held at 12 KiB too; narrower ones (doubles, generic) take the rows of a 16-wide panel.
template <class T, class K>
constexpr int64_t conv_kc() { return 12288 / int64_t(sizeof(T)) / std::max<int64_t>(K::NR, 16); }

// Output positions per packed block: its columns are gathered row by row of the column matrix,
// so each row reads a sequential stretch of the input (a 16-position panel at a time would read
// hundreds of interleaved 64-byte streams, which the prefetchers cannot follow).
constexpr int64_t kBlockCols = 256;

// o[e] = src[e] for e in [lo, hi), 0 for the other e < NR (src[e] outside [lo, hi) is never read).
template <class T, int NR>
inline void copy_window(T* o, const T* src, int32_t lo, int32_t hi) {
#if NC_HAVE_AVX512
  using VT = V512<T>;
  constexpr int W = VT::W;
  static_assert(NR % W == 0);
  if (lo == 0 && hi == NR) {
    for (int v = 0; v < NR / W; ++v) VT::store(o + v * W, VT::load(src + v * W));
    return;
  }
  for (int v = 0; v < NR / W; ++v) {
    const auto m = static_cast<typename VT::I>(VT::mask(hi - v * W) & ~VT::mask(lo - v * W));
    VT::store(o + v * W, VT::loadm(src + v * W, m));
  }
#elif NC_HAVE_AVX2
  using VT = V<T>;
  constexpr int W = VT::W;
  if (lo == 0 && hi == NR) {  // the interior, most taps
    for (int v = 0; v < NR / W; ++v) VT::store(o + v * W, VT::load(src + v * W));
    return;
  }
  // Masked loads read nothing (and cannot fault) in the lanes outside [lo, hi).
  for (int v = 0; v < NR / W; ++v) {
    const auto m = _mm256_andnot_si256(VT::mask(lo - v * W), VT::mask(hi - v * W));
    VT::store(o + v * W, VT::loadm(src + v * W, m));
  }
#else
  for (int e = 0; e < NR; ++e) o[e] = e >= lo && e < hi ? src[e] : T(0);
#endif
}

// A piece of the packed block: up to NR consecutive output positions that lie in one output
// row and one panel. For a given kernel tap (i, j) it reads input row iy at columns
// [x0 + lo, x0 + hi) (stride 1) into panel columns [col + lo, col + hi); the rest of its
// lanes are zero. src = iy * w + x0 (relative to the channel plane); lo = hi = 0 when the
// row is padding.
struct Piece {
  int64_t dst, src;  // dst: offset of the piece's first lane in a packed row (panel * kc * NR + col)
  int32_t lo, hi;
  int32_t len;       // positions; 0 when the piece starts a panel (it then writes all NR lanes)
};

// The pieces of positions [l0, l0 + nl) for every kernel tap, taps major: the geometry of a tap
// is the same in every channel, so the gather loop below only copies.
template <int NR>
int64_t plan_pieces(const ConvGeom& g, int64_t l0, int64_t nl, int64_t kc, Piece* out) {
  int64_t n = 0;
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j)
      for (int64_t t = 0; t < nl;) {
        const int64_t l = l0 + t, oy = l / g.ow, ox = l % g.ow;
        const int64_t len = std::min({nl - t, g.ow - ox, NR - t % NR});
        const int64_t iy = oy * g.sh - g.pt + i * g.dh, x0 = ox * g.sw - g.pl + j * g.dw;
        Piece& pc = out[n++];
        pc.dst = (t / NR) * kc * NR + t % NR;
        pc.len = t % NR ? static_cast<int32_t>(len) : 0;
        if (iy < 0 || iy >= g.h) {
          pc.src = 0;
          pc.lo = pc.hi = 0;
        } else {
          pc.src = iy * g.w + x0;
          pc.lo = static_cast<int32_t>(std::clamp<int64_t>(-x0, 0, len));
          pc.hi = static_cast<int32_t>(std::clamp<int64_t>(g.w - x0, pc.lo, len));
        }
        t += len;
      }
  return n;
}

// Most pieces a block's plan can hold per tap: a piece ends at an output row or a panel edge.
inline int64_t max_pieces_per_tap(int64_t nl, int64_t nr) { return 2 * nl / nr + nl + 2; }

// Gathers rows [p0, p0+kc) x positions [l0, l0+nl) of one image's column matrix into NR-column
// panels laid out [panel][p][NR]; taps outside the input and columns past nl are zero.
// A piece that starts a panel writes all NR lanes of the panel row (zeros past its end): the
// pieces of a row are written in column order, so the next piece overwrites those lanes.
template <class T, int NR>
void pack_block(const T* x, const ConvGeom& g, int64_t l0, int64_t nl, int64_t p0, int64_t kc, T* d,
                const Piece* plan, int64_t per_tap) {
  const int64_t khw = g.kh * g.kw, tail = nl % NR, last_panel = (nl / NR) * kc * NR;
  for (int64_t p = 0; p < kc; ++p) {
    const int64_t c = (p0 + p) / khw, tap = (p0 + p) % khw;
    T* dp = d + p * NR;
    const T* plane = x + c * g.h * g.w;
    if (g.sw == 1) {
      for (const Piece* pc = plan + tap * per_tap, *end = pc + per_tap; pc < end; ++pc) {
        if (pc->len == 0) {
          copy_window<T, NR>(dp + pc->dst, plane + pc->src, pc->lo, pc->hi);
        } else {
          T* o = dp + pc->dst;
          const T* src = plane + pc->src;
          for (int32_t e = 0; e < pc->len; ++e) o[e] = e >= pc->lo && e < pc->hi ? src[e] : T(0);
        }
      }
    } else {
      // Per stretch of an output row, the output columns whose tap lies inside the input
      // ([a, b)) copied without bounds checks and the rest zeroed (bounds and 64-bit divisions
      // per element made this loop most of a stride-2 layer's time).
      const int64_t i = tap / g.kw, j = tap % g.kw, x0 = -g.pl + j * g.dw;
      int64_t lo, hi;
      valid_range(x0, g.sw, g.w, g.ow, lo, hi);
      for (int64_t t = 0; t < nl;) {
        const int64_t l = l0 + t, oy = l / g.ow, ox = l % g.ow, len = std::min(nl - t, g.ow - ox);
        const int64_t iy = oy * g.sh - g.pt + i * g.dh;
        const bool inside = iy >= 0 && iy < g.h;
        const int64_t a = inside ? std::clamp(lo, ox, ox + len) : ox + len, b = inside ? std::clamp(hi, a, ox + len) : a;
        // Positions [u, u + n) of the block from src (stride sw; null: zeros), a panel at a time.
        const auto put = [&](int64_t u, int64_t n, const T* src) {
          while (n > 0) {
            const int64_t k = std::min<int64_t>(n, NR - u % NR);
            T* o = dp + (u / NR) * kc * NR + u % NR;
            if (src) {
              for (int64_t e = 0; e < k; ++e) o[e] = src[e * g.sw];
              src += k * g.sw;
            } else {
              std::fill(o, o + k, T(0));
            }
            u += k;
            n -= k;
          }
        };
        put(t, a - ox, nullptr);
        if (inside) put(t + a - ox, b - a, plane + iy * g.w + x0 + a * g.sw);
        put(t + b - ox, ox + len - b, nullptr);
        t += len;
      }
    }
    if (tail) std::fill(dp + last_panel + tail, dp + last_panel + NR, T(0));
  }
}

template <class T, class K>
void conv2d_implicit(const T* x, const T* w, const T* bias, T* y, const ConvGeom& g, int act) {
  constexpr int MR = K::MR, NR = K::NR;
  constexpr int64_t KC = conv_kc<T, K>();
  const int64_t CK = g.cg * g.kh * g.kw, L = g.oh * g.ow;
  const int64_t wpanels = ceil_div(g.og, MR), wgroup = wpanels * MR * CK;
  // Weights packed once per call, by all threads: [group][K block][row panel][p][MR].
  T* wp = static_cast<T*>(scratch<Scratch::kWeights>(sizeof(T) * g.groups * wgroup));
  const double work = double(g.n) * double(g.groups * g.og) * double(L) * double(CK);
  const int nt_max = threads_for(work, double(1 << 17));
  // Blocks of whole panels, smaller when there are too few to keep every thread busy (batch 1).
  const int64_t lpanels = ceil_div(L, NR), images = g.n * g.groups;
  const int64_t per_block = std::clamp<int64_t>(images * lpanels / (4 * nt_max), 1, kBlockCols / NR);
  const int64_t blocks = ceil_div(lpanels, per_block), units = images * blocks, LB = per_block * NR;
  const int nt = static_cast<int>(std::min<int64_t>(nt_max, units));
  // Weight panels, then blocks of output columns, in fixed chunks that whichever thread is free
  // claims (nc::parallel_for): a thread the scheduler has set aside holds nobody up.
  const auto pack = [&](int64_t q0, int64_t q1) {
    for (int64_t gi = 0; gi < g.groups; ++gi)
      for (int64_t pb = 0; pb < CK; pb += KC) {
        const int64_t kc = std::min(KC, CK - pb);
        pack_a<T, MR>(false, w + gi * g.og * CK, CK, q0 * MR, std::min(g.og, q1 * MR) - q0 * MR, pb, kc,
                      wp + gi * wgroup + pb * wpanels * MR + q0 * MR * kc);
      }
  };
  const auto compute = [&](int64_t u0, int64_t u1) {
    T* bp = static_cast<T*>(scratch<Scratch::kColumns>(sizeof(T) * std::min(KC, CK) * LB));
    // Output rows of a block are written through a buffer whose row stride is not a multiple of
    // 4 KiB: the planes of y are (for 32x32 images exactly) 4 KiB apart, so a tile's rows would
    // all land in one L1 set.
    const int64_t ldcb = LB + 64 / int64_t(sizeof(T));
    T* cb = static_cast<T*>(scratch<Scratch::kTile>(sizeof(T) * g.og * ldcb));
    const int64_t per_tap_max = max_pieces_per_tap(LB, NR);
    Piece* plan = static_cast<Piece*>(scratch<Scratch::kPlan>(sizeof(Piece) * g.kh * g.kw * per_tap_max));
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t img_group = u / blocks, l0 = (u % blocks) * LB, gi = img_group % g.groups;
      const int64_t nl = std::min(LB, L - l0);
      const T* xg = x + img_group * g.cg * g.h * g.w;
      T* yg = y + img_group * g.og * L + l0;
      for (int64_t pb = 0; pb < CK; pb += KC) {
        const int64_t kc = std::min(KC, CK - pb);
        const bool last = pb + KC >= CK;
        const int64_t per_tap = plan_pieces<NR>(g, l0, nl, kc, plan) / (g.kh * g.kw);
        pack_block<T, NR>(xg, g, l0, nl, pb, kc, bp, plan, per_tap);
        const Epi<T> e{T(1), pb == 0 ? T(0) : T(1), nullptr, last ? act : 0,
                       last && bias ? bias + gi * g.og : nullptr};
        const T* wb = wp + gi * wgroup + pb * wpanels * MR;
        for (int64_t jr = 0; jr < nl; jr += NR) {
          const int64_t ncols = std::min<int64_t>(NR, nl - jr);
          for (int64_t ir = 0; ir < g.og; ir += MR) {
            Epi<T> er = e;
            if (er.row_bias) er.row_bias += ir;
            K::ukr(kc, wb + ir * kc, bp + jr * kc, cb + ir * ldcb + jr, ldcb, er,
                   static_cast<int>(std::min<int64_t>(MR, g.og - ir)), ncols);
          }
        }
      }
      for (int64_t o = 0; o < g.og; ++o) std::memcpy(yg + o * L, cb + o * ldcb, static_cast<size_t>(nl) * sizeof(T));
    }
  };
  if (nt <= 1) {
    pack(0, wpanels);
    compute(0, units);
    return;
  }
  // Packing is parallel only where a chunk copies at least ~16k values.
  nc::parallel_for(0, wpanels, ceil_div(int64_t(1) << 14, MR * CK * g.groups), pack);
  nc::parallel_for(0, units, 1, compute);
}

// ---- direct convolution (few taps per output) ----------------------------------------------

// Weights of one group's output channel block b as [tap][OB], zero past og; all blocks of all
// groups laid out [group][block].
template <class T, int OB>
void pack_direct_weights(const T* w, const ConvGeom& g, T* wp) {
  const int64_t K = g.cg * g.kh * g.kw, blocks = ceil_div(g.og, OB);
  for (int64_t gi = 0; gi < g.groups; ++gi)
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t t = 0; t < K; ++t)
        for (int o = 0; o < OB; ++o) {
          const int64_t oc = b * OB + o;
          wp[((gi * blocks + b) * K + t) * OB + o] = oc < g.og ? w[(gi * g.og + oc) * K + t] : T(0);
        }
}

// One tile: OB output channels (packed weights wt, [tap][OB]) times NV vectors of consecutive
// positions [ox0, ox0 + np) of one output row, np <= NV * lanes. The input rows under the row's
// taps were copied into a zero-padded strip (rows laid out so that tap t of output column ox reads
// strip[off[t] + ox]), so every load is a plain full-width load: no masks at the image borders
// (with padding 1 every run of a 32-wide row touches a border) nor at a row's tail (its extra
// lanes read the strip's zero margin and are not stored). Taps sum in (channel, kernel row,
// kernel col) order.
template <class T, int OB, int NV>
struct DirectTile {
  static constexpr int W = kLanes<T>;
#if NC_HAVE_AVX2
  using VT = DirectV<T>;
  using R = typename VT::R;

  // The accumulators stay in registers only if every loop over OB and NV is unrolled.
  static void run(const T* strip, const int64_t* off, int64_t K, const T* wt, int64_t np, T* yo, int64_t L,
                  int rows, const T* bias, int act) {
    R acc[OB][NV];
#pragma GCC unroll 8
    for (int o = 0; o < OB; ++o)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[o][v] = VT::zero();
    for (int64_t t = 0; t < K; ++t, wt += OB) {
      const T* xr = strip + off[t];
      R xv[NV];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) xv[v] = VT::load(xr + v * W);
#pragma GCC unroll 8
      for (int o = 0; o < OB; ++o) {
        const R wv = VT::bcast(wt + o);
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[o][v] = VT::fma(wv, xv[v], acc[o][v]);
      }
    }
#pragma GCC unroll 8
    for (int o = 0; o < OB; ++o) {
      if (o >= rows) break;
      T* yr = yo + o * L;
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        R r = acc[o][v];
        if (bias) r = VT::add(r, VT::set1(bias[o]));
        if (act == 1) r = VT::relu(r);
        const int64_t cnt = np - v * W;
        if (cnt >= W) {
          VT::store(yr + v * W, r);
        } else if (cnt > 0) {
#if NC_HAVE_AVX512
          VT::storem(yr + v * W, VT::mask(cnt), r);  // mask-register stores are fast, unlike vmaskmov
#else
          // a row's tail: masked stores are slow on Zen
          alignas(32) T tmp[W];
          VT::store(tmp, r);
          for (int64_t l = 0; l < cnt; ++l) yr[v * W + l] = tmp[l];
#endif
        }
      }
    }
  }
#else
  static void run(const T* strip, const int64_t* off, int64_t K, const T* wt, int64_t np, T* yo, int64_t L,
                  int rows, const T* bias, int act) {
    constexpr int NP = NV * W;
    T acc[OB][NP] = {};
    for (int64_t t = 0; t < K; ++t, wt += OB) {
      const T* xr = strip + off[t];
      for (int o = 0; o < OB; ++o)
        for (int l = 0; l < NP; ++l) acc[o][l] += wt[o] * xr[l];
    }
    for (int o = 0; o < rows; ++o)
      for (int64_t l = 0; l < np; ++l) {
        T r = acc[o][l];
        if (bias) r = r + bias[o];
        if (act == 1) r = r < T(0) ? T(0) : r;  // NaN stays NaN
        yo[o * L + l] = r;
      }
  }
#endif
};

// Units of work: one output row of one image and group (all its channel blocks). Handed out in
// fixed chunks to whichever thread is free; every output is computed the same way whatever
// thread runs it. Per unit the input rows under its taps are copied into a strip: per (channel,
// kernel row) the input row (zeros for a row in the padding) with pl zeros before it and zeros
// after it, wide enough for the last run's full vectors.
template <class T, int OB, int NV>
void conv2d_direct_tiles(const T* x, const T* w, const T* bias, T* y, const ConvGeom& g, int act) {
  using Tile = DirectTile<T, OB, NV>;
  constexpr int64_t NP = NV * Tile::W;
  const int64_t K = g.cg * g.kh * g.kw, L = g.oh * g.ow, blocks = ceil_div(g.og, OB);
  // Strip row width: every tap column of every run, past the input row's right edge too.
  const int64_t sw_len = ceil_div(g.ow, NP) * NP + (g.kw - 1) * g.dw;
  T* wp = static_cast<T*>(scratch<Scratch::kWeights>(sizeof(T) * g.groups * blocks * K * OB));
  pack_direct_weights<T, OB>(w, g, wp);
  int64_t off[kDirectMaxTaps];  // tap t = (c, i, j) of output column 0 in the strip
  for (int64_t t = 0; t < K; ++t) off[t] = (t / g.kw) * sw_len + (t % g.kw) * g.dw;
  const int64_t units = g.n * g.groups * g.oh;
  const double work = double(units) * double(g.og * g.ow) * double(K);
  const int nt = static_cast<int>(std::clamp<int64_t>(threads_for(work, double(1 << 17)), 1, std::max<int64_t>(units, 1)));
  const auto run_units = [&](int64_t u0, int64_t u1) {
    T* strip = static_cast<T*>(scratch<Scratch::kPlan>(sizeof(T) * g.cg * g.kh * sw_len));
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t ig = u / g.oh, oy = u % g.oh, gi = ig % g.groups;
      const T* xg = x + ig * g.cg * g.h * g.w;
      for (int64_t c = 0; c < g.cg; ++c)
        for (int64_t i = 0; i < g.kh; ++i) {
          T* r = strip + (c * g.kh + i) * sw_len;
          const int64_t iy = oy * g.sh - g.pt + i * g.dh;
          if (iy < 0 || iy >= g.h) {
            std::fill(r, r + sw_len, T(0));
            continue;
          }
          // Strip column e holds input column e - pl; a negative pl (an input gradient's phase)
          // drops the row's first -pl columns.
          const int64_t e0 = std::clamp<int64_t>(g.pl, 0, sw_len), e1 = std::clamp<int64_t>(g.pl + g.w, e0, sw_len);
          std::fill(r, r + e0, T(0));
          std::memcpy(r + e0, xg + (c * g.h + iy) * g.w + e0 - g.pl, static_cast<size_t>(e1 - e0) * sizeof(T));
          std::fill(r + e1, r + sw_len, T(0));
        }
      T* yrow = y + ig * g.og * L + oy * g.ow;
      for (int64_t ox0 = 0; ox0 < g.ow; ox0 += NP) {
        const int64_t np = std::min(NP, g.ow - ox0);
        for (int64_t b = 0; b < blocks; ++b) {
          const int rows = static_cast<int>(std::min<int64_t>(OB, g.og - b * OB));
          Tile::run(strip + ox0, off, K, wp + (gi * blocks + b) * K * OB, np, yrow + b * OB * L + ox0, L, rows,
                    bias ? bias + gi * g.og + b * OB : nullptr, act);
        }
      }
    }
  };
  if (nt <= 1)
    run_units(0, units);
  else
    nc::parallel_for(0, units, std::max<int64_t>(1, units / (8 * nt)), run_units);
}

template <class T>
void conv2d(const T* x, const T* w, const T* bias, T* y, const ConvGeom& g, int act) {
  if constexpr (sizeof(T) == 4) {
    if (conv_winograd(g) && winograd_table.conv2d_f32(x, w, bias, y, g, act)) return;
  }
  if (conv_direct(g)) {
#if NC_HAVE_AVX512
    // 16-lane vectors: 8 channels x 32 positions. Measured on Zen 5 (1 thread, GFLOP/s, batch 32
    // 1->32 28x28 / batch 64 3->32 32x32 pad 1): 8x2 vectors 133 / 204, 6x2 114 / 184, 4x2
    // 101 / 171, 12x2 128 / 190, 8x1 93 / 144, 16x1 107 / 167, 8x3 103 / 147 (AVX2 6x2: 52 / 105).
    // One channel per tile (depthwise) keeps the AVX2 build's 48 positions per run.
    constexpr int kChannels = 8, kVectors = 2, kDepthwiseVectors = 3;
#else
    // 6 channels x 16 positions (float) per tile: measured on Zen 3 (1 thread, ms, batch 64
    // 3->32 32x32 / batch 128 1->32 28x28): 6x2 vectors 1.86 / 1.76-2.7, 4x2 1.9 / 1.9-2.4,
    // 8x1 2.5 / 2.5-2.9, 4x3 4.5-4.8 (spills).
    constexpr int kChannels = 6, kVectors = 2, kDepthwiseVectors = 6;
#endif
    if (g.og == 1)
      conv2d_direct_tiles<T, 1, kDepthwiseVectors>(x, w, bias, y, g, act);
    else
      conv2d_direct_tiles<T, kChannels, kVectors>(x, w, bias, y, g, act);
    return;
  }
#if NC_HAVE_AVX512
  conv2d_implicit<T, Avx512Kernel<T>>(x, w, bias, y, g, act);
#elif NC_HAVE_AVX2
  conv2d_implicit<T, AvxKernel<T>>(x, w, bias, y, g, act);
#else
  conv2d_implicit<T, GenericKernel<T>>(x, w, bias, y, g, act);
#endif
}

// Sum of one plane: 4 vector accumulators (generic: 4 scalar ones, 4 interleaved lanes apiece) combined
// in a fixed order, then the tail.
template <class T>
T plane_sum(const T* p, int64_t len) {
#if NC_HAVE_AVX2
  using VT = V<T>;
  constexpr int W = VT::W;
  typename VT::R a0 = VT::zero(), a1 = VT::zero(), a2 = VT::zero(), a3 = VT::zero();
  int64_t k = 0;
  for (; k + 4 * W <= len; k += 4 * W) {
    a0 = VT::add(a0, VT::load(p + k));
    a1 = VT::add(a1, VT::load(p + k + W));
    a2 = VT::add(a2, VT::load(p + k + 2 * W));
    a3 = VT::add(a3, VT::load(p + k + 3 * W));
  }
  T s = VT::hsum(VT::add(VT::add(a0, a1), VT::add(a2, a3)));
#else
  T a[4] = {};
  int64_t k = 0;
  for (; k + 4 <= len; k += 4)
    for (int l = 0; l < 4; ++l) a[l] += p[k + l];
  T s = (a[0] + a[1]) + (a[2] + a[3]);
#endif
  for (; k < len; ++k) s += p[k];
  return s;
}

template <class T>
void bias_grad(const T* gy, int64_t n, int64_t channels, int64_t plane, int64_t c0, int64_t c1, T* gb) {
  for (int64_t c = c0; c < c1; ++c) {
    T s = T(0);
    for (int64_t i = 0; i < n; ++i) s += plane_sum(gy + (i * channels + c) * plane, plane);
    gb[c] = s;
  }
}

template <class T>
constexpr ConvFns<T> fns() {
  return {conv2d<T>, conv2d_weight_grad_direct<T>, conv2d_weight_grad_implicit<T>, bias_grad<T>, col2im<T>};
}

}  // namespace

const ConvKernels conv_table = {fns<float>(), fns<double>()};

}  // namespace nc::kernels::NC_ISA
