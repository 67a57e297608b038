// Fused log-softmax + gather: per-token log-probs of given labels, with the
// row's logsumexp saved for the backward; the [N, V] log-softmax is never stored.
#pragma once
#include <cstdint>

namespace quartet {

// out[n] = logits[n, labels[n]] - lse[n]; a negative label gives out[n] = 0 (lse still
// written). Labels must already be checked < V.
void logprobs_forward(float* out, float* lse, const float* logits, const int32_t* labels,
                      int64_t N, int64_t V);
// dlogits[n, v] = dout[n] * (onehot(labels[n])[v] - exp(logits[n, v] - lse[n])); zero rows
// for negative labels.
void logprobs_backward(float* dlogits, const float* dout, const float* logits, const float* lse,
                       const int32_t* labels, int64_t N, int64_t V);

}  // namespace quartet
