#include "kernels/conv.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/conv_winograd.h"
#include "kernels/gemm_micro.h"

namespace nc::kernels::NC_ISA {
namespace {

using namespace micro;

// The outputs ox in [lo, hi) whose tap x0 + ox * s lands inside [0, w): computed once per
// kernel column, so the inner loops have no bounds checks.
inline void valid_range(int64_t x0, int64_t s, int64_t w, int64_t ow, int64_t& lo, int64_t& hi) {
  lo = x0 >= 0 ? 0 : (-x0 + s - 1) / s;
  hi = x0 >= w ? 0 : std::min(ow, (w - 1 - x0) / s + 1);
  lo = std::min(lo, ow);
  hi = std::max(hi, lo);
}

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

#if NC_HAVE_AVX512
template <class T>
using DirectV = V512<T>;
template <class T>
constexpr int kLanes = V512<T>::W;
#elif NC_HAVE_AVX2
template <class T>
using DirectV = V<T>;
template <class T>
constexpr int kLanes = V<T>::W;
#else
template <class T>
constexpr int kLanes = 32 / int(sizeof(T));
#endif

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

// A zero-padded copy of one image's channels (cg planes of hp x wp): the column matrix's row
// (c, i, j) at output (oy, ox) is at c * plane + (oy * sh + i * dh) * wp + ox * sw + j * dw. It is
// wide enough for loads of 8 outputs (8 * sw elements) past a row's last output.
struct PadGeom {
  int64_t hp, wp, plane, size;
};

inline PadGeom pad_geom(const ConvGeom& g) {
  PadGeom p;
  p.hp = (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  p.wp = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1 + 8 * g.sw;
  p.plane = p.hp * p.wp;
  p.size = g.cg * p.plane + 8;
  return p;
}

// The copy lives in the kPaddedImage scratch slot.
template <class T>
void pad_image(const T* xg, const ConvGeom& g, const PadGeom& p, T* xp) {
  std::fill(xp, xp + p.size, T(0));
  for (int64_t c = 0; c < g.cg; ++c)
    for (int64_t y = 0; y < p.hp; ++y) {
      const int64_t iy = y - g.pt;
      if (iy < 0 || iy >= g.h) continue;
      const int64_t e0 = std::clamp<int64_t>(g.pl, 0, p.wp), e1 = std::clamp<int64_t>(g.pl + g.w, e0, p.wp);
      std::memcpy(xp + c * p.plane + y * p.wp + e0, xg + (c * g.h + iy) * g.w + e0 - g.pl,
                  static_cast<size_t>(e1 - e0) * sizeof(T));
    }
}

// ---- direct weight gradient -------------------------------------------------------------------

// gw[o][c][i][j] = sum over images, output rows and columns of gy[o] * x[c] at the tap's input
// position. Per image, tiles of OB output channels x JB consecutive kernel columns of one
// (channel, kernel row) hold one vector accumulator each over the image's positions; each is
// reduced across lanes once per image and added to gw in image order. 3 x 3 tiles: with the
// three input vectors and a gradient vector they fill the 16 AVX2 registers without spilling.
// The avx512 build runs the same tiles on 16-lane vectors (measured on Zen 5, 1 thread, batch 64
// depthwise 32 channels 3x3 on 32x32: 1.46-1.54 ms against 1.66-1.72 with 8 lanes).
// The AVX2 build reads x from a zero-padded copy of the image (pad_image), so the input loads
// need no masks at the borders; only a row's last gradient vector is masked when the row is
// not a whole number of vectors. Kernel rows in the top/bottom padding are skipped.
template <class T, int OB, int JB>
void weight_grad_direct_tiles(const T* x, const T* gy, T* gw, const ConvGeom& g, int64_t n0, int64_t n1) {
  const int64_t K = g.cg * g.kh * g.kw, L = g.oh * g.ow;
#if NC_HAVE_AVX2
  using VT = DirectV<T>;  // 16 floats per vector in the avx512 build
  constexpr int W = VT::W;
  const PadGeom pg = pad_geom(g);
  T* xp = static_cast<T*>(scratch<Scratch::kPaddedImage>(sizeof(T) * pg.size));
#endif
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t gi = 0; gi < g.groups; ++gi) {
      const T* xg = x + (n * g.groups + gi) * g.cg * g.h * g.w;
      const T* gyg = gy + (n * g.groups + gi) * g.og * L;
      T* gwg = gw + gi * g.og * K;
#if NC_HAVE_AVX2
      pad_image(xg, g, pg, xp);
#endif
      for (int64_t o0 = 0; o0 < g.og; o0 += OB) {
        const int orows = static_cast<int>(std::min<int64_t>(OB, g.og - o0));
        for (int64_t c = 0; c < g.cg; ++c)
          for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j0 = 0; j0 < g.kw; j0 += JB) {
              const int jn = static_cast<int>(std::min<int64_t>(JB, g.kw - j0));
              T sums[OB][JB];
#if NC_HAVE_AVX2
              typename VT::R acc[OB][JB];  // 9 accumulators, 3 input vectors, 1 gradient vector
#pragma GCC unroll 4
              for (int o = 0; o < OB; ++o)
#pragma GCC unroll 4
                for (int t = 0; t < JB; ++t) acc[o][t] = VT::zero();
              for (int64_t oy = 0; oy < g.oh; ++oy) {
                const int64_t iy = oy * g.sh - g.pt + i * g.dh;
                if (iy < 0 || iy >= g.h) continue;
                const T* xr = xp + c * pg.plane + (oy * g.sh + i * g.dh) * pg.wp + j0 * g.dw;
                const T* gr = gyg + o0 * L + oy * g.ow;
                for (int64_t ox = 0; ox < g.ow; ox += W) {
                  // Past the row's end both operands are masked: an input there may be inf.
                  const bool full = ox + W <= g.ow;
                  const auto live = VT::mask(g.ow - ox);  // lanes inside the output row
                  typename VT::R xv[JB];
#pragma GCC unroll 4
                  for (int t = 0; t < JB; ++t)
                    xv[t] = t >= jn ? VT::zero()
                            : full  ? VT::load(xr + t * g.dw + ox)
                                    : VT::loadm(xr + t * g.dw + ox, live);
#pragma GCC unroll 4
                  for (int o = 0; o < OB; ++o) {
                    if (o >= orows) break;
                    const typename VT::R gv = full ? VT::load(gr + o * L + ox) : VT::loadm(gr + o * L + ox, live);
#pragma GCC unroll 4
                    for (int t = 0; t < JB; ++t) acc[o][t] = VT::fma(gv, xv[t], acc[o][t]);
                  }
                }
              }
              for (int o = 0; o < OB; ++o)
                for (int t = 0; t < JB; ++t) sums[o][t] = VT::hsum(acc[o][t]);
#else
              for (int o = 0; o < OB; ++o)
                for (int t = 0; t < JB; ++t) sums[o][t] = T(0);
              for (int64_t oy = 0; oy < g.oh; ++oy) {
                const int64_t iy = oy * g.sh - g.pt + i * g.dh;
                if (iy < 0 || iy >= g.h) continue;
                const T* xr = xg + (c * g.h + iy) * g.w;
                for (int o = 0; o < orows; ++o) {
                  const T* gr = gyg + (o0 + o) * L + oy * g.ow;
                  for (int t = 0; t < jn; ++t) {
                    const int64_t x0 = -g.pl + (j0 + t) * g.dw;
                    T s = T(0);
                    for (int64_t ox = 0; ox < g.ow; ++ox) {
                      const int64_t ix = x0 + ox;
                      if (ix >= 0 && ix < g.w) s += gr[ox] * xr[ix];
                    }
                    sums[o][t] += s;
                  }
                }
              }
#endif
              for (int o = 0; o < orows; ++o)
                for (int t = 0; t < jn; ++t) {
                  T& dst = gwg[(o0 + o) * K + (c * g.kh + i) * g.kw + j0 + t];
                  dst = n == n0 ? sums[o][t] : dst + sums[o][t];
                }
            }
      }
    }
}

template <class T>
void conv2d_weight_grad_direct(const T* x, const T* gy, T* gw, const ConvGeom& g, int64_t n0, int64_t n1) {
  if (n0 >= n1) {
    std::fill(gw, gw + g.groups * g.og * g.cg * g.kh * g.kw, T(0));
    return;
  }
  if (g.og == 1)
    weight_grad_direct_tiles<T, 1, 3>(x, gy, gw, g, n0, n1);
  else
    weight_grad_direct_tiles<T, 3, 3>(x, gy, gw, g, n0, n1);
}

// ---- implicit-GEMM weight gradient ------------------------------------------------------------

// Positions per K block of the weight gradient's GEMM (its k dimension runs over the output
// positions of every image): the packed gy^T block (og x KB) of a 64-channel layer is 32 KiB
// for floats and stays near L1 while every 6-row panel of the column matrix streams past it.
template <class T>
constexpr int64_t wgrad_kb() { return 512 / int64_t(sizeof(T)); }

// Row r (channel, kernel row, kernel col) of one image's column matrix at positions
// [l0, l0 + nl) into out: the input values under tap r, zero where the tap is in the padding.
template <class T>
void gather_col_row(const T* xg, const ConvGeom& g, int64_t r, int64_t l0, int64_t nl, T* out) {
  const int64_t khw = g.kh * g.kw, c = r / khw, i = (r % khw) / g.kw, j = r % g.kw;
  const T* plane = xg + c * g.h * g.w;
  const int64_t x0 = -g.pl + j * g.dw;  // input column of output column 0
  int64_t lo, hi;                       // output columns whose input column is inside the image
  valid_range(x0, g.sw, g.w, g.ow, lo, hi);
  for (int64_t t = 0; t < nl;) {
    const int64_t l = l0 + t, oy = l / g.ow, ox = l % g.ow, len = std::min(nl - t, g.ow - ox);
    T* o = out + t;  // o[q - ox] for the output columns q in [ox, ox + len)
    const int64_t iy = oy * g.sh - g.pt + i * g.dh;
    if (iy < 0 || iy >= g.h) {
      std::fill(o, o + len, T(0));
    } else {
      const int64_t a = std::clamp(lo, ox, ox + len), b = std::clamp(hi, a, ox + len);
      const T* src = plane + iy * g.w + x0;
      std::fill(o, o + (a - ox), T(0));
      if (g.sw == 1)
        std::memcpy(o + (a - ox), src + a, static_cast<size_t>(b - a) * sizeof(T));
      else
        for (int64_t q = a; q < b; ++q) o[q - ox] = src[q * g.sw];
      std::fill(o + (b - ox), o + len, T(0));
    }
    t += len;
  }
}

// Where row t (channel, kernel row, kernel col) of the column matrix starts in the padded image:
// its value at output (oy, ox) is at tap_offset + oy * sh * wp + ox * sw.
inline int64_t tap_offset(const ConvGeom& g, const PadGeom& p, int64_t t) {
  const int64_t khw = g.kh * g.kw, c = t / khw, i = (t % khw) / g.kw, j = t % g.kw;
  return c * p.plane + i * g.dh * p.wp + j * g.dw;
}

#if NC_HAVE_AVX2
// Rows [r, r + mr) (mr <= 6) x positions [l0, l0 + nl) of the column matrix into [position][6]
// (rows past mr zero), from the padded image (column stride 1 or 2): per output row, 8 positions
// of the 6 taps loaded (with stride 2, 16 elements and their even ones kept) and transposed at a
// time.
inline void pack_taps6_avx(const float* xp, const PadGeom& p, const ConvGeom& g, int64_t r, int64_t mr, int64_t l0,
                           int64_t nl, float* d) {
  int64_t off[6];
  for (int64_t k = 0; k < mr; ++k) off[k] = tap_offset(g, p, r + k);
  for (int64_t t = 0; t < nl;) {
    const int64_t l = l0 + t, oy = l / g.ow, ox = l % g.ow, len = std::min(nl - t, g.ow - ox);
    const float* base = xp + oy * g.sh * p.wp + ox * g.sw;
    for (int64_t s = 0; s < len; s += 8) {
      __m256 v[8];
      for (int k = 0; k < 6; ++k) {
        if (k >= mr) {
          v[k] = _mm256_setzero_ps();
        } else if (g.sw == 1) {
          v[k] = _mm256_loadu_ps(base + off[k] + s);
        } else {  // [e0 e2 e8 e10 | e4 e6 e12 e14], then the 64-bit pairs in order
          const float* q = base + off[k] + 2 * s;
          const __m256 e = _mm256_shuffle_ps(_mm256_loadu_ps(q), _mm256_loadu_ps(q + 8), _MM_SHUFFLE(2, 0, 2, 0));
          v[k] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
        }
      }
      v[6] = v[7] = _mm256_setzero_ps();
      transpose8(v);
      const int64_t n = std::min<int64_t>(8, len - s);
      float* o = d + (t + s) * 6;
      for (int q = 0; q < n; ++q, o += 6) {
        _mm_storeu_ps(o, _mm256_castps256_ps128(v[q]));
        _mm_storel_pi(reinterpret_cast<__m64*>(o + 4), _mm256_extractf128_ps(v[q], 1));
      }
    }
    t += len;
  }
}

#if NC_HAVE_AVX512
// The avx512 build's weight-gradient tile, float: C (mr <= MR rows of gwt x ncols <= 32 channels,
// row stride ldc) += the column matrix's rows at padded-image offsets off[0..MR) times the packed
// gy^T panel bp ([position][32]) over positions [l0, l0 + nl), column stride SW.
// The column matrix is read straight from the padded image (each of a step's MR broadcasts loads
// its tap's value), so no packed copy of its rows is made: with the FMAs at 512 bits, transposing
// the rows into a [position][12] panel took about a quarter of the weight gradient's time. Rows
// past mr read tap 0 and are not stored. Per element the positions are summed in order into a
// zeroed accumulator, which is then added to C (Avx512Kernel's arithmetic, whatever the tile).
template <int MR, int SW>
__attribute__((noinline)) void wgrad_tile_avx512(const float* xp, const PadGeom& p, const ConvGeom& g,
                                                 const int64_t* off, int64_t l0, int64_t nl, const float* bp,
                                                 float* c, int64_t ldc, int mr, int64_t ncols) {
  using VT = V512<float>;
  using R = VT::R;
  constexpr int NV = 2, W = VT::W, NR = NV * W;
  R acc[MR][NV];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = VT::zero();
  for (int64_t t = 0; t < nl;) {  // one stretch of an output row at a time
    const int64_t l = l0 + t, oy = l / g.ow, ox = l % g.ow, len = std::min(nl - t, g.ow - ox);
    const float* base = xp + oy * g.sh * p.wp + ox * SW;
    const float* a[MR];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) a[i] = base + off[i];
    const float* b = bp + t * NR;
#pragma GCC unroll 2
    for (int64_t q = 0; q < len; ++q, b += NR) {
      R bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = VT::load(b + v * W);
#pragma GCC unroll 12
      for (int i = 0; i < MR; ++i) {
        const R av = VT::set1(a[i][q * SW]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = VT::fma(av, bv[v], acc[i][v]);
      }
    }
    t += len;
  }
  const Epi<float> e{1.f, 1.f, nullptr, 0};
  if (mr == MR && ncols == NR) {
    for (int i = 0; i < MR; ++i) store_row<float, NV, false, VT>(c + i * ldc, acc[i], e, NR);
  } else {
    for (int i = 0; i < mr; ++i) store_row<float, NV, true, VT>(c + i * ldc, acc[i], e, ncols);
  }
}

// gwt rows [r0, r1) (row stride og) += the column matrix's rows times the packed gy^T block bp
// ([panel][position][32]) over positions [l0, l0 + nl), in tiles of MR rows.
template <int MR>
void wgrad_rows_avx512(const float* xp, const PadGeom& p, const ConvGeom& g, int64_t r0, int64_t r1, int64_t l0,
                       int64_t nl, const float* bp, float* gw) {
  constexpr int64_t NR = 2 * V512<float>::W;
  const int64_t og = g.og;
  for (int64_t rp = r0; rp < r1; rp += MR) {
    const int64_t mr = std::min<int64_t>(MR, r1 - rp);
    int64_t off[MR];
    for (int64_t k = 0; k < MR; ++k) off[k] = tap_offset(g, p, k < mr ? rp + k : rp);
    for (int64_t q = 0; q * NR < og; ++q)
      (g.sw == 1 ? wgrad_tile_avx512<MR, 1> : wgrad_tile_avx512<MR, 2>)(
          xp, p, g, off, l0, nl, bp + q * nl * NR, gw + rp * og + q * NR, og, static_cast<int>(mr),
          std::min<int64_t>(NR, og - q * NR));
  }
}
#endif
#endif

// gwt rows [r0, r1) of group gi ([group][CK][og]: the weight gradient transposed) = the sum over
// images [n0, n1), in order, of col (CK x L) x gy_g^T (L x og). The GEMM's k dimension runs over
// the positions of each image in blocks of KB; per block gy_g^T is packed once into NR-column
// panels and each MR-row panel of the column matrix is gathered from the input (a row at a time,
// then transposed by pack_a) straight into the micro-kernel's layout, so no column matrix is
// ever built; the avx512 build's float tile reads its rows from the padded image instead
// (wgrad_tile_avx512). Every element sums images, then blocks, then positions in order: the split
// into row ranges does not change it.
template <class T, class K>
void weight_grad_implicit(const T* x, const T* gy, T* gwt, const ConvGeom& g, int64_t n0, int64_t n1, int64_t gi,
                          int64_t r0, int64_t r1) {
  constexpr int MR = K::MR;
  constexpr int64_t KB = wgrad_kb<T>();
  const int64_t CK = g.cg * g.kh * g.kw, L = g.oh * g.ow, og = g.og;
  constexpr int NR = K::NR;
  const int64_t opanels = ceil_div(og, NR);
  T* bp = static_cast<T*>(scratch<Scratch::kColumns>(sizeof(T) * opanels * NR * KB));
  T* ap = static_cast<T*>(scratch<Scratch::kTile>(sizeof(T) * MR * KB));
  T* rows = static_cast<T*>(scratch<Scratch::kPlan>(sizeof(T) * MR * KB));
  T* gw = gwt + gi * CK * og;
  // AVX2 float, column stride 1 or 2: the panels are transposed straight out of a zero-padded
  // copy of the image (8 positions x 6 taps per transpose) instead of gathered row by row; the
  // avx512 build's 12-row tile reads that copy directly.
  PadGeom pg{};
  T* xp = nullptr;
  bool padded = false;
#if NC_HAVE_AVX2
  if constexpr (std::is_same_v<T, float> && (MR == 6 || MR == 12)) {
    padded = g.sw <= 2;
    if (padded) {
      pg = pad_geom(g);
      xp = static_cast<T*>(scratch<Scratch::kPaddedImage>(sizeof(T) * pg.size));
    }
  }
#endif
  for (int64_t r = r0; r < r1; ++r) std::fill(gw + r * og, gw + (r + 1) * og, T(0));
  const Epi<T> acc{T(1), T(1), nullptr, 0};
  for (int64_t n = n0; n < n1; ++n) {
    const T* xg = x + (n * g.groups + gi) * g.cg * g.h * g.w;
    const T* gyg = gy + (n * g.groups + gi) * og * L;
    if (padded) pad_image(xg, g, pg, xp);
    for (int64_t l0 = 0; l0 < L; l0 += KB) {
      const int64_t nl = std::min(KB, L - l0);
      // gy_g^T block: panel q holds channels [q*NR, q*NR + NR) as [position][NR], zero past og.
      for (int64_t q = 0; q < opanels; ++q) {
        T* d = bp + q * nl * NR;
#if NC_HAVE_AVX2
        if constexpr (std::is_same_v<T, float> && NR % 16 == 0) {
          if (q * NR + NR <= og) {  // a full panel: 8x8 transposes, then the ragged positions
            int64_t done = 0;
            for (int h = 0; h < NR; h += 16) done = pack_b16_trans_avx(gyg + (q * NR + h) * L + l0, L, nl, d + h, NR);
            for (int e = 0; e < NR; ++e)
              for (int64_t p = done; p < nl; ++p) d[p * NR + e] = gyg[(q * NR + e) * L + l0 + p];
            continue;
          }
        }
#endif
        for (int e = 0; e < NR; ++e) {
          const int64_t o = q * NR + e;
          if (o < og) {
            const T* src = gyg + o * L + l0;
            for (int64_t p = 0; p < nl; ++p) d[p * NR + e] = src[p];
          } else {
            for (int64_t p = 0; p < nl; ++p) d[p * NR + e] = T(0);
          }
        }
      }
#if NC_HAVE_AVX512
      if constexpr (std::is_same_v<T, float> && MR == 12 && NR == 32) {
        // The taps read straight from the padded image, in tiles of 12 rows x 32 channels, or 9 x 32
        // where the rows come in nines and not twelves (the seed models' first layers: 9 and 27
        // taps, where 12-row tiles pad 25%). Measured on Zen 5 (1 thread, bench/conv_ab.py, ms, 12
        // rows before): batch 64 3->32 32x32 pad 1 0.72 against 0.91, batch 32 1->32 28x28 0.116
        // against 0.124. (6 rows x 64 channels, one set of broadcasts for all 64: batch 64
        // 32->64 32x32 stride 2 3.34 against 2.98, 1x1 64->64 0.90 against 0.88.)
        if (padded) {
          if (CK % 9 == 0 && CK % 12 != 0)
            wgrad_rows_avx512<9>(xp, pg, g, r0, r1, l0, nl, bp, gw);
          else
            wgrad_rows_avx512<12>(xp, pg, g, r0, r1, l0, nl, bp, gw);
          continue;
        }
      }
#endif
      for (int64_t rp = r0; rp < r1; rp += MR) {
        const int64_t mr = std::min<int64_t>(MR, r1 - rp);
        bool packed = false;
#if NC_HAVE_AVX2
        if constexpr (std::is_same_v<T, float> && MR == 6) {
          if (padded) {
            pack_taps6_avx(xp, pg, g, rp, mr, l0, nl, ap);
            packed = true;
          }
        }
#endif
        if (!packed) {
          for (int64_t i = 0; i < mr; ++i) gather_col_row(xg, g, rp + i, l0, nl, rows + i * nl);
          pack_a<T, MR>(false, rows, nl, 0, mr, 0, nl, ap);
        }
        for (int64_t q = 0; q < opanels; ++q)
          K::ukr(nl, ap, bp + q * nl * NR, gw + rp * og + q * NR, og, acc, static_cast<int>(mr),
                 std::min<int64_t>(NR, og - q * NR));
      }
    }
  }
}

template <class T>
void conv2d_weight_grad_implicit(const T* x, const T* gy, T* gwt, const ConvGeom& g, int64_t n0, int64_t n1,
                                 int64_t gi, int64_t r0, int64_t r1) {
#if NC_HAVE_AVX512
  // 32-channel (float) panels of gy^T; with at most 16 output channels per group half of each
  // would be zeros, and the AVX2 tile (16-channel panels) is faster there: measured on Zen 5
  // (1 thread, batch 64 8->16 16x16 pad 1) 0.51 ms against 0.46.
  if (g.og <= V512<T>::W)
    weight_grad_implicit<T, AvxKernel<T>>(x, gy, gwt, g, n0, n1, gi, r0, r1);
  else
    weight_grad_implicit<T, Avx512Kernel<T>>(x, gy, gwt, g, n0, n1, gi, r0, r1);
#elif NC_HAVE_AVX2
  weight_grad_implicit<T, AvxKernel<T>>(x, gy, gwt, g, n0, n1, gi, r0, r1);
#else
  weight_grad_implicit<T, GenericKernel<T>>(x, gy, gwt, g, n0, n1, gi, r0, r1);
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
