// AdamW step, following torch.optim.AdamW's single-tensor CPU path operation by
// operation (decay, lerp of m, v update, bias corrections in double, then addcdiv) so
// that 20 steps agree with torch to float rounding.
//
// The update is memory-bound (4 streams in, 3 out), so it should be one pass. A plain
// loop with sqrtf does not vectorise (sqrtf's errno branch), so AVX-512 builds run the
// pass with intrinsics; other targets update blocks in two vectorised loops around
// sqrt_inplace (about 15% slower here).
#include "optim.h"

#include <cmath>

#include "parallel.h"
#include "vecmath.h"

namespace quartet {

namespace {

struct AdamScalars {
  float decay, w1, b2, w2, eps, step_size, bc2_sqrt;
};

// Scalars are formed in double (Python floats in torch) and rounded once to float.
AdamScalars adam_scalars(double lr, double beta1, double beta2, double eps, double weight_decay,
                         int64_t step) {
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  return {static_cast<float>(1.0 - lr * weight_decay), static_cast<float>(1.0 - beta1),
          static_cast<float>(beta2),                   static_cast<float>(1.0 - beta2),
          static_cast<float>(eps),                     static_cast<float>(lr / bc1),
          static_cast<float>(std::sqrt(bc2))};
}

// Elements [i0, i1): blocks of two vectorised loops around sqrt_inplace.
void adamw_range_blocks(float* param, const float* grad, float* m, float* v, int64_t i0,
                        int64_t i1, const AdamScalars& k) {
  constexpr int64_t kBlock = 512;
  float root[kBlock];
  for (int64_t b = i0; b < i1; b += kBlock) {
    const int64_t len = b + kBlock < i1 ? kBlock : i1 - b;
    float* pb = param + b;
    const float* gb = grad + b;
    float* mb = m + b;
    float* vb = v + b;
#pragma omp simd
    for (int64_t j = 0; j < len; j++) {
      const float g = gb[j];
      // torch's lerp with weight < 0.5: m + w (g - m).
      mb[j] = mb[j] + k.w1 * (g - mb[j]);
      const float vj = vb[j] * k.b2 + k.w2 * g * g;
      vb[j] = vj;
      root[j] = vj;
    }
    sqrt_inplace(root, len);
#pragma omp simd
    for (int64_t j = 0; j < len; j++) {
      const float denom = root[j] / k.bc2_sqrt + k.eps;
      pb[j] = pb[j] * k.decay - k.step_size * (mb[j] / denom);
    }
  }
}

#if defined(__AVX512F__)
// The same arithmetic in one pass, 16 lanes at a time; the tail goes to the block loop.
void adamw_range(float* param, const float* grad, float* m, float* v, int64_t i0, int64_t i1,
                 const AdamScalars& k) {
  const __m512 decay = _mm512_set1_ps(k.decay), w1 = _mm512_set1_ps(k.w1);
  const __m512 b2 = _mm512_set1_ps(k.b2), w2 = _mm512_set1_ps(k.w2);
  const __m512 eps = _mm512_set1_ps(k.eps), step_size = _mm512_set1_ps(k.step_size);
  const __m512 bc2_sqrt = _mm512_set1_ps(k.bc2_sqrt);
  int64_t i = i0;
  for (; i + 16 <= i1; i += 16) {
    const __m512 g = _mm512_loadu_ps(grad + i);
    __m512 mi = _mm512_loadu_ps(m + i);
    mi = _mm512_fmadd_ps(w1, _mm512_sub_ps(g, mi), mi);
    const __m512 vi = _mm512_fmadd_ps(_mm512_loadu_ps(v + i), b2, _mm512_mul_ps(_mm512_mul_ps(w2, g), g));
    const __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2_sqrt), eps);
    const __m512 p = _mm512_mul_ps(_mm512_loadu_ps(param + i), decay);
    _mm512_storeu_ps(param + i, _mm512_fnmadd_ps(step_size, _mm512_div_ps(mi, denom), p));
    _mm512_storeu_ps(m + i, mi);
    _mm512_storeu_ps(v + i, vi);
  }
  adamw_range_blocks(param, grad, m, v, i, i1, k);
}
#else
void adamw_range(float* param, const float* grad, float* m, float* v, int64_t i0, int64_t i1,
                 const AdamScalars& k) {
  adamw_range_blocks(param, grad, m, v, i0, i1, k);
}
#endif

}  // namespace

void adamw(float* param, const float* grad, float* m, float* v, int64_t n, double lr,
           double beta1, double beta2, double eps, double weight_decay, int64_t step) {
  const AdamScalars k = adam_scalars(lr, beta1, beta2, eps, weight_decay, step);
  // Chunks of a fixed size (a multiple of 16) so that every element takes the same
  // path, and so the same rounding, whatever the thread count.
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for if (n >= kParallelMin) schedule(static)
  for (int64_t c = 0; c < chunks; c++) {
    const int64_t i0 = c * kChunk;
    adamw_range(param, grad, m, v, i0, i0 + kChunk < n ? i0 + kChunk : n, k);
  }
}

}  // namespace quartet
