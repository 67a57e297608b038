// Elementwise kernels: bf16 conversions, GELU (tanh and erf forms), SiLU with their
// backwards, and the AdamW step. Grid-stride loops over n; each element is independent,
// so `out` may alias an input as on the CPU.
#include <cuda_bf16.h>

#include <cmath>

#include "common.cuh"

namespace quartet::cuda {

namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;
constexpr float kInvSqrt2 = 0.7071067811865476f;

#define GRID_STRIDE(i, n)                                                        \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n);      \
       i += (int64_t)gridDim.x * blockDim.x)

__device__ __forceinline__ float sigmoid1(float x) { return 1.0f / (1.0f + expf(-x)); }

// Phi(x) = 0.5 erfc(-x / sqrt2): erfc keeps full relative precision in the lower tail,
// where 0.5 (1 + erf(x / sqrt2)) cancels (the CPU kernel uses its own tail for this).
__device__ __forceinline__ float normal_cdf(float x) { return 0.5f * erfcf(-x * kInvSqrt2); }

__global__ void k_f32_to_bf16(__nv_bfloat16* out, const float* inp, int64_t n) {
  GRID_STRIDE(i, n) out[i] = __float2bfloat16_rn(inp[i]);  // nearest even; NaN stays NaN
}
__global__ void k_bf16_to_f32(float* out, const __nv_bfloat16* inp, int64_t n) {
  GRID_STRIDE(i, n) out[i] = __bfloat162float(inp[i]);
}

// The tanh form as x * sigmoid(2u), as on the CPU: one exp, no cancellation.
__global__ void k_gelu(float* out, const float* a, bool approximate, int64_t n) {
  GRID_STRIDE(i, n) {
    const float x = a[i];
    if (approximate) {
      const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
      out[i] = x * sigmoid1(2.0f * u);
    } else {
      out[i] = x * normal_cdf(x);
    }
  }
}

__global__ void k_gelu_backward(float* dinp, const float* a, const float* dout, bool approximate,
                                int64_t n) {
  GRID_STRIDE(i, n) {
    const float x = a[i], g = dout[i];
    if (approximate) {
      // d/dx [x s(2u)] = s + x * 2 s (1 - s) du/dx
      const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
      const float s = sigmoid1(2.0f * u);
      const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
      dinp[i] = g * (s + 2.0f * x * s * (1.0f - s) * du);
    } else {
      // d/dx [x Phi(x)] = Phi(x) + x phi(x)
      dinp[i] = g * (normal_cdf(x) + x * kInvSqrt2Pi * expf(-0.5f * x * x));
    }
  }
}

__global__ void k_silu(float* out, const float* a, int64_t n) {
  GRID_STRIDE(i, n) out[i] = a[i] * sigmoid1(a[i]);
}

__global__ void k_silu_backward(float* dinp, const float* a, const float* dout, int64_t n) {
  GRID_STRIDE(i, n) {
    const float x = a[i], s = sigmoid1(x);
    dinp[i] = dout[i] * s * (1.0f + x * (1.0f - s));
  }
}

struct AdamScalars {
  float decay, w1, b2, w2, eps, step_size, bc2_sqrt;
};

// torch.optim.AdamW's single-tensor path, operation by operation as native/optim.cc:
// decay, lerp of m, v update, then addcdiv with bias corrections formed in double.
__global__ void k_adamw(float* param, const float* grad, float* m, float* v, int64_t n,
                        AdamScalars k) {
  GRID_STRIDE(i, n) {
    const float g = grad[i];
    const float mi = m[i] + k.w1 * (g - m[i]);
    const float vi = v[i] * k.b2 + k.w2 * g * g;
    const float denom = sqrtf(vi) / k.bc2_sqrt + k.eps;
    param[i] = param[i] * k.decay - k.step_size * (mi / denom);
    m[i] = mi;
    v[i] = vi;
  }
}

}  // namespace

void f32_to_bf16(uint16_t* out, const float* inp, int64_t n) {
  if (n <= 0) return;
  k_f32_to_bf16<<<grid_for(n, 256), 256, 0, cur_stream()>>>(reinterpret_cast<__nv_bfloat16*>(out), inp, n);
  QLAUNCHED();
}

void bf16_to_f32(float* out, const uint16_t* inp, int64_t n) {
  if (n <= 0) return;
  k_bf16_to_f32<<<grid_for(n, 256), 256, 0, cur_stream()>>>(out, reinterpret_cast<const __nv_bfloat16*>(inp), n);
  QLAUNCHED();
}

void gelu(float* out, const float* a, bool approximate, int64_t n) {
  if (n <= 0) return;
  k_gelu<<<grid_for(n, 256), 256, 0, cur_stream()>>>(out, a, approximate, n);
  QLAUNCHED();
}

void gelu_backward(float* dinp, const float* a, const float* dout, bool approximate, int64_t n) {
  if (n <= 0) return;
  k_gelu_backward<<<grid_for(n, 256), 256, 0, cur_stream()>>>(dinp, a, dout, approximate, n);
  QLAUNCHED();
}

void silu(float* out, const float* a, int64_t n) {
  if (n <= 0) return;
  k_silu<<<grid_for(n, 256), 256, 0, cur_stream()>>>(out, a, n);
  QLAUNCHED();
}

void silu_backward(float* dinp, const float* a, const float* dout, int64_t n) {
  if (n <= 0) return;
  k_silu_backward<<<grid_for(n, 256), 256, 0, cur_stream()>>>(dinp, a, dout, n);
  QLAUNCHED();
}

void adamw(float* param, const float* grad, float* m, float* v, int64_t n, double lr,
           double beta1, double beta2, double eps, double weight_decay, int64_t step) {
  if (n <= 0) return;
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  const AdamScalars k{static_cast<float>(1.0 - lr * weight_decay), static_cast<float>(1.0 - beta1),
                      static_cast<float>(beta2),                   static_cast<float>(1.0 - beta2),
                      static_cast<float>(eps),                     static_cast<float>(lr / bc1),
                      static_cast<float>(std::sqrt(bc2))};
  k_adamw<<<grid_for(n, 256), 256, 0, cur_stream()>>>(param, grad, m, v, n, k);
  QLAUNCHED();
}

}  // namespace quartet::cuda
