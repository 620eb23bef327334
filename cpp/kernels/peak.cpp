#include "kernels/isa.h"
#include "kernels/peak.h"

namespace nc::kernels::NC_ISA {
namespace {

double fma_chains(int64_t iterations, float* sink) {
#if NC_HAVE_AVX512
  // The peak of the ISA in use: 512-bit FMAs. 12 independent chains cover the FMA latency
  // (4 cycles) x 2 pipes (Intel; Zen 4 issues one zmm FMA per cycle as two 256-bit halves).
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(0.001f * i);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  float out[16];
  _mm512_storeu_ps(out, s);
  *sink = out[0];
  return 2.0 * 16 * 12 * static_cast<double>(iterations);
#elif NC_HAVE_AVX2
  // 12 independent accumulators cover the FMA latency (4 cycles) x 2 pipes with room to spare.
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(0.001f * i);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  *sink = out[0];
  return 2.0 * 8 * 12 * static_cast<double>(iterations);
#else
  float acc[32];
  for (int i = 0; i < 32; ++i) acc[i] = 0.001f * i;
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 32; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
  float s = 0;
  for (int i = 0; i < 32; ++i) s += acc[i];
  *sink = s;
  return 2.0 * 32 * static_cast<double>(iterations);
#endif
}

}  // namespace

const PeakKernels peak_table = {fma_chains};

}  // namespace nc::kernels::NC_ISA
