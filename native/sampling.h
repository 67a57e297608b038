// Sampling one token per row from logits, the hot path of PPO rollouts (one
// row per sequence per generated token): softmax with temperature and an
// inverse-CDF draw, without the [B, V] probabilities ever reaching JavaScript.
#pragma once
#include <cstdint>

namespace quartet {

// out[b] = the first v whose cumulative weight exp((logits[b, v] - max) / temperature)
// exceeds uniforms[b] * (the row's total weight), summed in double in index order;
// -inf logits have weight 0 and are never chosen. A row whose logits are all -inf
// gives 0. uniforms in [0, 1); temperature > 0.
void sample_rows(int32_t* out, const float* logits, const double* uniforms, int64_t B, int64_t V,
                 float temperature);

}  // namespace quartet
