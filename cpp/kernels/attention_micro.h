#pragma once
// Register-blocked pieces of the float32 attention forward, for the avx2 and avx512 builds of
// attention.cpp. A strip of AttnVec::kRows query rows meets the keys a tile at a time: the strip's
// scores are one small L1 buffer, and both products (Q K^T, P V) are FMA loops with every
// accumulator in a register. At head dims of 32-64 this replaces two GEMM calls per tile, which
// pack their operands and whose setup cost about as much as the products themselves.
// One row's results depend only on that row and the key tiling (fixed by the shapes), never on
// which other rows share its strip: each lane of each accumulator belongs to one row.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/gemm_micro.h"
#include "kernels/isa.h"
#include "kernels/vecmath_avx2.h"
#if NC_HAVE_AVX512
#include "kernels/vecmath_avx512.h"
#endif

#if NC_HAVE_AVX2
namespace nc::kernels::NC_ISA {
namespace {

// The largest of 8 lanes that hold no NaN (a shuffle tree: the order does not matter for max).
inline float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

// The GEMM's vector traits (gemm_micro.h) plus what the online softmax needs.
#if NC_HAVE_AVX512
// 32 zmm registers: 6 rows x 4 vectors of accumulators, 4 operand vectors, 1 broadcast.
struct AttnVec : micro::V512<float> {
  using M = I;
  static constexpr int kRows = 6;     // query rows per strip
  static constexpr int kKeyVecs = 4;  // key vectors of one Q K^T block
  static constexpr int kValVecs = 4;  // value vectors of one P V block
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R max(R a, R b) { return _mm512_max_ps(a, b); }  // b where a is NaN
  static R exp(R x) { return exp16(x); }
  // The largest lane (of lanes that hold no NaN).
  static float hmax(R v) {
    return hmax8(_mm256_max_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
  }
};
#else
// 16 ymm registers: 6 rows x 2 vectors of accumulators, 2 operand vectors, 1 broadcast.
struct AttnVec : micro::V<float> {
  using M = I;
  static constexpr int kRows = 6;
  static constexpr int kKeyVecs = 2;
  static constexpr int kValVecs = 2;
  static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static R max(R a, R b) { return _mm256_max_ps(a, b); }
  static R exp(R x) { return exp8(x); }
  static float hmax(R v) { return hmax8(v); }
};
#endif

// dst[e * ldd + j] = src[j * lds + e] for j, e < 8: keys transposed 8 x 8 in registers (a scalar
// copy, one strided load per element, took a tenth of the forward at L = 128, d = 64).
inline void transpose8x8(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  micro::transpose8(r);
  for (int e = 0; e < 8; ++e) _mm256_storeu_ps(dst + e * ldd, r[e]);
}

// f(std::integral_constant<int, n>) for 1 <= n <= N: block widths as template arguments, so that
// the accumulator arrays of the blocks below stay in registers.
template <int N, class F>
void with_count(int n, const F& f) {
  if constexpr (N > 1) {
    if (n < N) return with_count<N - 1>(n, f);
  }
  f(std::integral_constant<int, N>{});
}

// s[r * ld + c] = scale * sum_e q[r][e] kt[e * ldt + c] for the strip's rows r and c < NV * W.
template <int NV>
void attn_qk_block(const float* const* q, int64_t E, const float* kt, int64_t ldt, float scale, float* s,
                   int64_t ld) {
  using V = AttnVec;
  constexpr int R = V::kRows;
  typename V::R acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
  for (int64_t e = 0; e < E; ++e) {
    typename V::R b[NV];
    for (int v = 0; v < NV; ++v) b[v] = V::load(kt + e * ldt + v * V::W);
    for (int r = 0; r < R; ++r) {
      const typename V::R a = V::set1(q[r][e]);
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(a, b[v], acc[r][v]);
    }
  }
  const typename V::R vs = V::set1(scale);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) V::store(s + r * ld + v * V::W, V::mul(acc[r][v], vs));
}

// The scores of the strip against nvec * W keys (kt: their first column): rows of s, ld apart.
inline void attn_qk(const float* const* q, int64_t E, const float* kt, int64_t ldt, float scale, float* s,
                    int64_t ld, int64_t nvec) {
  constexpr int NK = AttnVec::kKeyVecs, W = AttnVec::W;
  for (int64_t v0 = 0; v0 < nvec; v0 += NK)
    with_count<NK>(static_cast<int>(std::min<int64_t>(NK, nvec - v0)), [&](auto nv) {
      attn_qk_block<decltype(nv)::value>(q, E, kt + v0 * W, ldt, scale, s + v0 * W, ld);
    });
}

// acc[r] (NV * W floats, row r at acc + r * lda) = alpha[r] acc[r] + sum_{c < bc} p[r * ld + c] v_c
// with v_c = v + c * v_rs; Tail: the last vector of v_c is read through `last` (ragged Ev).
template <int NV, bool Tail>
void attn_pv_block(const float* p, int64_t ld, int64_t bc, const float* v, int64_t v_rs, typename AttnVec::M last,
                   const float* alpha, float* acc, int64_t lda) {
  using V = AttnVec;
  constexpr int R = V::kRows;
  typename V::R o[R][NV];
  for (int r = 0; r < R; ++r) {
    const typename V::R a = V::set1(alpha[r]);
    for (int u = 0; u < NV; ++u) o[r][u] = V::mul(a, V::load(acc + r * lda + u * V::W));
  }
  for (int64_t c = 0; c < bc; ++c) {
    const float* vc = v + c * v_rs;
    typename V::R b[NV];
    for (int u = 0; u < NV; ++u)
      b[u] = Tail && u == NV - 1 ? V::loadm(vc + u * V::W, last) : V::load(vc + u * V::W);
    for (int r = 0; r < R; ++r) {
      const typename V::R a = V::set1(p[r * ld + c]);
      for (int u = 0; u < NV; ++u) o[r][u] = V::fma(a, b[u], o[r][u]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int u = 0; u < NV; ++u) V::store(acc + r * lda + u * V::W, o[r][u]);
}

// The strip's accumulators (Ev values per row, rows lda >= Ev rounded up to W apart) rescaled by
// alpha and given the probabilities p (bc keys, rows ld apart) times the values v (rows v_rs apart).
inline void attn_pv(const float* p, int64_t ld, int64_t bc, const float* v, int64_t v_rs, int64_t Ev,
                    const float* alpha, float* acc, int64_t lda) {
  constexpr int NV = AttnVec::kValVecs, W = AttnVec::W;
  const int64_t nvec = (Ev + W - 1) / W;
  const typename AttnVec::M last = AttnVec::mask(Ev - (nvec - 1) * W);
  for (int64_t v0 = 0; v0 < nvec; v0 += NV) {
    const int n = static_cast<int>(std::min<int64_t>(NV, nvec - v0));
    const bool tail = v0 + n == nvec && Ev % W != 0;
    with_count<NV>(n, [&](auto nv) {
      constexpr int N = decltype(nv)::value;
      if (tail) {
        attn_pv_block<N, true>(p, ld, bc, v + v0 * W, v_rs, last, alpha, acc + v0 * W, lda);
      } else {
        attn_pv_block<N, false>(p, ld, bc, v + v0 * W, v_rs, last, alpha, acc + v0 * W, lda);
      }
    });
  }
}

// One step of the online softmax on the strip's scores (rows of nvec * W entries ld apart, -inf
// past the tile): row r becomes exp(x - m'_r), m'_r the new running max (all 0 where m'_r is
// -inf: every key so far masked), its lane sums lsum[r] (W floats) = lsum[r] * a_r + the new
// values, m[r] = m'_r, and alpha[r] = a_r = exp(m_r - m'_r), the factor for its accumulator. The
// row sums stay in lanes until the end (no horizontal sum per tile); NaN scores are skipped by
// the max and propagate through exp and the sums, as in the GEMM path.
inline void attn_softmax_step(float* s, int64_t ld, int64_t nvec, float* m, float* lsum, float* alpha) {
  using V = AttnVec;
  constexpr int R = V::kRows, W = V::W;
  static_assert(R <= W, "one lane per row for the rescale factors");
  alignas(64) float diff[W] = {};
  float mnew[R];
  for (int r = 0; r < R; ++r) {
    const float* x = s + r * ld;
    typename V::R vm = V::set1(-INFINITY);
    for (int64_t v = 0; v < nvec; ++v) vm = V::max(V::load(x + v * W), vm);
    const float mt = V::hmax(vm);
    mnew[r] = mt > m[r] ? mt : m[r];
    diff[r] = mnew[r] == -INFINITY ? 0.0f : m[r] - mnew[r];  // exp(-inf) = 0 when m_r was -inf
  }
  V::store(alpha, V::exp(V::load(diff)));  // alpha holds W floats
  for (int r = 0; r < R; ++r) {
    float* x = s + r * ld;
    if (mnew[r] == -INFINITY) {
      for (int64_t v = 0; v < nvec; ++v) V::store(x + v * W, V::zero());
      continue;
    }
    const typename V::R vs = V::set1(mnew[r]);
    typename V::R sum = V::mul(V::load(lsum + r * W), V::set1(alpha[r]));
    for (int64_t v = 0; v < nvec; ++v) {
      const typename V::R e = V::exp(V::sub(V::load(x + v * W), vs));
      V::store(x + v * W, e);
      sum = V::add(sum, e);
    }
    V::store(lsum + r * W, sum);
    m[r] = mnew[r];
  }
}

}  // namespace
}  // namespace nc::kernels::NC_ISA
#endif
