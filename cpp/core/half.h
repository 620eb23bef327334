#pragma once
// 16-bit floating-point storage types: IEEE half (float16) and bfloat16. Values convert to and
// from float with round-to-nearest-even (NaN stays NaN, overflow goes to inf), as PyTorch's do.
// There is no arithmetic on them: ops read them as float32 and round their results back.
#include <cstdint>
#include <cstring>

namespace nc {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t float_to_half_bits(float f) {
  const uint32_t u = float_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf (>= 65520)
  if (abs < 0x38800000u) {  // below the smallest normal half (2^-14): a subnormal or zero
    // Adding 0.5 makes the FPU round the mantissa bits at half's subnormal spacing (2^-24), to nearest even.
    const float r = bits_float(abs) + 0.5f;
    return static_cast<uint16_t>(sign | (float_bits(r) - 0x3f000000u));
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits to nearest even.
  const uint32_t odd = (abs >> 13) & 1u;
  return static_cast<uint16_t>(sign | ((abs + 0xc8000fffu + odd) >> 13));
}

inline float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    const float v = static_cast<float>(mant) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
}

inline uint16_t float_to_bfloat16_bits(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float bfloat16_bits_to_float(uint16_t b) { return bits_float(static_cast<uint32_t>(b) << 16); }

// The storage types. Built from any arithmetic value through float; read back as float.
struct Half {
  uint16_t bits = 0;
  Half() = default;
  template <class T>
  explicit Half(T v) : bits(float_to_half_bits(static_cast<float>(v))) {}
  operator float() const { return half_bits_to_float(bits); }
};

struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  template <class T>
  explicit BFloat16(T v) : bits(float_to_bfloat16_bits(static_cast<float>(v))) {}
  operator float() const { return bfloat16_bits_to_float(bits); }
};

}  // namespace nc
