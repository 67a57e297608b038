// Fused log-softmax + gather. The forward reads each row twice (max, then sum of
// exps; the second read hits cache) and writes one float per row; the backward
// writes dlogits in one pass from the saved lse.
#include "losses.h"

#include <cmath>

#include "parallel.h"
#include "vecmath.h"

namespace quartet {

void logprobs_forward(float* out, float* lse, const float* logits, const int32_t* labels,
                      int64_t N, int64_t V) {
#pragma omp parallel for if (N * V >= kParallelRowsMin) schedule(static)
  for (int64_t r = 0; r < N; r++) {
    const float* x = logits + r * V;
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t v = 0; v < V; v++) mx = x[v] > mx ? x[v] : mx;
    const float shift = mx == -INFINITY ? 0.0f : mx;
    const float l = shift + std::log(sum_exp_row(x, nullptr, shift, V));
    lse[r] = l;
    out[r] = labels[r] >= 0 ? x[labels[r]] - l : 0.0f;
  }
}

void logprobs_backward(float* dlogits, const float* dout, const float* logits, const float* lse,
                       const int32_t* labels, int64_t N, int64_t V) {
#pragma omp parallel for if (N * V >= kParallelRowsMin) schedule(static)
  for (int64_t r = 0; r < N; r++) {
    const float* x = logits + r * V;
    float* dx = dlogits + r * V;
    const int32_t label = labels[r];
    if (label < 0) {
#pragma omp simd
      for (int64_t v = 0; v < V; v++) dx[v] = 0.0f;
      continue;
    }
    const float g = dout[r], l = lse[r];
#pragma omp simd
    for (int64_t v = 0; v < V; v++) dx[v] = -g * exp_fast(x[v] - l);
    dx[label] += g;
  }
}

}  // namespace quartet
