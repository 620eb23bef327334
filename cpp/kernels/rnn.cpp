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
  static R where_positive(R y, R d) { return y > T(0) ? d : T(0); }  // d where y > 0, else +0
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
  static R where_positive(R y, R d) { return _mm256_and_ps(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ), d); }
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
  static R where_positive(R y, R d) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GT_OQ), d);
  }
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

// The backward kernels run lane group by lane group, rows inside: the bias gradient of a group
// stays in registers while the rows add to it in order (row r of every group reads its own cache
// lines either way).
template <class T>
void rnn_backward(const T* y, const T* dh, const T* dy, int64_t ldh, T* dg, int64_t ldg, T* db, int64_t rows,
                  int64_t h, bool relu) {
  using L = Lanes<T>;
  using R = typename L::R;
  const R one = L::set(T(1));
  for_lanes<L>(h, [&](int64_t j, int n) {
    R sum = db ? L::load(db + j, n) : one;
    for (int64_t r = 0; r < rows; ++r) {
      R d = L::load(dh + r * ldh + j, n);
      if (dy) d = d + L::load(dy + r * ldh + j, n);
      const R yv = L::load(y + r * ldh + j, n);
      const R grad = relu ? L::where_positive(yv, d) : d * (one - yv * yv);
      L::store(dg + r * ldg + j, grad, n);
      sum = sum + grad;
    }
    if (db) L::store(db + j, sum, n);
  });
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

// Lane group by lane group, rows inside: the bias gradient of a group stays in registers while the
// rows add to it in order (row r of every group reads its own cache lines either way).
template <class T>
void lstm_backward(const T* gates, T* dgates, int64_t ldg, const T* tanh_c, const T* c_prev, T* dc, int64_t ldc,
                   const T* dhc, const T* dy, int64_t ldh, T* db, int64_t rows, int64_t h) {
  using L = Lanes<T>;
  using R = typename L::R;
  const R one = L::set(T(1));
  for_lanes<L>(h, [&](int64_t j, int n) {
    R sum[4];
    for (int q = 0; q < 4; ++q) sum[q] = db ? L::load(db + q * h + j, n) : one;
    for (int64_t r = 0; r < rows; ++r) {
      const T* g = gates + r * ldg + j;
      T* dg = dgates + r * ldg + j;
      const R i = L::load(g, n), f = L::load(g + h, n), gv = L::load(g + 2 * h, n), o = L::load(g + 3 * h, n);
      const R t = L::load(tanh_c + r * ldc + j, n);
      const R d = dy ? L::load(dhc + r * ldh + j, n) + L::load(dy + r * ldh + j, n) : L::load(dhc + r * ldh + j, n);
      T* dcr = dc + r * ldc + j;
      const R dct = L::load(dcr, n) + d * o * (one - t * t);
      const R grad[4] = {dct * gv * i * (one - i), dct * L::load(c_prev + r * ldc + j, n) * f * (one - f),
                         dct * i * (one - gv * gv), d * t * o * (one - o)};
      for (int q = 0; q < 4; ++q) {
        L::store(dg + q * h, grad[q], n);
        sum[q] = sum[q] + grad[q];
      }
      L::store(dcr, dct * f, n);
    }
    if (db)
      for (int q = 0; q < 4; ++q) L::store(db + q * h + j, sum[q], n);
  });
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
void gru_backward(const T* gates, const T* gh, T* dgx, T* dgh, int64_t ldg, const T* h_prev, const T* dh,
                  const T* dy, T* dh_prev, int64_t ldh, T* db, T* dbh, int64_t rows, int64_t h) {
  using L = Lanes<T>;
  using R = typename L::R;
  const R one = L::set(T(1));
  for_lanes<L>(h, [&](int64_t j, int n) {
    R sum[3], sum_h[3];
    for (int q = 0; q < 3; ++q) {
      sum[q] = db ? L::load(db + q * h + j, n) : one;
      sum_h[q] = db ? L::load(dbh + q * h + j, n) : one;
    }
    for (int64_t r = 0; r < rows; ++r) {
      const T* g = gates + r * ldg + j;
      const R rg = L::load(g, n), z = L::load(g + h, n), nv = L::load(g + 2 * h, n);
      const R dv = dy ? L::load(dh + r * ldh + j, n) + L::load(dy + r * ldh + j, n) : L::load(dh + r * ldh + j, n);
      const R dn = dv * (one - z) * (one - nv * nv);
      const R dr = dn * L::load(gh + r * ldg + 2 * h + j, n) * rg * (one - rg);
      const R dz = dv * (L::load(h_prev + r * ldh + j, n) - nv) * z * (one - z);
      const R grad[3] = {dr, dz, dn}, grad_h[3] = {dr, dz, dn * rg};
      for (int q = 0; q < 3; ++q) {
        L::store(dgx + r * ldg + q * h + j, grad[q], n);
        L::store(dgh + r * ldg + q * h + j, grad_h[q], n);
        sum[q] = sum[q] + grad[q];
        sum_h[q] = sum_h[q] + grad_h[q];
      }
      L::store(dh_prev + r * ldh + j, dv * z, n);
    }
    if (db)
      for (int q = 0; q < 3; ++q) {
        L::store(db + q * h + j, sum[q], n);
        L::store(dbh + q * h + j, sum_h[q], n);
      }
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
          add_block<T>};
}

}  // namespace

const RnnKernels rnn_table = {ops<float>(), ops<double>()};

}  // namespace nc::kernels::NC_ISA
