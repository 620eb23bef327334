// The convolution's weight gradients (compiled per ISA): conv2d_weight_grad_direct, read straight
// from x and gy for depthwise-like layers, and conv2d_weight_grad_implicit, a GEMM over the output
// positions whose column panels are gathered from x into the micro-kernel's layout (conv.h says
// which layer takes which).
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/conv_common.h"

namespace nc::kernels::NC_ISA::conv_common {
namespace {

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

}  // namespace

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

namespace {

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

}  // namespace

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

template void conv2d_weight_grad_direct<float>(const float*, const float*, float*, const ConvGeom&, int64_t, int64_t);
template void conv2d_weight_grad_direct<double>(const double*, const double*, double*, const ConvGeom&, int64_t,
                                                int64_t);
template void conv2d_weight_grad_implicit<float>(const float*, const float*, float*, const ConvGeom&, int64_t,
                                                 int64_t, int64_t, int64_t, int64_t);
template void conv2d_weight_grad_implicit<double>(const double*, const double*, double*, const ConvGeom&, int64_t,
                                                  int64_t, int64_t, int64_t, int64_t);

}  // namespace nc::kernels::NC_ISA::conv_common
