// AdamW step, following torch.optim.AdamW's single-tensor CPU path operation by
// operation (decay, lerp of m, v update, bias corrections in double, then addcdiv) so
// that 20 steps agree with torch to float rounding.
#include "optim.h"

#include <cmath>

#include "parallel.h"
#include "vecmath.h"

namespace quartet {

void adamw(float* param, const float* grad, float* m, float* v, int64_t n, double lr,
           double beta1, double beta2, double eps, double weight_decay, int64_t step) {
  // Scalars are formed in double (Python floats in torch) and rounded once to float.
  const float decay = static_cast<float>(1.0 - lr * weight_decay);
  const float w1 = static_cast<float>(1.0 - beta1);
  const float b2 = static_cast<float>(beta2);
  const float w2 = static_cast<float>(1.0 - beta2);
  const float eps_f = static_cast<float>(eps);
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  // Blocks of kBlock elements: update m and v, take the square roots of v with
  // sqrt_inplace (a plain sqrtf loop does not vectorise), then update the parameter.
  constexpr int64_t kBlock = 512;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for if (n >= kParallelMin) schedule(static)
  for (int64_t blk = 0; blk < blocks; blk++) {
    const int64_t i0 = blk * kBlock;
    const int64_t len = i0 + kBlock < n ? kBlock : n - i0;
    float* pb = param + i0;
    const float* gb = grad + i0;
    float* mb = m + i0;
    float* vb = v + i0;
    float root[kBlock];
#pragma omp simd
    for (int64_t j = 0; j < len; j++) {
      const float g = gb[j];
      // torch's lerp with weight < 0.5: m + w (g - m).
      mb[j] = mb[j] + w1 * (g - mb[j]);
      const float vj = vb[j] * b2 + w2 * g * g;
      vb[j] = vj;
      root[j] = vj;
    }
    sqrt_inplace(root, len);
#pragma omp simd
    for (int64_t j = 0; j < len; j++) {
      const float denom = root[j] / bc2_sqrt + eps_f;
      pb[j] = pb[j] * decay - step_size * (mb[j] / denom);
    }
  }
}

}  // namespace quartet
