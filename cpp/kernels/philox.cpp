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
#endif

void philox4x32(uint64_t key, uint64_t counter0, int64_t n, uint32_t* out) {
  int64_t i = 0;
#if NC_HAVE_AVX2
  alignas(32) uint32_t w[4][8];
  for (; i + 8 <= n; i += 8) {
    alignas(32) uint32_t lo_words[8], hi_words[8];
    for (int l = 0; l < 8; ++l) {
      const uint64_t c = counter0 + static_cast<uint64_t>(i + l);
      lo_words[l] = static_cast<uint32_t>(c);
      hi_words[l] = static_cast<uint32_t>(c >> 32);
    }
    __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo_words));
    __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi_words));
    __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
    uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
    const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kMul0)), m1 = _mm256_set1_epi32(static_cast<int>(kMul1));
    for (int r = 0; r < 10; ++r) {
      __m256i lo0, hi0, lo1, hi1;
      mulhilo8(c0, m0, &lo0, &hi0);
      mulhilo8(c2, m1, &lo1, &hi1);
      const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(static_cast<int>(k0)));
      const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(static_cast<int>(k1)));
      c0 = n0;
      c1 = lo1;
      c2 = n2;
      c3 = lo0;
      k0 += kWeyl0;
      k1 += kWeyl1;
    }
    _mm256_store_si256(reinterpret_cast<__m256i*>(w[0]), c0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(w[1]), c1);
    _mm256_store_si256(reinterpret_cast<__m256i*>(w[2]), c2);
    _mm256_store_si256(reinterpret_cast<__m256i*>(w[3]), c3);
    for (int l = 0; l < 8; ++l)
      for (int j = 0; j < 4; ++j) out[4 * (i + l) + j] = w[j][l];
  }
#endif
  for (; i < n; ++i) philox_one(key, counter0 + static_cast<uint64_t>(i), out + 4 * i);
}

}  // namespace

const PhiloxKernels philox_table = {philox4x32};

}  // namespace nc::kernels::NC_ISA
