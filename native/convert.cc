// float16 / bfloat16 <-> float32 by bit manipulation (portable; checkpoint loading is
// not a hot path). Narrowing rounds to nearest even, like torch's .half() / .bfloat16().
#include "convert.h"

#include <cstring>

#include "parallel.h"

namespace quartet {

namespace {

inline float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline uint32_t to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  if (exp == 0x1f) return from_bits(sign | 0x7f800000 | (mant << 13));  // inf, NaN
  if (exp != 0) return from_bits(sign | ((exp + 112) << 23) | (mant << 13));
  // Zero or subnormal: mant * 2^-24, exact in float.
  const float mag = static_cast<float>(mant) * 0x1p-24f;
  return sign ? -mag : mag;
}

uint16_t float_to_half(float f) {
  const uint32_t u = to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const uint32_t abs = u & 0x7fffffff;
  if (abs >= 0x7f800000) {  // inf or NaN (kept quiet)
    return sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 : 0);
  }
  if (abs >= 0x477ff000) return sign | 0x7c00;  // rounds past 65504: infinity
  if (abs < 0x38800000) {
    // Result is subnormal or zero: adding 0.5 makes the float unit ulp equal 2^-24,
    // the half subnormal step, so the FPU's own round-to-nearest-even does the work.
    const float mag = from_bits(abs) + 0.5f;
    return sign | static_cast<uint16_t>(to_bits(mag) - to_bits(0.5f));
  }
  // Normal: rebias the exponent and round the 13 dropped bits to nearest even.
  const uint32_t odd = (abs >> 13) & 1;
  const uint32_t rounded = abs + 0xfff + odd;
  return sign | static_cast<uint16_t>((rounded - (112u << 23)) >> 13);
}

uint16_t float_to_bfloat(float f) {
  const uint32_t u = to_bits(f);
  if ((u & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  const uint32_t odd = (u >> 16) & 1;
  return static_cast<uint16_t>((u + 0x7fff + odd) >> 16);
}

}  // namespace

void f16_to_f32(float* out, const uint16_t* inp, int64_t n) {
#pragma omp parallel for if (n >= kParallelMin) schedule(static)
  for (int64_t i = 0; i < n; i++) out[i] = half_to_float(inp[i]);
}

void bf16_to_f32(float* out, const uint16_t* inp, int64_t n) {
#pragma omp parallel for simd if (n >= kParallelMin) schedule(static)
  for (int64_t i = 0; i < n; i++) out[i] = from_bits(static_cast<uint32_t>(inp[i]) << 16);
}

void f32_to_f16(uint16_t* out, const float* inp, int64_t n) {
#pragma omp parallel for if (n >= kParallelMin) schedule(static)
  for (int64_t i = 0; i < n; i++) out[i] = float_to_half(inp[i]);
}

void f32_to_bf16(uint16_t* out, const float* inp, int64_t n) {
#pragma omp parallel for if (n >= kParallelMin) schedule(static)
  for (int64_t i = 0; i < n; i++) out[i] = float_to_bfloat(inp[i]);
}

}  // namespace quartet
