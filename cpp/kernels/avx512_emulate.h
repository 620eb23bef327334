#pragma once
// Test-only layer (CMake -DNC_AVX512_EMULATE=ON): the avx512 kernel build compiled for AVX2, with
// SIMDe (SIMD Everywhere, header-only, MIT) implementing the _mm512_* intrinsics and the AVX-512
// types under their native names, so the very same source lines as the native avx512 build run on
// a CPU without AVX-512 (NEUROCORE_CPU=avx512 is then allowed, see kernels/dispatch.cpp).
// Included only from isa.h. Results match the native build lane for lane except where an
// intrinsic's rounding is implementation-defined (none of those is used: only IEEE add, mul, fma,
// max, conversions, scalef, compares, loads and stores). Where SIMDe lacks an intrinsic or is not
// exact (masked loads and stores, scalef), this file supplies a lane-exact version; CI compiles
// this build even on AVX-512 machines (.ci/avx512_emulated --compile-only).
#include <immintrin.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

// SIMDe (0.7-0.8) emulates masked loads and stores with full 64-byte accesses: a masked store
// writes zeros into the masked-off lanes and a masked load reads past the end of the buffer,
// where native AVX-512 touches only the selected lanes (and takes no fault on the others). The
// kernels rely on that for ragged edges, so these are replaced with lane-exact versions (the
// 128-bit masked load, AVX-512VL, SIMDe 0.8 lacks altogether).
namespace nc_avx512_emulate {
template <class R, class T, class M>
inline R maskz_load(M k, const void* p) {
  T lanes[sizeof(R) / sizeof(T)] = {};
  for (unsigned i = 0; i < sizeof(R) / sizeof(T); ++i)
    if ((k >> i) & 1) std::memcpy(&lanes[i], static_cast<const T*>(p) + i, sizeof(T));
  R r;
  std::memcpy(&r, lanes, sizeof(R));
  return r;
}
template <class R, class T, class M>
inline void mask_store(void* p, M k, R a) {
  T lanes[sizeof(R) / sizeof(T)];
  std::memcpy(lanes, &a, sizeof(R));
  for (unsigned i = 0; i < sizeof(R) / sizeof(T); ++i)
    if ((k >> i) & 1) std::memcpy(static_cast<T*>(p) + i, &lanes[i], sizeof(T));
}
}  // namespace nc_avx512_emulate

#undef _mm_maskz_loadu_ps
#undef _mm512_maskz_loadu_ps
#undef _mm512_maskz_loadu_pd
#undef _mm512_mask_storeu_ps
#undef _mm512_mask_storeu_pd
#define _mm_maskz_loadu_ps(k, p) (nc_avx512_emulate::maskz_load<simde__m128, float>((k), (p)))
#define _mm512_maskz_loadu_ps(k, p) (nc_avx512_emulate::maskz_load<simde__m512, float>((k), (p)))
#define _mm512_maskz_loadu_pd(k, p) (nc_avx512_emulate::maskz_load<simde__m512d, double>((k), (p)))
#define _mm512_mask_storeu_ps(p, k, a) (nc_avx512_emulate::mask_store<simde__m512, float>((p), (k), (a)))
#define _mm512_mask_storeu_pd(p, k, a) (nc_avx512_emulate::mask_store<simde__m512d, double>((p), (k), (a)))

// Float <-> double conversions of 8 lanes, which SIMDe (0.8) lacks, from the two 256-bit halves
// (each lane converted on its own, so the results are the native instruction's).
inline simde__m512d nc_avx512_emulate_cvtps_pd(__m256 a) {
  return _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_cvtps_pd(_mm256_castps256_ps128(a))),
                            _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)), 1);
}
inline __m256 nc_avx512_emulate_cvtpd_ps(simde__m512d a) {
  return _mm256_set_m128(_mm256_cvtpd_ps(_mm512_extractf64x4_pd(a, 1)), _mm256_cvtpd_ps(_mm512_castpd512_pd256(a)));
}
#define _mm512_cvtps_pd(a) nc_avx512_emulate_cvtps_pd(a)
#define _mm512_cvtpd_ps(a) nc_avx512_emulate_cvtpd_ps(a)

// Masked truncating store of 16 int32 lanes as bytes (vpmovdb), which SIMDe (0.8) lacks.
inline void nc_avx512_emulate_mask_cvtepi32_storeu_epi8(void* p, simde__mmask16 k, simde__m512i a) {
  int32_t lanes[16];
  std::memcpy(lanes, &a, sizeof(lanes));
  for (int i = 0; i < 16; ++i)
    if ((k >> i) & 1) static_cast<int8_t*>(p)[i] = static_cast<int8_t>(lanes[i]);
}
#define _mm512_mask_cvtepi32_storeu_epi8(p, k, a) nc_avx512_emulate_mask_cvtepi32_storeu_epi8((p), (k), (a))

// a * 2^floor(b) per lane (vscalefps). SIMDe (0.8) multiplies by exp2(floor(b)), which overflows
// to inf at b = 128 although a * 2^128 is finite for a < 1 (exp near its overflow threshold), and
// flushes subnormals; ldexp rounds once, as the instruction does.
inline float nc_avx512_emulate_scalef1(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return a + b;
  if (std::isinf(b)) {
    if (b > 0) return a == 0 ? std::numeric_limits<float>::quiet_NaN() : a * b;
    return std::isinf(a) ? std::numeric_limits<float>::quiet_NaN() : a * 0.0f;
  }
  return std::ldexp(a, static_cast<int>(std::fmax(-1000.0f, std::fmin(1000.0f, std::floor(b)))));
}
inline simde__m512 nc_avx512_emulate_scalef_ps(simde__m512 a, simde__m512 b) {
  float x[16], e[16];
  std::memcpy(x, &a, sizeof(x));
  std::memcpy(e, &b, sizeof(e));
  for (int i = 0; i < 16; ++i) x[i] = nc_avx512_emulate_scalef1(x[i], e[i]);
  simde__m512 r;
  std::memcpy(&r, x, sizeof(x));
  return r;
}
#undef _mm512_scalef_ps
#define _mm512_scalef_ps(a, b) nc_avx512_emulate_scalef_ps((a), (b))
