// Fused recurrent gate math (see rnn.h): one pass over a row's gates, every nonlinearity inline.
// Each formula is written once over a lane type R: 16 floats (AVX-512 polynomials of
// vecmath_avx512.h), 8 floats (AVX2 polynomials of vecmath_avx2.h) or one scalar (the C library),
// so every build shares it. The 16- and 8-lane polynomials give the same float lane for lane, so
// the avx512 and avx2 builds agree bit for bit.
#include "kernels/rnn.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/isa.h"
#if NC_HAVE_AVX2
#include "kernels/vecmath_avx2.h"
#endif
#if NC_HAVE_AVX512
#include "kernels/vecmath_avx512.h"
#endif

namespace nc::kernels::NC_ISA {
namespace {

// One lane of T: the C library's functions.
template <class T>
struct Lane1 {
  using R = T;
  static constexpr int W = 1;
  static R load(const T* p, int) { return *p; }
  static void store(T* p, R v, int) { *p = v; }
  static R set(T v) { return v; }
  static R sigmoid(R x) {
    const T e = std::exp(-std::fabs(x));
    return x >= 0 ? T(1) / (T(1) + e) : e / (T(1) + e);
  }
  static R tanh(R x) { return std::tanh(x); }
};

#if NC_HAVE_AVX2
// Eight floats; a partial vector (n < 8 lanes, the end of a block) is loaded and stored masked,
// so it takes the same arithmetic as a full one.
struct Lane8 {
  using R = __m256;
  static constexpr int W = 8;
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static R load(const float* p, int n) { return n == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask(n)); }
  static void store(float* p, R v, int n) {
    if (n == 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, mask(n), v);
  }
  static R set(float v) { return _mm256_set1_ps(v); }
  static R sigmoid(R x) { return sigmoid8(x); }
  static R tanh(R x) { return tanh8(x); }
};
#if NC_HAVE_AVX512
// Sixteen floats, a partial vector masked (masked-off lanes are neither read nor written).
struct Lane16 {
  using R = __m512;
  static constexpr int W = 16;
  static R load(const float* p, int n) {
    return n == 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(first_lanes(n), p);
  }
  static void store(float* p, R v, int n) {
    if (n == 16) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, first_lanes(n), v);
  }
  static R set(float v) { return _mm512_set1_ps(v); }
  static R sigmoid(R x) { return sigmoid16(x); }
  static R tanh(R x) { return tanh16(x); }
};
using FloatLanes = Lane16;
#else
using FloatLanes = Lane8;
#endif
template <class T>
using Lanes = std::conditional_t<std::is_same_v<T, float>, FloatLanes, Lane1<T>>;
#else
template <class T>
using Lanes = Lane1<T>;
#endif

// Calls f(j, n) for the lane groups of a row of h units: n = lanes in the group.
template <class L, class F>
inline void for_lanes(int64_t h, const F& f) {
  for (int64_t j = 0; j < h; j += L::W) f(j, static_cast<int>(std::min<int64_t>(L::W, h - j)));
}

template <class T>
void rnn_forward(const T* g, int64_t ldg, T* y, int64_t ldh, int64_t rows, int64_t h, bool relu) {
  using L = Lanes<T>;
  for (int64_t r = 0; r < rows; ++r) {
    const T* gr = g + r * ldg;
    T* yr = y + r * ldh;
    if (relu)  // NaN passes through
      for (int64_t j = 0; j < h; ++j) yr[j] = gr[j] > T(0) ? gr[j] : (gr[j] != gr[j] ? gr[j] : T(0));
    else
      for_lanes<L>(h, [&](int64_t j, int n) { L::store(yr + j, L::tanh(L::load(gr + j, n)), n); });
  }
}

template <class T>
void rnn_backward(const T* y, const T* dh, int64_t ldh, T* dg, int64_t ldg, int64_t rows, int64_t h, bool relu) {
  for (int64_t r = 0; r < rows; ++r) {
    const T *yr = y + r * ldh, *dr = dh + r * ldh;
    T* gr = dg + r * ldg;
    if (relu)
      for (int64_t j = 0; j < h; ++j) gr[j] = yr[j] > T(0) ? dr[j] : T(0);
    else
      for (int64_t j = 0; j < h; ++j) gr[j] = dr[j] * (T(1) - yr[j] * yr[j]);
  }
}

template <class T>
void lstm_forward(T* gates, int64_t ldg, const T* c_prev, T* c, T* tanh_c, int64_t ldc, T* hc, int64_t ldh,
                  int64_t rows, int64_t h) {
  using L = Lanes<T>;
  using R = typename L::R;
  for (int64_t r = 0; r < rows; ++r) {
    T* g = gates + r * ldg;
    const T* cp = c_prev + r * ldc;
    T* cr = c + r * ldc;
    T* hr = hc + r * ldh;
    for_lanes<L>(h, [&](int64_t j, int n) {
      const R i = L::sigmoid(L::load(g + j, n)), f = L::sigmoid(L::load(g + h + j, n));
      const R gg = L::tanh(L::load(g + 2 * h + j, n)), o = L::sigmoid(L::load(g + 3 * h + j, n));
      const R cv = f * L::load(cp + j, n) + i * gg;
      L::store(g + j, i, n);
      L::store(g + h + j, f, n);
      L::store(g + 2 * h + j, gg, n);
      L::store(g + 3 * h + j, o, n);
      const R tc = L::tanh(cv);
      L::store(cr + j, cv, n);
      if (tanh_c) L::store(tanh_c + r * ldc + j, tc, n);
      L::store(hr + j, o * tc, n);
    });
  }
}

template <class T>
void lstm_backward(const T* gates, T* dgates, int64_t ldg, const T* tanh_c, const T* c_prev, T* dc, int64_t ldc,
                   const T* dhc, int64_t ldh, int64_t rows, int64_t h) {
  using L = Lanes<T>;
  using R = typename L::R;
  const R one = L::set(T(1));
  for (int64_t r = 0; r < rows; ++r) {
    const T* g = gates + r * ldg;
    T* dg = dgates + r * ldg;
    const T *tr = tanh_c + r * ldc, *cp = c_prev + r * ldc, *dh = dhc + r * ldh;
    T* dcr = dc + r * ldc;
    for_lanes<L>(h, [&](int64_t j, int n) {
      const R i = L::load(g + j, n), f = L::load(g + h + j, n), gv = L::load(g + 2 * h + j, n);
      const R o = L::load(g + 3 * h + j, n), t = L::load(tr + j, n), d = L::load(dh + j, n);
      const R dct = L::load(dcr + j, n) + d * o * (one - t * t);
      L::store(dg + j, dct * gv * i * (one - i), n);
      L::store(dg + h + j, dct * L::load(cp + j, n) * f * (one - f), n);
      L::store(dg + 2 * h + j, dct * i * (one - gv * gv), n);
      L::store(dg + 3 * h + j, d * t * o * (one - o), n);
      L::store(dcr + j, dct * f, n);
    });
  }
}

template <class T>
void gru_forward(T* gx, const T* gh, int64_t ldg, const T* h_prev, T* h_out, int64_t ldh, int64_t rows, int64_t h) {
  using L = Lanes<T>;
  using R = typename L::R;
  for (int64_t r = 0; r < rows; ++r) {
    T* x = gx + r * ldg;
    const T* hh = gh + r * ldg;
    const T* hp = h_prev + r * ldh;
    T* ho = h_out + r * ldh;
    for_lanes<L>(h, [&](int64_t j, int n) {
      const R rg = L::sigmoid(L::load(x + j, n) + L::load(hh + j, n));
      const R z = L::sigmoid(L::load(x + h + j, n) + L::load(hh + h + j, n));
      const R nv = L::tanh(L::load(x + 2 * h + j, n) + rg * L::load(hh + 2 * h + j, n));
      L::store(x + j, rg, n);
      L::store(x + h + j, z, n);
      L::store(x + 2 * h + j, nv, n);
      L::store(ho + j, nv + z * (L::load(hp + j, n) - nv), n);
    });
  }
}

template <class T>
void gru_backward(const T* gates, const T* gh, T* dgx, T* dgh, int64_t ldg, const T* h_prev, const T* dh, T* dh_prev,
                  int64_t ldh, int64_t rows, int64_t h) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* g = gates + r * ldg;
    const T* hn = gh + r * ldg + 2 * h;
    const T* hp = h_prev + r * ldh;
    const T* d = dh + r * ldh;
    T* dx = dgx + r * ldg;
    T* dhh = dgh + r * ldg;
    T* dp = dh_prev + r * ldh;
    for (int64_t j = 0; j < h; ++j) {
      const T rg = g[j], z = g[h + j], n = g[2 * h + j], dv = d[j];
      const T dn = dv * (T(1) - z) * (T(1) - n * n);
      const T dr = dn * hn[j] * rg * (T(1) - rg);
      const T dz = dv * (hp[j] - n) * z * (T(1) - z);
      dx[j] = dr;
      dx[h + j] = dz;
      dx[2 * h + j] = dn;
      dhh[j] = dr;
      dhh[h + j] = dz;
      dhh[2 * h + j] = dn * rg;
      dp[j] = dv * z;
    }
  }
}

template <class T>
void add_rows(const T* a, int64_t lda, int64_t rows, int64_t n, T* sum) {
  using L = Lanes<T>;
  using R = typename L::R;
  for_lanes<L>(n, [&](int64_t j, int w) {
    R acc = L::load(sum + j, w);
    for (int64_t r = 0; r < rows; ++r) acc = acc + L::load(a + r * lda + j, w);
    L::store(sum + j, acc, w);
  });
}

template <class T>
void add_block(const T* a, int64_t lda, T* b, int64_t ldb, int64_t rows, int64_t n) {
  using L = Lanes<T>;
  for (int64_t r = 0; r < rows; ++r) {
    const T* ar = a + r * lda;
    T* br = b + r * ldb;
    for_lanes<L>(n, [&](int64_t j, int w) { L::store(br + j, L::load(br + j, w) + L::load(ar + j, w), w); });
  }
}

template <class T>
constexpr RnnOps<T> ops() {
  return {rnn_forward<T>, rnn_backward<T>, lstm_forward<T>, lstm_backward<T>, gru_forward<T>, gru_backward<T>,
          add_rows<T>,    add_block<T>};
}

}  // namespace

const RnnKernels rnn_table = {ops<float>(), ops<double>()};

}  // namespace nc::kernels::NC_ISA
