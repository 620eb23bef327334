// Pooling kernels (see pool.h). Each output row splits into border outputs, whose windows cross
// the plane's edge (computed one by one, taps clipped), and interior outputs, whose windows lie
// inside the plane in W (computed a row at a time with the window's taps in the outer loop, so
// each tap is one strided pass over the row). The AVX2 build does the interior of float32 rows
// with stride 1 or 2 eight outputs per vector, and 2x2 / stride-2 pooling of float32 and float64
// planes a block of outputs at a time; everything else is plain code the compiler may vectorise.
// All paths apply per output the same operations in the same order.
#include "kernels/pool.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/isa.h"
#include "kernels/norm.h"

namespace nc::kernels::NC_ISA {
namespace {

// Window taps t in [lo, hi) whose position start + t * d lies in [0, n).
struct TapRange {
  int64_t lo, hi;
};

inline TapRange taps_inside(int64_t start, int64_t k, int64_t d, int64_t n) {
  const int64_t lo = start < 0 ? (-start + d - 1) / d : 0;
  const int64_t rem = n - 1 - start;
  const int64_t hi = rem < 0 ? 0 : (rem / d + 1 < k ? rem / d + 1 : k);
  return {lo, hi > lo ? hi : lo};
}

// Outputs [lo, hi) of a dim whose whole window lies in [0, n).
inline TapRange interior_outputs(int64_t n, int64_t on, int64_t k, int64_t s, int64_t p, int64_t d) {
  int64_t lo = (p + s - 1) / s;
  const int64_t last = n - 1 + p - (k - 1) * d;  // the largest ox * s allowed
  int64_t hi = last < 0 ? 0 : last / s + 1;
  lo = lo < on ? lo : on;
  hi = hi < on ? hi : on;
  return {lo, hi > lo ? hi : lo};
}

// ---------------------------------------------------------------------------------------------
// Max pooling.

// Where each max is recorded: nowhere (inference), as its flat position in the input plane, or
// as its window tap number i * kw + j (one byte).
enum class Arg { None, Position, Tap };

// The argmax outputs of one row (those of the chosen kind are non-null).
struct ArgRow {
  int64_t* pos;
  uint8_t* tap;
};

// One output, its taps clipped to rows ri and columns rj. No tap inside the plane (only possible
// with some dilations): -inf at position -1 / tap kPoolNoTap.
template <class T, Arg A>
void max_one(const T* xp, const PoolGeometry& g, int64_t y0, TapRange ri, TapRange rj, int64_t ox, T* yr, ArgRow ar) {
  const int64_t x0 = ox * g.sw - g.pw;
  T m = -std::numeric_limits<T>::infinity();
  int64_t mi = -1, mt = kPoolNoTap;
  if (ri.lo < ri.hi && rj.lo < rj.hi) {
    mi = (y0 + ri.lo * g.dh) * g.w + x0 + rj.lo * g.dw;
    mt = ri.lo * g.kw + rj.lo;
  }
  for (int64_t i = ri.lo; i < ri.hi; ++i) {
    const int64_t row = (y0 + i * g.dh) * g.w;
    for (int64_t j = rj.lo; j < rj.hi; ++j) {
      const int64_t at = row + x0 + j * g.dw;
      const T v = xp[at];
      if (v > m || std::isnan(v)) {
        m = v;
        mi = at;
        mt = i * g.kw + j;
      }
    }
  }
  yr[ox] = m;
  if constexpr (A == Arg::Position) ar.pos[ox] = mi;
  if constexpr (A == Arg::Tap) ar.tap[ox] = static_cast<uint8_t>(mt);
}

// A border output: its columns clipped too.
template <class T, Arg A>
void max_border(const T* xp, const PoolGeometry& g, int64_t y0, TapRange ri, int64_t ox, T* yr, ArgRow ar) {
  max_one<T, A>(xp, g, y0, ri, taps_inside(ox * g.sw - g.pw, g.kw, g.dw, g.w), ox, yr, ar);
}

// What a block of a row may touch past its own outputs: the input elements readable from the
// plane's start and the outputs writable from the row's start, to the end of this call's planes.
// Reading later rows is harmless, and the outputs after the row belong to this call and are
// written again later (rows go in order, borders after the interior).
struct Room {
  int64_t x, y;
};

// Interior outputs [lo, hi) of one row, one tap at a time over the row, in chunks whose argmax is
// tracked in an integer buffer as wide as T (so the compare-and-select loop vectorises) and
// written out at the end. I holds positions (it must fit them) or tap numbers. The first tap
// starts the max, which equals starting from -inf with the first tap's position (PyTorch's start).
template <class T, Arg A, class I>
void max_row(const T* __restrict xp, T* __restrict yr, ArgRow ar, const PoolGeometry& g, int64_t y0, TapRange ri,
             int64_t lo, int64_t hi) {
  constexpr int64_t kChunk = 256;
  I arg[kChunk];
  const int64_t sw = g.sw;
  for (int64_t c0 = lo; c0 < hi; c0 += kChunk) {
    const int64_t n = hi - c0 < kChunk ? hi - c0 : kChunk;
    T* __restrict yc = yr + c0;
    bool first = true;
    for (int64_t i = ri.lo; i < ri.hi; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t off = (y0 + i * g.dh) * g.w + j * g.dw - g.pw + c0 * sw;  // tap of output c0 + c: off + c * sw
        const I a0 = static_cast<I>(A == Arg::Tap ? i * g.kw + j : off);
        const I da = static_cast<I>(A == Arg::Tap ? 0 : sw);
        const T* src = xp + off;
        if (first) {
          for (int64_t c = 0; c < n; ++c) {
            yc[c] = src[c * sw];
            if constexpr (A != Arg::None) arg[c] = a0 + static_cast<I>(c) * da;
          }
          first = false;
          continue;
        }
        for (int64_t c = 0; c < n; ++c) {
          const T v = src[c * sw];
          const bool take = v > yc[c] || std::isnan(v);
          yc[c] = take ? v : yc[c];
          if constexpr (A != Arg::None) arg[c] = take ? a0 + static_cast<I>(c) * da : arg[c];
        }
      }
    }
    if constexpr (A == Arg::Position)
      for (int64_t c = 0; c < n; ++c) ar.pos[c0 + c] = arg[c];
    if constexpr (A == Arg::Tap)
      for (int64_t c = 0; c < n; ++c) ar.tap[c0 + c] = static_cast<uint8_t>(arg[c]);
  }
}

// max_row with the narrowest buffer that holds the positions.
template <class T, Arg A>
void max_row_plain(const T* xp, T* yr, ArgRow ar, const PoolGeometry& g, int64_t y0, TapRange ri, int64_t lo,
                   int64_t hi) {
  using Same = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  if (A == Arg::Position && g.h * g.w >= (int64_t(1) << 31)) return max_row<T, A, int64_t>(xp, yr, ar, g, y0, ri, lo, hi);
  max_row<T, A, Same>(xp, yr, ar, g, y0, ri, lo, hi);
}

#if NC_HAVE_AVX2

// p[0], p[sw], ..., p[7 * sw] for sw = 1 or 2, reading nothing past p[7 * sw]; for n < 8 the
// first n of them, reading nothing past p[(n - 1) * sw] (the other lanes 0).
inline __m256 load_taps(const float* p, int64_t sw, int64_t n) {
  __m256 a, b;
  if (n == 8) {
    if (sw == 1) return _mm256_loadu_ps(p);
    a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 7);
  } else {
    const __m256i k = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const int last = static_cast<int>((n - 1) * sw);
    a = _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(last + 1), k));
    if (sw == 1) return a;
    b = _mm256_maskload_ps(p + 7, _mm256_cmpgt_epi32(_mm256_set1_epi32(last - 6), k));
  }
  // [a0 a2 b1 b3 | a4 a6 b5 b7], then 64-bit pairs reordered: p[0], p[2], ..., p[14].
  const __m256 s = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 2, 0));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), _MM_SHUFFLE(3, 1, 2, 0)));
}

// The first n of 8 lanes: floats, int32 lanes as int64, or int32 lanes (values 0..255) as bytes.
inline void store_lanes(float* p, __m256 v, int64_t n) {
  if (n == 8) return _mm256_storeu_ps(p, v);
  alignas(32) float buf[8];
  _mm256_store_ps(buf, v);
  std::memcpy(p, buf, n * sizeof(float));
}

inline void store_lanes(int64_t* p, __m256i v, int64_t n) {
  alignas(32) int64_t buf[8];
  int64_t* d = n == 8 ? p : buf;
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 4), _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
  if (n < 8) std::memcpy(p, buf, n * sizeof(int64_t));
}

inline void store_lanes(uint8_t* p, __m256i v, int64_t n) {
  const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i b8 = _mm_packus_epi16(w16, w16);
  if (n == 8) return _mm_storel_epi64(reinterpret_cast<__m128i*>(p), b8);
  alignas(16) uint8_t buf[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(buf), b8);
  std::memcpy(p, buf, n);
}

// Blocks of 8 outputs covering [lo, hi), as block(ox, loads, stores): lanes to load and to store.
// The last block of a run of 8 or more overlaps the one before it (it rewrites the same values); a
// shorter run is one block, whose loads and stores go full width where the room allows.
template <class F>
inline void for_blocks(int64_t lo, int64_t hi, int64_t last_tap, int64_t sw, Room room, const F& block) {
  if (hi - lo >= 8) {
    for (int64_t b = lo; b < hi; b += 8) block(b + 8 <= hi ? b : hi - 8, int64_t(8), int64_t(8));
    return;
  }
  const int64_t n = hi - lo;
  block(lo, last_tap + lo * sw + 7 * sw < room.x ? 8 : n, lo + 8 <= room.y ? 8 : n);
}

// max_row for float32, stride 1 or 2 and positions that fit in int32.
template <Arg A>
void max_row_avx2(const float* xp, float* yr, ArgRow ar, const PoolGeometry& g, int64_t y0, TapRange ri, int64_t lo,
                  int64_t hi, Room room) {
  const int64_t sw = g.sw;
  const __m256i lanes = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                           _mm256_set1_epi32(static_cast<int>(sw)));
  const int64_t last_tap = (y0 + (ri.hi - 1) * g.dh) * g.w + (g.kw - 1) * g.dw - g.pw;  // of output 0
  for_blocks(lo, hi, last_tap, sw, room, [&](int64_t ox, int64_t n, int64_t ns) {
    __m256 m = _mm256_setzero_ps();
    __m256i id = _mm256_setzero_si256();
    bool first = true;
    for (int64_t i = ri.lo; i < ri.hi; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t at = (y0 + i * g.dh) * g.w + j * g.dw - g.pw + ox * sw;
        const __m256 v = load_taps(xp + at, sw, n);
        __m256i arg = id;
        if constexpr (A == Arg::Position) arg = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(at)), lanes);
        if constexpr (A == Arg::Tap) arg = _mm256_set1_epi32(static_cast<int>(i * g.kw + j));
        if (first) {
          m = v, id = arg, first = false;
          continue;
        }
        const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
        if constexpr (A == Arg::None) {
          m = _mm256_blendv_ps(_mm256_max_ps(v, m), v, nan);  // max_ps(v, m) = v > m ? v : m
        } else {
          const __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), nan);
          m = _mm256_blendv_ps(m, v, take);
          id = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(id), _mm256_castsi256_ps(arg), take));
        }
      }
    }
    store_lanes(yr + ox, m, ns);
    if constexpr (A == Arg::Position) store_lanes(ar.pos + ox, id, ns);
    if constexpr (A == Arg::Tap) store_lanes(ar.tap + ox, id, ns);
  });
}

#endif

// 2x2 windows with stride 2, no padding or dilation, every window inside the plane (the pooling
// of the seed CNNs): the common case, which the general path runs with per-row bookkeeping and
// two loads plus a shuffle per tap.
inline bool pool_2x2(const PoolGeometry& g) {
  return g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1 &&
         2 * g.oh <= g.h && 2 * g.ow <= g.w;
}

#if NC_HAVE_AVX2
// One block of a 2x2 / stride-2 output row in AVX2 registers: W = 8 floats or 4 doubles. A block
// of n = W outputs reads 2W elements of each of its two input rows; a partial block (a row of
// n < W outputs, such as the 6 of a 13x13 map) reads only its 2n under a mask. The taps come out
// of the shuffles in a lane order that is the same for all four taps, so the per-lane folds run on
// it and one permute at the end puts the outputs in order. Each output gets the general path's
// operations: max by `v > m || isnan(v)` in window order, sum ((((0 + t0) + t1) + t2) + t3) / div.
template <class T>
struct Block2x2;

template <>
struct Block2x2<float> {
  static constexpr int64_t W = 8;
  using V = __m256;
  using I = __m256i;  // tap numbers, one per 32-bit lane
  static void load_row(const float* r, int64_t n, V& a, V& b) {
    if (n == W) {
      a = _mm256_loadu_ps(r), b = _mm256_loadu_ps(r + 8);
      return;
    }
    const __m256i k = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const int e = static_cast<int>(2 * n);
    a = _mm256_maskload_ps(r, _mm256_cmpgt_epi32(_mm256_set1_epi32(e), k));
    b = _mm256_maskload_ps(r + 8, _mm256_cmpgt_epi32(_mm256_set1_epi32(e - 8), k));
  }
  // Taps (0,0), (0,1), (1,0), (1,1) as [e0 e2 e8 e10 | e4 e6 e12 e14] and likewise.
  static void taps(const float* r0, const float* r1, int64_t n, V t[4]) {
    V a0, a1, b0, b1;
    load_row(r0, n, a0, a1);
    load_row(r1, n, b0, b1);
    t[0] = _mm256_shuffle_ps(a0, a1, _MM_SHUFFLE(2, 0, 2, 0));
    t[1] = _mm256_shuffle_ps(a0, a1, _MM_SHUFFLE(3, 1, 3, 1));
    t[2] = _mm256_shuffle_ps(b0, b1, _MM_SHUFFLE(2, 0, 2, 0));
    t[3] = _mm256_shuffle_ps(b0, b1, _MM_SHUFFLE(3, 1, 3, 1));
  }
  static V in_order(V v) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  static I in_order(I v) { return _mm256_permute4x64_epi64(v, _MM_SHUFFLE(3, 1, 2, 0)); }
  static V isnan(V v) { return _mm256_cmp_ps(v, v, _CMP_UNORD_Q); }
  static V greater(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static V either(V a, V b) { return _mm256_or_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }  // a > b ? a : b
  static V blend(V a, V b, V mask) { return _mm256_blendv_ps(a, b, mask); }
  static I blend(I a, I b, V mask) {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b), mask));
  }
  static I tap(int k) { return _mm256_set1_epi32(k); }
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static void store(float* p, V v, int64_t n) { store_lanes(p, v, n); }
  static void store(uint8_t* p, I v, int64_t n) { store_lanes(p, v, n); }
};

template <>
struct Block2x2<double> {
  static constexpr int64_t W = 4;
  using V = __m256d;
  using I = __m256i;  // tap numbers, one per 64-bit lane
  static void load_row(const double* r, int64_t n, V& a, V& b) {
    if (n == W) {
      a = _mm256_loadu_pd(r), b = _mm256_loadu_pd(r + 4);
      return;
    }
    const __m256i k = _mm256_setr_epi64x(0, 1, 2, 3);
    a = _mm256_maskload_pd(r, _mm256_cmpgt_epi64(_mm256_set1_epi64x(2 * n), k));
    b = _mm256_maskload_pd(r + 4, _mm256_cmpgt_epi64(_mm256_set1_epi64x(2 * n - 4), k));
  }
  // Taps (0,0), (0,1), (1,0), (1,1) as [e0 e4 e2 e6] and likewise.
  static void taps(const double* r0, const double* r1, int64_t n, V t[4]) {
    V a0, a1, b0, b1;
    load_row(r0, n, a0, a1);
    load_row(r1, n, b0, b1);
    t[0] = _mm256_shuffle_pd(a0, a1, 0x0);
    t[1] = _mm256_shuffle_pd(a0, a1, 0xF);
    t[2] = _mm256_shuffle_pd(b0, b1, 0x0);
    t[3] = _mm256_shuffle_pd(b0, b1, 0xF);
  }
  static V in_order(V v) { return _mm256_permute4x64_pd(v, _MM_SHUFFLE(3, 1, 2, 0)); }
  static I in_order(I v) { return _mm256_permute4x64_epi64(v, _MM_SHUFFLE(3, 1, 2, 0)); }
  static V isnan(V v) { return _mm256_cmp_pd(v, v, _CMP_UNORD_Q); }
  static V greater(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
  static V either(V a, V b) { return _mm256_or_pd(a, b); }
  static V max(V a, V b) { return _mm256_max_pd(a, b); }  // a > b ? a : b
  static V blend(V a, V b, V mask) { return _mm256_blendv_pd(a, b, mask); }
  static I blend(I a, I b, V mask) {
    return _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(a), _mm256_castsi256_pd(b), mask));
  }
  static I tap(int k) { return _mm256_set1_epi64x(k); }
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(double v) { return _mm256_set1_pd(v); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V div(V a, V b) { return _mm256_div_pd(a, b); }
  static void store(double* p, V v, int64_t n) {
    if (n == W) return _mm256_storeu_pd(p, v);
    alignas(32) double buf[4];
    _mm256_store_pd(buf, v);
    std::memcpy(p, buf, n * sizeof(double));
  }
  static void store(uint8_t* p, I v, int64_t n) {
    alignas(32) int64_t buf[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(buf), v);
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(buf[i]);
  }
};

// block(ox, n) over one output row: blocks of W outputs, the last one moved back to end at ow (it
// overlaps the one before and rewrites the same values); a row shorter than W is one partial block.
template <class T, class F>
inline void blocks_2x2(int64_t ow, const F& block) {
  constexpr int64_t W = Block2x2<T>::W;
  if (ow < W) return block(int64_t(0), ow);
  for (int64_t b = 0; b < ow; b += W) block(b + W <= ow ? b : ow - W, W);
}

// Max (and tap number, A == Arg::Tap) of each 2x2 window with the scalar path's rule.
template <class T, Arg A>
void max_2x2_avx2(const T* x, T* y, uint8_t* tap, int64_t planes, const PoolGeometry& g) {
  using B = Block2x2<T>;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const T* r0 = x + (p * g.h + 2 * oy) * g.w;
      const int64_t o = (p * g.oh + oy) * g.ow;
      blocks_2x2<T>(g.ow, [&](int64_t ox, int64_t n) {
        typename B::V t[4];
        B::taps(r0 + 2 * ox, r0 + g.w + 2 * ox, n, t);
        typename B::V m = t[0];
        typename B::I id = B::tap(0);
        for (int k = 1; k < 4; ++k) {
          const auto v = t[k], nan = B::isnan(v);
          if constexpr (A == Arg::None) {
            m = B::blend(B::max(v, m), v, nan);
          } else {
            const auto take = B::either(B::greater(v, m), nan);
            m = B::blend(m, v, take);
            id = B::blend(id, B::tap(k), take);
          }
        }
        B::store(y + o + ox, B::in_order(m), n);
        if constexpr (A == Arg::Tap) B::store(tap + o + ox, B::in_order(id), n);
      });
    }
}

// Averages of 2x2 windows: ((((0 + t0) + t1) + t2) + t3) / divisor, the general path's order.
template <class T>
void avg_2x2_avx2(const T* x, T* y, int64_t planes, const PoolGeometry& g, T div) {
  using B = Block2x2<T>;
  const auto vdiv = B::set1(div);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const T* r0 = x + (p * g.h + 2 * oy) * g.w;
      T* yr = y + (p * g.oh + oy) * g.ow;
      blocks_2x2<T>(g.ow, [&](int64_t ox, int64_t n) {
        typename B::V t[4];
        B::taps(r0 + 2 * ox, r0 + g.w + 2 * ox, n, t);
        auto s = B::zero();
        for (int k = 0; k < 4; ++k) s = B::add(s, t[k]);
        B::store(yr + ox, B::in_order(B::div(s, vdiv)), n);
      });
    }
}
#endif

#if NC_HAVE_AVX512
// 2x2 / stride-2 float32 max pooling of rows shorter than the AVX2 path's 8-output blocks (the 5
// outputs of an 11-wide map), which that path runs through a partial-row buffer, a memcpy and a
// byte loop: here each row is one 512-bit block, its two input rows read under a mask (2 * ow <
// 16 elements), the taps split out in output order by one permute each, the outputs and tap
// numbers stored under a mask. Each output gets the general path's operations (max by
// `v > m || isnan(v)` in window order). Rows of 8 or more stay on the AVX2 blocks: masked 512-bit
// blocks were slower there on Zen 5 (13-output rows of a (32, 32, 26, 26) input: 40 -> 68 us, 1
// thread), while these short rows went 72 -> 48 us for (32, 64, 11, 11).
template <Arg A>
void max_2x2_short_rows_avx512(const float* x, float* y, uint8_t* tap, int64_t planes, const PoolGeometry& g) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __mmask16 in = static_cast<__mmask16>((1u << (2 * g.ow)) - 1), out = static_cast<__mmask16>((1u << g.ow) - 1);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const float* r0 = x + (p * g.h + 2 * oy) * g.w;
      const __m512 a = _mm512_maskz_loadu_ps(in, r0), b = _mm512_maskz_loadu_ps(in, r0 + g.w);
      const __m512 t[4] = {_mm512_permutexvar_ps(even, a), _mm512_permutexvar_ps(odd, a),
                           _mm512_permutexvar_ps(even, b), _mm512_permutexvar_ps(odd, b)};
      __m512 m = t[0];
      __m512i id = _mm512_setzero_si512();
      for (int k = 1; k < 4; ++k) {
        const __m512 v = t[k];
        const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        if constexpr (A == Arg::None) {
          m = _mm512_mask_mov_ps(_mm512_max_ps(v, m), nan, v);  // max_ps(v, m) = v > m ? v : m
        } else {
          const __mmask16 take = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | nan;
          m = _mm512_mask_mov_ps(m, take, v);
          id = _mm512_mask_mov_epi32(id, take, _mm512_set1_epi32(k));
        }
      }
      const int64_t o = (p * g.oh + oy) * g.ow;
      _mm512_mask_storeu_ps(y + o, out, m);
      if constexpr (A == Arg::Tap) _mm512_mask_cvtepi32_storeu_epi8(tap + o, out, id);
    }
}
#endif

template <class T, Arg A>
void max_forward_as(const T* x, T* y, int64_t* idx, uint8_t* tap, int64_t planes, const PoolGeometry& g) {
  const TapRange in = interior_outputs(g.w, g.ow, g.kw, g.sw, g.pw, g.dw);
  bool vector_rows = false;
#if NC_HAVE_AVX2
  vector_rows = sizeof(T) == 4 && (g.sw == 1 || g.sw == 2) && g.h * g.w < (int64_t(1) << 31);
#endif
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * g.h * g.w;
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const int64_t y0 = oy * g.sh - g.ph, o = (p * g.oh + oy) * g.ow;
      const TapRange ri = taps_inside(y0, g.kh, g.dh, g.h);
      T* yr = y + o;
      const ArgRow ar{idx ? idx + o : nullptr, tap ? tap + o : nullptr};
      const bool rows = ri.lo < ri.hi;
      for (int64_t ox = 0; ox < (rows ? in.lo : g.ow); ++ox) max_border<T, A>(xp, g, y0, ri, ox, yr, ar);
      if (!rows) continue;
#if NC_HAVE_AVX2
      if constexpr (sizeof(T) == 4) {
        const Room room{(planes - p) * g.h * g.w, (planes - p) * g.oh * g.ow - oy * g.ow};
        if (vector_rows) max_row_avx2<A>(xp, yr, ar, g, y0, ri, in.lo, in.hi, room);
      }
#endif
      if (!vector_rows) max_row_plain<T, A>(xp, yr, ar, g, y0, ri, in.lo, in.hi);
      for (int64_t ox = in.hi; ox < g.ow; ++ox) max_border<T, A>(xp, g, y0, ri, ox, yr, ar);
    }
  }
}

template <class T>
void max_forward(const T* x, T* y, int64_t* idx, uint8_t* tap, int64_t planes, const PoolGeometry& g) {
#if NC_HAVE_AVX512
  if constexpr (sizeof(T) == 4) {
    if (!idx && pool_2x2(g) && g.ow < 8) {
      if (tap) return max_2x2_short_rows_avx512<Arg::Tap>(x, y, tap, planes, g);
      return max_2x2_short_rows_avx512<Arg::None>(x, y, nullptr, planes, g);
    }
  }
#endif
#if NC_HAVE_AVX2
  if (!idx && pool_2x2(g)) {
    if (tap) return max_2x2_avx2<T, Arg::Tap>(x, y, tap, planes, g);
    return max_2x2_avx2<T, Arg::None>(x, y, nullptr, planes, g);
  }
#endif
  if (idx) max_forward_as<T, Arg::Position>(x, y, idx, nullptr, planes, g);
  else if (tap) max_forward_as<T, Arg::Tap>(x, y, nullptr, tap, planes, g);
  else max_forward_as<T, Arg::None>(x, y, nullptr, nullptr, planes, g);
}

// Offsets in the input plane of each tap from its window's origin, for outputs recorded by tap.
struct TapOffsets {
  int64_t off[kPoolNoTap];
  explicit TapOffsets(const PoolGeometry& g) {
    for (int64_t t = 0; t < g.kh * g.kw && t < kPoolNoTap; ++t) off[t] = (t / g.kw) * g.dh * g.w + (t % g.kw) * g.dw;
  }
  // Position of tap t of output (oy, ox), or -1 for kPoolNoTap.
  int64_t position(const PoolGeometry& g, int64_t oy, int64_t ox, uint8_t t) const {
    return t == kPoolNoTap ? -1 : (oy * g.sh - g.ph) * g.w + ox * g.sw - g.pw + off[t];
  }
};

// Windows that tile the plane: stride = kernel, no padding or dilation, all inside the plane.
inline bool windows_tile(const PoolGeometry& g) {
  return g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1 && g.sh == g.kh && g.sw == g.kw && g.oh * g.kh <= g.h &&
         g.ow * g.kw <= g.w;
}

#if NC_HAVE_AVX2
// tiles_row for kw = 2, 8 outputs from ox: 16 elements.
inline void tiles_row8_avx2(float* row, const float* gyr, const uint8_t* tr, int64_t i, int64_t ox) {
  const __m256i t = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(tr + ox)));
  const __m256 gv = _mm256_add_ps(_mm256_setzero_ps(), _mm256_loadu_ps(gyr + ox));
  const int a = static_cast<int>(2 * i);
  const __m256 left = _mm256_and_ps(gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(t, _mm256_set1_epi32(a))));
  const __m256 right = _mm256_and_ps(gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(t, _mm256_set1_epi32(a + 1))));
  const __m256 lo = _mm256_unpacklo_ps(left, right), hi = _mm256_unpackhi_ps(left, right);
  _mm256_storeu_ps(row + 2 * ox, _mm256_permute2f128_ps(lo, hi, 0x20));
  _mm256_storeu_ps(row + 2 * ox + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}
#endif

// Input row i of the windows of one output row, when windows tile the plane: each element is
// 0 + gy where the recorded tap is that element (what zeros plus a scatter-add give), else 0.
// A row of fewer than 8 outputs goes as one full vector where the call has room for it (in_room
// elements writable from row, out_room outputs readable from gyr); what it writes past the row is
// written again later.
template <class T>
void tiles_row(T* row, const T* gyr, const uint8_t* tr, int64_t i, const PoolGeometry& g, int64_t in_room,
               int64_t out_room) {
  int64_t done = 0;
#if NC_HAVE_AVX2
  if constexpr (sizeof(T) == 4) {
    if (g.kw == 2 && g.ow >= 8) {
      for (int64_t b = 0; b < g.ow; b += 8) tiles_row8_avx2(row, gyr, tr, i, b + 8 <= g.ow ? b : g.ow - 8);
      done = g.ow;
    } else if (g.kw == 2 && out_room >= 8 && in_room >= 16) {
      tiles_row8_avx2(row, gyr, tr, i, 0);
      done = g.ow;
    }
  }
#endif
  for (int64_t ox = done; ox < g.ow; ++ox)
    for (int64_t j = 0; j < g.kw; ++j)
      row[ox * g.kw + j] = tr[ox] == i * g.kw + j ? T(0) + gyr[ox] : T(0);
}

template <class T>
void max_backward_tiles(const T* gy, const uint8_t* tap, T* gx, int64_t planes, const PoolGeometry& g) {
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
  for (int64_t p = 0; p < planes; ++p) {
    T* gp = gx + p * hw;
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const int64_t o = p * ohw + oy * g.ow;
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t r = (oy * g.kh + i) * g.w;
        tiles_row(gp + r, gy + o, tap + o, i, g, (planes - p) * hw - r, planes * ohw - o);
        for (int64_t k = g.ow * g.kw; k < g.w; ++k) gp[r + k] = T(0);
      }
    }
    for (int64_t k = g.oh * g.kh * g.w; k < hw; ++k) gp[k] = T(0);
  }
}

template <class T>
void max_backward(const T* gy, const int64_t* idx, const uint8_t* tap, T* gx, int64_t planes, const PoolGeometry& g) {
  if (tap && windows_tile(g)) return max_backward_tiles(gy, tap, gx, planes, g);
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
  const TapOffsets taps(g);
  for (int64_t p = 0; p < planes; ++p) {
    T* gp = gx + p * hw;
    for (int64_t k = 0; k < hw; ++k) gp[k] = T(0);
    const T* gyp = gy + p * ohw;
    if (idx) {
      const int64_t* ip = idx + p * ohw;
      for (int64_t o = 0; o < ohw; ++o)
        if (static_cast<uint64_t>(ip[o]) < static_cast<uint64_t>(hw)) gp[ip[o]] += gyp[o];
      continue;
    }
    const uint8_t* tp = tap + p * ohw;
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        const int64_t o = oy * g.ow + ox;
        if (tp[o] != kPoolNoTap) gp[taps.position(g, oy, ox, tp[o])] += gyp[o];
      }
    }
  }
}

void max_tap_positions(const uint8_t* tap, int64_t* idx, int64_t planes, const PoolGeometry& g) {
  const TapOffsets taps(g);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oy = 0; oy < g.oh; ++oy)
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        const int64_t o = (p * g.oh + oy) * g.ow + ox;
        idx[o] = taps.position(g, oy, ox, tap[o]);
      }
}

// ---------------------------------------------------------------------------------------------
// Average pooling (dilation 1).

// The divisor of window (y0.., x0..) as PyTorch computes it.
inline int64_t avg_divisor(const PoolGeometry& g, int64_t y0, int64_t x0) {
  if (g.divisor_override > 0) return g.divisor_override;
  const int64_t y1 = y0 + g.kh < g.h + g.ph ? y0 + g.kh : g.h + g.ph;
  const int64_t x1 = x0 + g.kw < g.w + g.pw ? x0 + g.kw : g.w + g.pw;
  if (g.count_include_pad) return (y1 - y0) * (x1 - x0);
  const int64_t vy = (y1 < g.h ? y1 : g.h) - (y0 > 0 ? y0 : 0), vx = (x1 < g.w ? x1 : g.w) - (x0 > 0 ? x0 : 0);
  return vy * vx;
}

// One output, its taps clipped to rows ri and columns rj.
template <class T>
void avg_one(const T* xp, const PoolGeometry& g, int64_t y0, TapRange ri, TapRange rj, int64_t ox, T div, T* yr) {
  const int64_t x0 = ox * g.sw - g.pw;
  T s = 0;
  for (int64_t i = ri.lo; i < ri.hi; ++i)
    for (int64_t j = rj.lo; j < rj.hi; ++j) s += xp[(y0 + i) * g.w + x0 + j];
  yr[ox] = s / div;
}

template <class T>
void avg_border(const T* xp, const PoolGeometry& g, int64_t y0, TapRange ri, int64_t ox, T* yr) {
  const int64_t x0 = ox * g.sw - g.pw;
  avg_one(xp, g, y0, ri, taps_inside(x0, g.kw, 1, g.w), ox, static_cast<T>(avg_divisor(g, y0, x0)), yr);
}

template <class T>
void avg_row(const T* __restrict xp, T* __restrict yr, const PoolGeometry& g, int64_t y0, TapRange ri, int64_t lo,
             int64_t hi, T div) {
  const int64_t sw = g.sw;
  for (int64_t ox = lo; ox < hi; ++ox) yr[ox] = T(0);
  for (int64_t i = ri.lo; i < ri.hi; ++i)
    for (int64_t j = 0; j < g.kw; ++j) {
      const T* src = xp + (y0 + i) * g.w + j - g.pw;
      for (int64_t ox = lo; ox < hi; ++ox) yr[ox] += src[ox * sw];
    }
  for (int64_t ox = lo; ox < hi; ++ox) yr[ox] = yr[ox] / div;
}

#if NC_HAVE_AVX2
void avg_row_avx2(const float* xp, float* yr, const PoolGeometry& g, int64_t y0, TapRange ri, int64_t lo, int64_t hi,
                  float div, Room room) {
  const __m256 vdiv = _mm256_set1_ps(div);
  const int64_t last_tap = (y0 + ri.hi - 1) * g.w + g.kw - 1 - g.pw;  // of output 0
  for_blocks(lo, hi, last_tap, g.sw, room, [&](int64_t ox, int64_t n, int64_t ns) {
    __m256 s = _mm256_setzero_ps();
    for (int64_t i = ri.lo; i < ri.hi; ++i)
      for (int64_t j = 0; j < g.kw; ++j)
        s = _mm256_add_ps(s, load_taps(xp + (y0 + i) * g.w + j - g.pw + ox * g.sw, g.sw, n));
    store_lanes(yr + ox, _mm256_div_ps(s, vdiv), ns);
  });
}
#endif

template <class T>
void avg_interior(const T* xp, T* yr, const PoolGeometry& g, int64_t y0, TapRange ri, int64_t lo, int64_t hi, T div,
                  Room room) {
#if NC_HAVE_AVX2
  if constexpr (sizeof(T) == 4) {
    if (g.sw == 1 || g.sw == 2) return avg_row_avx2(xp, yr, g, y0, ri, lo, hi, div, room);
  }
#endif
  avg_row(xp, yr, g, y0, ri, lo, hi, div);
}

template <class T>
void avg_forward(const T* x, T* y, int64_t planes, const PoolGeometry& g) {
#if NC_HAVE_AVX2
  if (pool_2x2(g)) return avg_2x2_avx2(x, y, planes, g, static_cast<T>(avg_divisor(g, 0, 0)));
#endif
  const TapRange in = interior_outputs(g.w, g.ow, g.kw, g.sw, g.pw, 1);
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * g.h * g.w;
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const int64_t y0 = oy * g.sh - g.ph;
      const TapRange ri = taps_inside(y0, g.kh, 1, g.h);
      T* yr = y + (p * g.oh + oy) * g.ow;
      for (int64_t ox = 0; ox < in.lo; ++ox) avg_border(xp, g, y0, ri, ox, yr);
      // Interior windows have the full width, so one divisor serves the whole run.
      if (in.lo < in.hi)
        avg_interior(xp, yr, g, y0, ri, in.lo, in.hi, static_cast<T>(avg_divisor(g, y0, in.lo * g.sw - g.pw)),
                     Room{(planes - p) * g.h * g.w, (planes - p) * g.oh * g.ow - oy * g.ow});
      for (int64_t ox = in.hi; ox < g.ow; ++ox) avg_border(xp, g, y0, ri, ox, yr);
    }
  }
}

// Adds gy / divisor of one border output to its clipped window.
template <class T>
void avg_one_backward(T* gp, const PoolGeometry& g, int64_t y0, TapRange ri, int64_t ox, T gyv) {
  const int64_t x0 = ox * g.sw - g.pw;
  const TapRange rj = taps_inside(x0, g.kw, 1, g.w);
  const T v = gyv / static_cast<T>(avg_divisor(g, y0, x0));
  for (int64_t i = ri.lo; i < ri.hi; ++i)
    for (int64_t j = rj.lo; j < rj.hi; ++j) gp[(y0 + i) * g.w + x0 + j] += v;
}

#if NC_HAVE_AVX2
// dst[2c] += v[c] and dst[2c + 1] += v[c] for c < n (adjacent windows of width 2).
void add_pairs_avx2(float* dst, const float* v, int64_t n) {
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    const __m256 a = _mm256_loadu_ps(v + c);
    const __m256 lo = _mm256_unpacklo_ps(a, a), hi = _mm256_unpackhi_ps(a, a);  // [a0 a0 a1 a1 | a4 a4 a5 a5] ...
    float* p = dst + 2 * c;
    _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), _mm256_permute2f128_ps(lo, hi, 0x20)));
    _mm256_storeu_ps(p + 8, _mm256_add_ps(_mm256_loadu_ps(p + 8), _mm256_permute2f128_ps(lo, hi, 0x31)));
  }
  for (; c < n; ++c) {
    dst[2 * c] += v[c];
    dst[2 * c + 1] += v[c];
  }
}
#endif

// One input row's share of n interior outputs: v[c] added to the kw elements of window c, which
// start at dst + c * sw. An element gets, within one output row, the taps j of outputs c with
// c * sw + j fixed: j descending is c ascending, the order of the outputs.
template <class T>
void add_window_row(T* __restrict dst, const T* __restrict v, int64_t n, const PoolGeometry& g) {
#if NC_HAVE_AVX2
  if constexpr (sizeof(T) == 4) {
    if (g.kw == 2 && g.sw == 2) return add_pairs_avx2(dst, v, n);  // one add per element: no order
  }
#endif
  for (int64_t j = g.kw - 1; j >= 0; --j) {
    if (g.sw == 1) {
      for (int64_t c = 0; c < n; ++c) dst[j + c] += v[c];
    } else {
      for (int64_t c = 0; c < n; ++c) dst[j + c * g.sw] += v[c];
    }
  }
}

template <class T>
void avg_backward(const T* gy, T* gx, int64_t planes, const PoolGeometry& g) {
  constexpr int64_t kChunk = 256;
  const TapRange in = interior_outputs(g.w, g.ow, g.kw, g.sw, g.pw, 1);
  T v[kChunk];
  for (int64_t p = 0; p < planes; ++p) {
    T* __restrict gp = gx + p * g.h * g.w;
    for (int64_t k = 0; k < g.h * g.w; ++k) gp[k] = T(0);
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const int64_t y0 = oy * g.sh - g.ph;
      const TapRange ri = taps_inside(y0, g.kh, 1, g.h);
      const T* gyr = gy + (p * g.oh + oy) * g.ow;
      for (int64_t ox = 0; ox < in.lo; ++ox) avg_one_backward(gp, g, y0, ri, ox, gyr[ox]);
      const T div = static_cast<T>(avg_divisor(g, y0, in.lo * g.sw - g.pw));
      for (int64_t c0 = in.lo; c0 < in.hi; c0 += kChunk) {
        const int64_t n = in.hi - c0 < kChunk ? in.hi - c0 : kChunk;
        for (int64_t c = 0; c < n; ++c) v[c] = gyr[c0 + c] / div;
        for (int64_t i = ri.lo; i < ri.hi; ++i) add_window_row(gp + (y0 + i) * g.w - g.pw + c0 * g.sw, v, n, g);
      }
      for (int64_t ox = in.hi; ox < g.ow; ++ox) avg_one_backward(gp, g, y0, ri, ox, gyr[ox]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Adaptive average pooling.

inline TapRange adaptive_range(int64_t o, int64_t in, int64_t out) {
  return {o * in / out, ((o + 1) * in + out - 1) / out};
}

template <class T>
double plane_sum(const T* x, int64_t n) {
  if constexpr (sizeof(T) == 4) return norm_table.f32.sum(x, n);
  else return norm_table.f64.sum(x, n);
}

template <class T>
void adaptive_forward(const T* x, T* y, int64_t planes, const PoolGeometry& g) {
  const int64_t hw = g.h * g.w;
  if (g.oh == 1 && g.ow == 1) {
    for (int64_t p = 0; p < planes; ++p) y[p] = static_cast<T>(plane_sum(x + p * hw, hw) / static_cast<double>(hw));
    return;
  }
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * hw;
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const TapRange ry = adaptive_range(oy, g.h, g.oh);
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        const TapRange rx = adaptive_range(ox, g.w, g.ow);
        T s = 0;
        for (int64_t iy = ry.lo; iy < ry.hi; ++iy)
          for (int64_t ix = rx.lo; ix < rx.hi; ++ix) s += xp[iy * g.w + ix];
        y[(p * g.oh + oy) * g.ow + ox] = s / static_cast<T>((ry.hi - ry.lo) * (rx.hi - rx.lo));
      }
    }
  }
}

template <class T>
void adaptive_backward(const T* gy, T* gx, int64_t planes, const PoolGeometry& g) {
  const int64_t hw = g.h * g.w;
  for (int64_t p = 0; p < planes; ++p) {
    T* gp = gx + p * hw;
    if (g.oh == 1 && g.ow == 1) {  // the general case below in one pass: 0 + v everywhere
      const T v = T(0) + gy[p] / static_cast<T>(hw);
      for (int64_t k = 0; k < hw; ++k) gp[k] = v;
      continue;
    }
    for (int64_t k = 0; k < hw; ++k) gp[k] = T(0);
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const TapRange ry = adaptive_range(oy, g.h, g.oh);
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        const TapRange rx = adaptive_range(ox, g.w, g.ow);
        const T v = gy[(p * g.oh + oy) * g.ow + ox] / static_cast<T>((ry.hi - ry.lo) * (rx.hi - rx.lo));
        for (int64_t iy = ry.lo; iy < ry.hi; ++iy)
          for (int64_t ix = rx.lo; ix < rx.hi; ++ix) gp[iy * g.w + ix] += v;
      }
    }
  }
}

template <class T>
constexpr PoolFns<T> fns() {
  return {max_forward<T>,      max_backward<T>,      avg_forward<T>,
          avg_backward<T>,     adaptive_forward<T>,  adaptive_backward<T>};
}

}  // namespace

const PoolKernels pool_table = {fns<float>(), fns<double>(), max_tap_positions};

}  // namespace nc::kernels::NC_ISA
