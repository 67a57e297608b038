// Vectorisable float math for the kernels' hot loops.
//
// exp for float written so that GCC vectorises it inside `omp simd` loops (libm's
// expf is a scalar call and would dominate softmax and log-prob rows of 50k logits).
// Cephes' expf scheme: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-7 polynomial,
// 2^n applied as two exponent-field multiplies so that results from subnormal up to
// overflow round correctly. Relative error about 1 ulp; exp(-inf) = 0, exp(inf) =
// inf, NaN propagates.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

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

// a * b + c in one rounding where the target has FMA (then GCC vectorises it to vfmadd);
// two roundings on targets without, where a library fma would be slow.
#pragma omp declare simd notinbranch
static inline float fmadd(float a, float b, float c) {
#ifdef FP_FAST_FMAF
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

#pragma omp declare simd notinbranch
static inline float exp_fast(float x) {
  // Past these bounds the result is 0 or inf anyway; clamping keeps n in range.
  // Comparisons with NaN are false, so NaN flows through to the result.
  float xc = x > 89.0f ? 89.0f : x;
  xc = xc < -104.0f ? -104.0f : xc;
  // Round xc*log2(e) to the nearest integer with the 1.5*2^23 trick. The fmas are
  // explicit so that the rounding does not depend on the compiler's contraction choices.
  const float shifter = 12582912.0f;
  float t = fmadd(xc, 1.44269504088896341f, shifter);
  int32_t n = float_to_bits(t) - float_to_bits(shifter);
  float nf = t - shifter;
  float r = fmadd(nf, -0.693359375f, xc);  // ln2 split in two for an exact product
  r = fmadd(nf, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = fmadd(p, r, 1.3981999507e-3f);
  p = fmadd(p, r, 8.3334519073e-3f);
  p = fmadd(p, r, 4.1665795894e-2f);
  p = fmadd(p, r, 1.6666665459e-1f);
  p = fmadd(p, r, 5.0000001201e-1f);
  p = fmadd(p, r * r, r) + 1.0f;
  int32_t n1 = n >> 1;
  int32_t n2 = n - n1;
  return p * bits_to_float((n1 + 127) << 23) * bits_to_float((n2 + 127) << 23);
}

// exp(-x^2 / 2). x^2 is split exactly into h + l with an fma, so the rounding of x*x
// (which grows with x^2 once inside the exp) costs nothing: exp(-h/2) (1 - l/2).
// (Without FMA hardware l is 0 and the correction is lost, nothing worse.)
#pragma omp declare simd notinbranch
static inline float gauss(float x) {
  const float h = x * x;
  const float l = fmadd(x, x, -h);
  return exp_fast(-0.5f * h) * (1.0f - 0.5f * l);
}

// The standard normal upper tail Phi(-|x|) = erfc(|x| / sqrt2) / 2, given g = gauss(x).
// erfc(z) = exp(-z^2) t Q(t) with t = 1 / (1 + z/2), Q a degree-10 minimax fit (relative
// error) of erfcx(z) / t over all z >= 0 (Lawson-weighted least squares on Chebyshev
// nodes of t, in float64). Relative error about 1.5e-7 in float, in the far tail too, where
// 1 - Phi(|x|) would cancel.
#pragma omp declare simd notinbranch
static inline float normal_tail(float x, float g) {
  const float z = (x < 0.0f ? -x : x) * 0.70710678118654752f;
  const float t = 1.0f / (1.0f + 0.5f * z);
  float q = 0.0424655378f;
  q = fmadd(q, t, -0.231397837f);
  q = fmadd(q, t, 0.487270921f);
  q = fmadd(q, t, -0.448190838f);
  q = fmadd(q, t, 0.127895623f);
  q = fmadd(q, t, -0.0575583465f);
  q = fmadd(q, t, 0.0930782631f);
  q = fmadd(q, t, 0.175366923f);
  q = fmadd(q, t, 0.246881098f);
  q = fmadd(q, t, 0.282093853f);
  q = fmadd(q, t, 0.282094806f);
  return 0.5f * g * t * q;
}

// x[i] = sqrt(x[i]) for n floats. sqrtf's errno branch (for negative input) keeps GCC
// from vectorising a plain loop unless -fno-math-errno, so the vector instruction is
// used directly where the target has one. Correctly rounded either way.
static inline void sqrt_inplace(float* x, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_sqrt_ps(_mm512_loadu_ps(x + i)));
#elif defined(__AVX__)
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_sqrt_ps(_mm256_loadu_ps(x + i)));
#endif
  for (; i < n; i++) x[i] = std::sqrt(x[i]);
}

// sum_i exp(x[i] - shift) over a row, also storing each term in e[i] when e is not null.
// Sixteen fixed accumulators (one AVX-512 vector, two AVX2 vectors, or sixteen scalars)
// make the result the same for every vector width and keep each float sum to n/16 terms;
// they are added in double at the end.
static inline float sum_exp_row(const float* x, float* e, float shift, int64_t n) {
  constexpr int kLanes = 16;
  float acc[kLanes] = {};
  int64_t i = 0;
  if (e) {
    for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
      for (int l = 0; l < kLanes; l++) {
        const float v = exp_fast(x[i + l] - shift);
        e[i + l] = v;
        acc[l] += v;
      }
    }
  } else {
    for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
      for (int l = 0; l < kLanes; l++) acc[l] += exp_fast(x[i + l] - shift);
    }
  }
  double total = 0.0;
  for (; i < n; i++) {
    const float v = exp_fast(x[i] - shift);
    if (e) e[i] = v;
    total += v;
  }
  for (int l = 0; l < kLanes; l++) total += acc[l];
  return static_cast<float>(total);
}

}  // namespace quartet
