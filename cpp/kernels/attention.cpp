// Fused attention kernels (see attention.h). Tile products go through this ISA's GEMM (called
// from inside the caller's parallel region it runs on one thread); scores, probabilities and
// their gradients live in one kRowTile x kKeyTile buffer at a time, beside one transposed copy
// of the head's keys (and, in the backward, values): memory linear in the sequence length.
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/attention_micro.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/philox.h"
#include "kernels/vecmath_avx2.h"
#if NC_HAVE_AVX512
#include "kernels/vecmath_avx512.h"
#endif

namespace nc::kernels::NC_ISA {
namespace {

constexpr int64_t Br = kAttnRowTile;  // query rows per tile
constexpr int64_t Bc = 64;            // keys per tile in the backward
// Keys per tile in the forward: each tile costs two GEMM calls and a rescale of every row's
// accumulator, which at head dims of 32-64 outweigh the work of a 64-key tile (128 keys: the seed
// block's attention, L = 128, and causal L = 1024, ~12% faster). The backward keeps 64: its four
// tile buffers at 128 keys outgrow the L1 cache (fwd+bwd 7-20% slower). Dropout masks do not
// depend on the tiling (dropout_row draws by absolute position).
constexpr int64_t BcFwd = 128;

template <class T>
T* alloc_tile(int64_t elems) {
  const size_t bytes = (static_cast<size_t>(elems) * sizeof(T) + 63) / 64 * 64;
  return static_cast<T*>(std::aligned_alloc(64, bytes ? bytes : 64));
}

// Buffers of one call, freed on return.
template <class T>
struct Scratch {
  T* p;
  explicit Scratch(int64_t elems) : p(alloc_tile<T>(elems)) {}
  ~Scratch() { std::free(p); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

// C = alpha * op(A) op(B) + beta * C on this ISA's GEMM.
inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  gemm_table.f32.gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
                 const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  gemm_table.f64.gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// x[c] = exp(x[c] - shift) for c < n; returns the sum of the new values (in a fixed order).
inline double exp_shifted(float* x, int64_t n, float shift) {
  int64_t c = 0;
  double sum = 0.0;
#if NC_HAVE_AVX512
  // The same exp as the avx2 build lane for lane; the sum adds 16 lane totals instead of 8.
  const __m512 vs = _mm512_set1_ps(shift);
  __m512 acc = _mm512_setzero_ps();
  for (; c < n; c += 16) {
    const __mmask16 m = first_lanes(std::min<int64_t>(16, n - c));
    // Lanes past n read -inf and give 0.
    const __m512 e = exp16(_mm512_sub_ps(_mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), m, x + c), vs));
    _mm512_mask_storeu_ps(x + c, m, e);
    acc = _mm512_add_ps(acc, e);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc);
  for (int i = 0; i < 16; ++i) sum += lanes[i];
#elif NC_HAVE_AVX2
  const __m256 vs = _mm256_set1_ps(shift);
  __m256 acc = _mm256_setzero_ps();
  for (; c + 8 <= n; c += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + c), vs));
    _mm256_storeu_ps(x + c, e);
    acc = _mm256_add_ps(acc, e);
  }
  if (c < n) {
    alignas(32) float buf[8];
    for (int i = 0; i < 8; ++i) buf[i] = c + i < n ? x[c + i] : -INFINITY;
    const __m256 e = exp8(_mm256_sub_ps(_mm256_load_ps(buf), vs));  // padding lanes give 0
    _mm256_store_ps(buf, e);
    acc = _mm256_add_ps(acc, e);
    std::memcpy(x + c, buf, static_cast<size_t>(n - c) * sizeof(float));
    c = n;
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  for (int i = 0; i < 8; ++i) sum += lanes[i];
#endif
  for (; c < n; ++c) {
    x[c] = std::exp(x[c] - shift);
    sum += x[c];
  }
  return sum;
}
inline double exp_shifted(double* x, int64_t n, double shift) {
  double sum = 0.0;
  for (int64_t c = 0; c < n; ++c) {
    x[c] = std::exp(x[c] - shift);
    sum += x[c];
  }
  return sum;
}

// max of x[0..n) (-inf for n == 0; NaN entries are skipped).
inline float row_max(const float* x, int64_t n) {
  float m = -INFINITY;
  int64_t c = 0;
#if NC_HAVE_AVX512
  __m512 vm = _mm512_set1_ps(-INFINITY);
  for (; c + 16 <= n; c += 16) vm = _mm512_max_ps(_mm512_loadu_ps(x + c), vm);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, vm);
  for (int i = 0; i < 16; ++i) m = lanes[i] > m ? lanes[i] : m;
#elif NC_HAVE_AVX2
  __m256 vm = _mm256_set1_ps(-INFINITY);
  for (; c + 8 <= n; c += 8) vm = _mm256_max_ps(_mm256_loadu_ps(x + c), vm);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vm);
  for (int i = 0; i < 8; ++i) m = lanes[i] > m ? lanes[i] : m;
#endif
  for (; c < n; ++c) m = x[c] > m ? x[c] : m;
  return m;
}
inline double row_max(const double* x, int64_t n) {
  double m = -INFINITY;
  for (int64_t c = 0; c < n; ++c) m = x[c] > m ? x[c] : m;
  return m;
}

// kt[e * ldt + j] = k[j * k_rs + e] for j < n, e < E: keys transposed once per head, so every
// score tile is a plain (non-transposed) product. Row stride: attn_transposed_stride (attention.h).
template <class T>
int64_t transposed_stride(int64_t n) {
  return attn_transposed_stride(n, static_cast<int64_t>(sizeof(T)));
}

// Columns n up to the next multiple of 16 are zeroed: the register blocks read whole vectors.
template <class T>
void transpose_keys(const T* k, int64_t k_rs, int64_t n, int64_t E, T* kt, int64_t ldt) {
  int64_t n8 = 0, E8 = 0;  // keys and dims done by whole 8 x 8 blocks
#if NC_HAVE_AVX2
  if constexpr (std::is_same_v<T, float>) {
    n8 = n / 8 * 8;
    E8 = E / 8 * 8;
    for (int64_t j0 = 0; j0 < n8; j0 += 8)
      for (int64_t e0 = 0; e0 < E8; e0 += 8) transpose8x8(k + j0 * k_rs + e0, k_rs, kt + e0 * ldt + j0, ldt);
  }
#endif
  constexpr int64_t B = 16;
  const int64_t padded = std::min(ldt, (n + B - 1) / B * B);
  for (int64_t j0 = 0; j0 < padded; j0 += B)
    for (int64_t e = 0; e < E; ++e) {
      const int64_t jb = e < E8 ? std::max(j0, n8) : j0, je = std::min(n, j0 + B);
      for (int64_t j = jb; j < je; ++j) kt[e * ldt + j] = k[j * k_rs + e];
      for (int64_t j = std::max(j0, n); j < std::min(padded, j0 + B); ++j) kt[e * ldt + j] = T(0);
    }
}

// Masks score tile s (br x bc, row stride ld) of rows ib.., keys jb..: excluded entries become
// -inf, additive mask values are added.
template <class T>
void apply_mask(const AttnHead<T>& h, T* s, int64_t ld, int64_t ib, int64_t br, int64_t jb, int64_t bc) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  if (h.mask_kind == AttnMask::Bool) {
    const auto* m = static_cast<const uint8_t*>(h.mask);
    for (int64_t r = 0; r < br; ++r) {
      const uint8_t* mr = m + (ib + r) * h.m_rs + jb * h.m_cs;
      T* sr = s + r * ld;
      for (int64_t c = 0; c < bc; ++c)
        if (!mr[c * h.m_cs]) sr[c] = ninf;
    }
  } else if (h.mask_kind == AttnMask::Additive) {
    const T* m = static_cast<const T*>(h.mask);
    for (int64_t r = 0; r < br; ++r) {
      const T* mr = m + (ib + r) * h.m_rs + jb * h.m_cs;
      T* sr = s + r * ld;
      if (h.m_cs == 1) {
        for (int64_t c = 0; c < bc; ++c) sr[c] += mr[c];
      } else {
        for (int64_t c = 0; c < bc; ++c) sr[c] += mr[c * h.m_cs];
      }
    }
  }
  if (h.causal && jb + bc - 1 > ib) {
    for (int64_t r = 0; r < br; ++r) {
      T* sr = s + r * ld;
      for (int64_t c = std::max<int64_t>(0, ib + r - jb + 1); c < bc; ++c) sr[c] = ninf;
    }
  }
}

// keep[c] (c < bc) = dropout scale or 0 for row i, keys jb.. (words buffer of bc / 4 + 2 counters).
template <class T>
void dropout_row(const AttnHead<T>& h, int64_t i, int64_t jb, int64_t bc, uint32_t* words, T* keep) {
  const uint64_t e0 = h.rng_elem0 + static_cast<uint64_t>(i) * static_cast<uint64_t>(h.S) + static_cast<uint64_t>(jb);
  const uint64_t c0 = e0 / 4, c1 = (e0 + static_cast<uint64_t>(bc) - 1) / 4;
  philox_table.philox4x32(h.rng_key, h.rng_counter + c0, static_cast<int64_t>(c1 - c0 + 1), words);
  const T scale = h.dropout_p < 1.0 ? static_cast<T>(1.0 / (1.0 - h.dropout_p)) : T(0);
  const uint32_t* w = words + (e0 - 4 * c0);
  for (int64_t c = 0; c < bc; ++c) keep[c] = (w[c] >> 8) * (1.0 / 16777216.0) >= h.dropout_p ? scale : T(0);
}

// Last key (exclusive) that rows [ib, ib + br) can see.
template <class T>
int64_t key_end(const AttnHead<T>& h, int64_t ib, int64_t br) {
  return h.causal ? std::min(h.S, ib + br) : h.S;
}

// The keys that query rows [i0, i1) can see, transposed: the caller's copy, or this call's own.
template <class T>
struct KeysT {
  int64_t ldt;
  Scratch<T> own;
  const T* kt;
  KeysT(const AttnHead<T>& h, int64_t i0, int64_t i1)
      : ldt(h.kt ? h.kt_ld : transposed_stride<T>(key_end(h, i0, i1 - i0))),
        own(h.kt ? 1 : h.E * ldt),
        kt(h.kt ? h.kt : own.p) {
    if (!h.kt) transpose_keys(h.k, h.k_rs, key_end(h, i0, i1 - i0), h.E, own.p, ldt);
  }
};

template <class T>
void forward(const AttnHead<T>& h, int64_t i0, int64_t i1, T* o, int64_t o_rs, T* lse) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  const int64_t Ev = h.Ev;
  Scratch<T> s(Br * BcFwd), acc(Br * Ev), keep(BcFwd);
  Scratch<uint32_t> words(BcFwd + 16);
  const KeysT<T> keys(h, i0, i1);
  const T* kt = keys.kt;
  const int64_t ldt = keys.ldt;
  T m[Br];
  double l[Br];
  for (int64_t ib = i0; ib < i1; ib += Br) {
    const int64_t br = std::min(Br, i1 - ib);
    for (int64_t r = 0; r < br; ++r) {
      m[r] = ninf;
      l[r] = 0.0;
    }
    std::memset(acc.p, 0, static_cast<size_t>(br * Ev) * sizeof(T));
    const int64_t jend = key_end(h, ib, br);
    for (int64_t jb = 0; jb < jend; jb += BcFwd) {
      const int64_t bc = std::min(BcFwd, jend - jb);
      gemm(false, false, br, bc, h.E, h.scale, h.q + ib * h.q_rs, h.q_rs, kt + jb, ldt, T(0), s.p, BcFwd);
      apply_mask(h, s.p, BcFwd, ib, br, jb, bc);
      for (int64_t r = 0; r < br; ++r) {
        T* sr = s.p + r * BcFwd;
        const T mt = row_max(sr, bc);
        const T mnew = mt > m[r] ? mt : m[r];
        if (mnew == ninf) {  // every key so far masked out: nothing to add
          std::memset(sr, 0, static_cast<size_t>(bc) * sizeof(T));
          continue;
        }
        const T alpha = m[r] == ninf ? T(0) : static_cast<T>(std::exp(m[r] - mnew));
        l[r] = l[r] * alpha + exp_shifted(sr, bc, mnew);
        m[r] = mnew;
        if (alpha != T(1)) {
          T* ar = acc.p + r * Ev;
          for (int64_t e = 0; e < Ev; ++e) ar[e] *= alpha;
        }
        if (h.dropout_p > 0.0) {
          dropout_row(h, ib + r, jb, bc, words.p, keep.p);
          for (int64_t c = 0; c < bc; ++c) sr[c] *= keep.p[c];
        }
      }
      gemm(false, false, br, Ev, bc, T(1), s.p, BcFwd, h.v + jb * h.v_rs, h.v_rs, T(1), acc.p, Ev);
    }
    for (int64_t r = 0; r < br; ++r) {
      T* orow = o + (ib + r) * o_rs;
      const T* ar = acc.p + r * Ev;
      if (l[r] == 0.0) {
        std::memset(orow, 0, static_cast<size_t>(Ev) * sizeof(T));
        lse[ib + r] = std::numeric_limits<T>::infinity();
        continue;
      }
      const T inv = static_cast<T>(1.0 / l[r]);
      for (int64_t e = 0; e < Ev; ++e) orow[e] = ar[e] * inv;
      lse[ib + r] = static_cast<T>(m[r] + std::log(l[r]));
    }
  }
}

#if NC_HAVE_AVX2
// The float32 forward on this ISA's register blocks (attention_micro.h): strips of kRows query
// rows, each against its visible keys kKeyTile at a time, the strip's running max, sum and output
// accumulators held across the tiles. Rows past i1 in the last strip repeat row i1 - 1 and are
// dropped; causal strips stop at their own last visible key.
void forward_tiled(const AttnHead<float>& h, int64_t i0, int64_t i1, float* o, int64_t o_rs, float* lse) {
  constexpr int R = AttnVec::kRows, W = AttnVec::W;
  // 64 keys: the strip's scores and probabilities fill 6 x 64 floats; longer tiles gave no gain.
  constexpr int64_t kKeyTile = 64;
  const int64_t Ev = h.Ev, lda = (Ev + W - 1) / W * W;
  Scratch<float> s(R * kKeyTile), acc(R * lda), lsum(R * W), keep(kKeyTile);
  Scratch<uint32_t> words(kKeyTile + 16);
  const KeysT<float> keys(h, i0, i1);
  for (int64_t i = i0; i < i1; i += R) {
    const int64_t rows = std::min<int64_t>(R, i1 - i);
    const float* q[R];
    float m[R];
    alignas(64) float alpha[W];
    for (int r = 0; r < R; ++r) {
      q[r] = h.q + (i + std::min<int64_t>(r, rows - 1)) * h.q_rs;
      m[r] = -INFINITY;
    }
    std::memset(acc.p, 0, static_cast<size_t>(R * lda) * sizeof(float));
    std::memset(lsum.p, 0, static_cast<size_t>(R * W) * sizeof(float));
    const int64_t jend = key_end(h, i, rows);
    for (int64_t jb = 0; jb < jend; jb += kKeyTile) {
      const int64_t bc = std::min(kKeyTile, jend - jb), nvec = (bc + W - 1) / W;
      // Whole vectors of keys (kt's rows are zero-padded to a multiple of 16, see transpose_keys);
      // the padding lanes' scores are then set to -inf.
      attn_qk(q, h.E, keys.kt + jb, keys.ldt, h.scale, s.p, kKeyTile, nvec);
      for (int r = 0; r < R; ++r)
        std::fill(s.p + r * kKeyTile + bc, s.p + r * kKeyTile + nvec * W, -INFINITY);
      apply_mask(h, s.p, kKeyTile, i, rows, jb, bc);
      attn_softmax_step(s.p, kKeyTile, nvec, m, lsum.p, alpha);
      if (h.dropout_p > 0.0) {
        for (int64_t r = 0; r < rows; ++r) {
          if (m[r] == -INFINITY) continue;
          dropout_row(h, i + r, jb, bc, words.p, keep.p);
          for (int64_t c = 0; c < bc; ++c) s.p[r * kKeyTile + c] *= keep.p[c];
        }
      }
      attn_pv(s.p, kKeyTile, bc, h.v + jb * h.v_rs, h.v_rs, Ev, alpha, acc.p, lda);
    }
    for (int64_t r = 0; r < rows; ++r) {
      float* orow = o + (i + r) * o_rs;
      const float* ar = acc.p + r * lda;
      double l = 0.0;
      for (int c = 0; c < W; ++c) l += lsum.p[r * W + c];
      if (l == 0.0) {
        std::memset(orow, 0, static_cast<size_t>(Ev) * sizeof(float));
        lse[i + r] = INFINITY;
        continue;
      }
      const float inv = static_cast<float>(1.0 / l);
      for (int64_t e = 0; e < Ev; ++e) orow[e] = ar[e] * inv;
      lse[i + r] = static_cast<float>(m[r] + std::log(l));
    }
  }
}
#endif

template <class T>
void backward(const AttnHead<T>& h, const T* o, int64_t o_rs, const T* go, int64_t go_rs, const T* lse, T* gq,
              int64_t gq_rs, T* gk, int64_t gk_rs, T* gv, int64_t gv_rs, T* gm, int64_t gm_rs, int64_t gm_cs) {
  const int64_t L = h.L, S = h.S, E = h.E, Ev = h.Ev;
  const bool drop = h.dropout_p > 0.0;
  Scratch<T> p(Br * Bc), pd(drop ? Br * Bc : 1), dp(Br * Bc), keep(drop ? Br * Bc : 1), D(L);
  Scratch<uint32_t> words(Bc + 16);
  const int64_t ldt = transposed_stride<T>(S);
  Scratch<T> kt(E * ldt), vt(Ev * ldt);
  transpose_keys(h.k, h.k_rs, S, E, kt.p, ldt);
  transpose_keys(h.v, h.v_rs, S, Ev, vt.p, ldt);
  // D[i] = sum_e go[i, e] * o[i, e] (= sum_j P_ij dP_ij, the softmax backward's row term).
  for (int64_t i = 0; i < L; ++i) {
    double d = 0.0;
    for (int64_t e = 0; e < Ev; ++e) d += static_cast<double>(go[i * go_rs + e]) * o[i * o_rs + e];
    D.p[i] = static_cast<T>(d);
  }
  for (int64_t i = 0; i < L; ++i) std::memset(gq + i * gq_rs, 0, static_cast<size_t>(E) * sizeof(T));
  for (int64_t jb = 0; jb < S; jb += Bc) {
    const int64_t bc = std::min(Bc, S - jb);
    // Causal: the first query that sees key jb is query jb; tiles start on multiples of Br.
    for (int64_t ib = h.causal ? (jb / Br) * Br : 0; ib < L; ib += Br) {
      const int64_t br = std::min(Br, L - ib);
      gemm(false, false, br, bc, E, h.scale, h.q + ib * h.q_rs, h.q_rs, kt.p + jb, ldt, T(0), p.p, Bc);
      apply_mask(h, p.p, Bc, ib, br, jb, bc);
      for (int64_t r = 0; r < br; ++r) {
        // lse = +inf (all keys masked) gives exp(-inf) = 0 for every entry.
        exp_shifted(p.p + r * Bc, bc, lse[ib + r]);
        if (drop) {
          dropout_row(h, ib + r, jb, bc, words.p, keep.p + r * Bc);
          for (int64_t c = 0; c < bc; ++c) pd.p[r * Bc + c] = p.p[r * Bc + c] * keep.p[r * Bc + c];
        }
      }
      const T* pv = drop ? pd.p : p.p;
      const T* go_i = go + ib * go_rs;
      gemm(true, false, bc, Ev, br, T(1), pv, Bc, go_i, go_rs, T(1), gv + jb * gv_rs, gv_rs);
      gemm(false, false, br, bc, Ev, T(1), go_i, go_rs, vt.p + jb, ldt, T(0), dp.p, Bc);
      for (int64_t r = 0; r < br; ++r) {
        T* dr = dp.p + r * Bc;
        const T* pr = p.p + r * Bc;
        const T di = D.p[ib + r];
        if (drop) {
          const T* kr = keep.p + r * Bc;
          for (int64_t c = 0; c < bc; ++c) dr[c] = pr[c] * (dr[c] * kr[c] - di);
        } else {
          for (int64_t c = 0; c < bc; ++c) dr[c] = pr[c] * (dr[c] - di);
        }
        if (gm) {  // d(score) is d(additive mask): tile entries the causal skip never visits are 0
          T* gr = gm + (ib + r) * gm_rs + jb * gm_cs;
          for (int64_t c = 0; c < bc; ++c) gr[c * gm_cs] += dr[c];
        }
      }
      gemm(true, false, bc, E, br, h.scale, dp.p, Bc, h.q + ib * h.q_rs, h.q_rs, T(1), gk + jb * gk_rs, gk_rs);
      gemm(false, false, br, E, bc, h.scale, dp.p, Bc, h.k + jb * h.k_rs, h.k_rs, T(1), gq + ib * gq_rs, gq_rs);
    }
  }
}

template <class T>
void dropout_keep(const AttnHead<T>& h, T* keep, int64_t ld) {
  Scratch<uint32_t> words(Bc + 16);
  for (int64_t i = 0; i < h.L; ++i)
    for (int64_t jb = 0; jb < h.S; jb += Bc) dropout_row(h, i, jb, std::min(Bc, h.S - jb), words.p, keep + i * ld + jb);
}

template <class T>
void transpose_head_keys(const AttnHead<T>& h, T* kt, int64_t ldt) {
  transpose_keys(h.k, h.k_rs, h.S, h.E, kt, ldt);
}

// The forward of each dtype: float32 on this ISA's register blocks where it has them.
template <class T>
constexpr auto forward_kernel() {
#if NC_HAVE_AVX2
  if constexpr (std::is_same_v<T, float>) return &forward_tiled;
  else return &forward<T>;
#else
  return &forward<T>;
#endif
}

template <class T>
constexpr AttentionOps<T> ops() {
  return {forward_kernel<T>(), backward<T>, dropout_keep<T>, transpose_head_keys<T>};
}

}  // namespace

const AttentionKernels attention_table = {ops<float>(), ops<double>()};

}  // namespace nc::kernels::NC_ISA
