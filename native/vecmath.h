// exp for float written so that GCC vectorises it inside `omp simd` loops (libm's
// expf is a scalar call and would dominate softmax and log-prob rows of 50k logits).
// Cephes' expf scheme: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-7 polynomial,
// 2^n applied as two exponent-field multiplies so that results from subnormal up to
// overflow round correctly. Relative error about 1 ulp; exp(-inf) = 0, exp(inf) =
// inf, NaN propagates.
#pragma once
#include <cstdint>
#include <cstring>

namespace quartet {

static inline float bits_to_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

static inline int32_t float_to_bits(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}

#pragma omp declare simd notinbranch
static inline float exp_fast(float x) {
  // Past these bounds the result is 0 or inf anyway; clamping keeps n in range.
  // Comparisons with NaN are false, so NaN flows through to the result.
  float xc = x > 89.0f ? 89.0f : x;
  xc = xc < -104.0f ? -104.0f : xc;
  // Round xc*log2(e) to the nearest integer with the 1.5*2^23 trick.
  const float shifter = 12582912.0f;
  float t = xc * 1.44269504088896341f + shifter;
  int32_t n = float_to_bits(t) - float_to_bits(shifter);
  float nf = t - shifter;
  float r = xc - nf * 0.693359375f;  // ln2 split in two for an exact product
  r = r + nf * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t n1 = n >> 1;
  int32_t n2 = n - n1;
  return p * bits_to_float((n1 + 127) << 23) * bits_to_float((n2 + 127) << 23);
}

}  // namespace quartet
