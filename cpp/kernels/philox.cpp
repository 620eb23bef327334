#include "kernels/isa.h"
#include "kernels/philox.h"

namespace nc::kernels::NC_ISA {
namespace {

constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;

inline void philox_one(uint64_t key, uint64_t counter, uint32_t* out) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * c0, p1 = static_cast<uint64_t>(kMul1) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0, n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c0 = n0;
    c1 = static_cast<uint32_t>(p1);
    c2 = n2;
    c3 = static_cast<uint32_t>(p0);
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

#if NC_HAVE_AVX2
// 32x32 -> 64-bit products of 8 lanes, split into low and high 32-bit halves.
inline void mulhilo8(__m256i a, __m256i m, __m256i* lo, __m256i* hi) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// The low and high words of the 8 counters c, c+1, ..., c+7.
inline void counter_words8(uint64_t c, __m256i* lo, __m256i* hi) {
  if (static_cast<uint32_t>(c) <= 0xFFFFFFFFu - 7) {  // no carry into the high word
    *lo = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(c))),
                           _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    *hi = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(c >> 32)));
    return;
  }
  alignas(32) uint32_t lo_words[8], hi_words[8];
  for (int l = 0; l < 8; ++l) {
    lo_words[l] = static_cast<uint32_t>(c + l);
    hi_words[l] = static_cast<uint32_t>((c + l) >> 32);
  }
  *lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo_words));
  *hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi_words));
}

// Philox rounds on G independent groups of 8 counters at once: one group is a chain of
// dependent multiplies, so interleaving groups keeps the multiplier busy.
template <int G>
inline void philox_groups(uint64_t key, uint64_t counter0, uint32_t* out) {
  __m256i c0[G], c1[G], c2[G], c3[G];
  for (int g = 0; g < G; ++g) {
    counter_words8(counter0 + 8 * static_cast<uint64_t>(g), &c0[g], &c1[g]);
    c2[g] = c3[g] = _mm256_setzero_si256();
  }
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kMul0)), m1 = _mm256_set1_epi32(static_cast<int>(kMul1));
  for (int r = 0; r < 10; ++r) {
    const __m256i vk0 = _mm256_set1_epi32(static_cast<int>(k0)), vk1 = _mm256_set1_epi32(static_cast<int>(k1));
    for (int g = 0; g < G; ++g) {
      __m256i lo0, hi0, lo1, hi1;
      mulhilo8(c0[g], m0, &lo0, &hi0);
      mulhilo8(c2[g], m1, &lo1, &hi1);
      c0[g] = _mm256_xor_si256(_mm256_xor_si256(hi1, c1[g]), vk0);
      c2[g] = _mm256_xor_si256(_mm256_xor_si256(hi0, c3[g]), vk1);
      c1[g] = lo1;
      c3[g] = lo0;
    }
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  // Transpose each group's 4 x 8 words into 8 counters of 4 consecutive words.
  for (int g = 0; g < G; ++g) {
    const __m256i t0 = _mm256_unpacklo_epi32(c0[g], c1[g]), t1 = _mm256_unpackhi_epi32(c0[g], c1[g]);
    const __m256i t2 = _mm256_unpacklo_epi32(c2[g], c3[g]), t3 = _mm256_unpackhi_epi32(c2[g], c3[g]);
    const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);  // counters 0, 1 (4, 5)
    const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);  // counters 2, 3 (6, 7)
    __m256i* o = reinterpret_cast<__m256i*>(out + 32 * g);
    _mm256_storeu_si256(o + 0, _mm256_permute2x128_si256(u0, u1, 0x20));
    _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(u2, u3, 0x20));
    _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(u0, u1, 0x31));
    _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(u2, u3, 0x31));
  }
}
#endif

void philox4x32(uint64_t key, uint64_t counter0, int64_t n, uint32_t* out) {
  int64_t i = 0;
#if NC_HAVE_AVX2
  for (; i + 32 <= n; i += 32) philox_groups<4>(key, counter0 + static_cast<uint64_t>(i), out + 4 * i);
  for (; i + 8 <= n; i += 8) philox_groups<1>(key, counter0 + static_cast<uint64_t>(i), out + 4 * i);
#endif
  for (; i < n; ++i) philox_one(key, counter0 + static_cast<uint64_t>(i), out + 4 * i);
}

}  // namespace

const PhiloxKernels philox_table = {philox4x32};

}  // namespace nc::kernels::NC_ISA
