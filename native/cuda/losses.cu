// Fused log-softmax + gather (native/losses.h): one block per row of [N, V].
//
// The forward reads the row once: each thread keeps a running (max, sum of exps) over
// its strided elements (online softmax), then the block merges the pairs in a fixed
// tree, so the logsumexp is the same on every run. The backward writes the whole
// gradient row in one pass from the saved lse.
#include <cmath>

#include "common.cuh"

namespace quartet::cuda {

namespace {

constexpr int kThreads = 512;

// (m, s) <- the pair for the union of two sets, s = sum exp(x - m). -inf maxima carry
// no mass (and would give inf - inf = NaN in the rescale).
__device__ __forceinline__ void merge(float& m, float& s, float m2, float s2) {
  if (m2 == -INFINITY) return;
  if (m == -INFINITY) {
    m = m2;
    s = s2;
    return;
  }
  if (m2 > m) {
    s = s * expf(m - m2) + s2;
    m = m2;
  } else {
    s = s + s2 * expf(m2 - m);
  }
}

__global__ void __launch_bounds__(kThreads) k_logprobs_forward(float* out, float* lse, const float* logits,
                                                const int32_t* labels, int64_t V) {
  const int64_t r = blockIdx.x;
  const float* x = logits + r * V;
  float m = -INFINITY, s = 0.0f;
  for (int64_t v = threadIdx.x; v < V; v += kThreads) {
    const float xv = x[v];
    if (xv > m) {
      s = (m == -INFINITY ? 0.0f : s * expf(m - xv)) + 1.0f;
      m = xv;
    } else if (xv != -INFINITY) {
      s += expf(xv - m);  // also takes NaN, which then propagates to the lse
    }
  }
  // Warp tree, then the warps' pairs through shared memory in warp order.
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
    const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
    merge(m, s, m2, s2);
  }
  __shared__ float sm[kThreads / 32], ss[kThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    sm[warp] = m;
    ss[warp] = s;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float M = sm[0], S = ss[0];
    for (int w = 1; w < kThreads / 32; w++) merge(M, S, sm[w], ss[w]);
    // All -inf: log(0) = -inf, as on the CPU.
    const float l = M == -INFINITY ? logf(0.0f) : M + logf(S);
    lse[r] = l;
    const int32_t label = labels[r];
    out[r] = label >= 0 ? x[label] - l : 0.0f;
  }
}

// dlogits[v] = -g exp(x[v] - lse) (+ g at the label), the CPU kernel's order of rounding.
__global__ void __launch_bounds__(kThreads) k_logprobs_backward(float* dlogits, const float* dout, const float* logits,
                                                 const float* lse, const int32_t* labels,
                                                 int64_t V) {
  const int64_t r = blockIdx.x;
  const float* x = logits + r * V;
  float* dx = dlogits + r * V;
  const int32_t label = labels[r];
  if (label < 0) {
    for (int64_t v = threadIdx.x; v < V; v += kThreads) dx[v] = 0.0f;
    return;
  }
  const float g = dout[r], l = lse[r];
  for (int64_t v = threadIdx.x; v < V; v += kThreads) {
    const float d = -g * expf(x[v] - l);
    dx[v] = v == label ? d + g : d;
  }
}

}  // namespace

void logprobs_forward(float* out, float* lse, const float* logits, const int32_t* labels,
                      int64_t N, int64_t V) {
  if (N <= 0) return;
  QREQUIRE(N <= 0x7fffffffLL, "logprobs_forward: too many rows");
  k_logprobs_forward<<<static_cast<unsigned>(N), kThreads, 0, cur_stream()>>>(out, lse, logits, labels, V);
  QLAUNCHED();
}

void logprobs_backward(float* dlogits, const float* dout, const float* logits, const float* lse,
                       const int32_t* labels, int64_t N, int64_t V) {
  if (N <= 0) return;
  QREQUIRE(N <= 0x7fffffffLL, "logprobs_backward: too many rows");
  k_logprobs_backward<<<static_cast<unsigned>(N), kThreads, 0, cur_stream()>>>(dlogits, dout, logits, lse, labels, V);
  QLAUNCHED();
}

}  // namespace quartet::cuda
