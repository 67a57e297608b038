// AdamW step, following torch.optim.AdamW's single-tensor CPU path operation by
// operation (decay, lerp of m, v update, bias corrections in double, then addcdiv) so
// that 20 steps agree with torch to float rounding.
#include "optim.h"

#include <cmath>

#include "parallel.h"

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
#pragma omp parallel for simd if (n >= kParallelMin) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float g = grad[i];
    float p = param[i] * decay;
    // torch's lerp with weight < 0.5: m + w (g - m).
    const float mi = m[i] + w1 * (g - m[i]);
    const float vi = v[i] * b2 + w2 * g * g;
    const float denom = std::sqrt(vi) / bc2_sqrt + eps_f;
    p = p - step_size * (mi / denom);
    m[i] = mi;
    v[i] = vi;
    param[i] = p;
  }
}

}  // namespace quartet
