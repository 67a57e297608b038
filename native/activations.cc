// Unary maps and activations: exp, log, tanh, sigmoid, logSigmoid, ReLU, GELU (tanh
// and erf forms), SiLU, dropout. exp-based maps use exp_fast so the loops vectorise.
#include "activations.h"

#include <cmath>

#include "map.h"
#include "vecmath.h"

namespace quartet {

namespace {

#pragma omp declare simd notinbranch
inline float sigmoid1(float x) { return 1.0f / (1.0f + exp_fast(-x)); }

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

}  // namespace

void exp(float* out, const float* a, int64_t n) {
  map1(out, a, n, [](float x) { return exp_fast(x); });
}

void log(float* out, const float* a, int64_t n) {
  map1(out, a, n, [](float x) { return std::log(x); });
}

// tanh(x) = 2 sigmoid(2x) - 1 loses relative precision near 0, so libm's tanhf is kept.
void tanh(float* out, const float* a, int64_t n) {
  map1(out, a, n, [](float x) { return std::tanh(x); });
}

void sigmoid(float* out, const float* a, int64_t n) {
  map1(out, a, n, [](float x) { return sigmoid1(x); });
}

void log_sigmoid(float* out, const float* a, int64_t n) {
  map1(out, a, n, [](float x) {
    float lo = x < 0.0f ? x : 0.0f;
    return lo - std::log1p(exp_fast(-std::fabs(x)));
  });
}

void relu(float* out, const float* a, int64_t n) {
  map1(out, a, n, [](float x) { return x > 0.0f ? x : (x != x ? x : 0.0f); });
}

void relu_backward(float* dinp, const float* a, const float* dout, int64_t n) {
  map2(dinp, a, dout, n, [](float x, float g) { return x > 0.0f ? g : 0.0f; });
}

// The tanh form uses 0.5 (1 + tanh(u)) = sigmoid(2u): one exp, no cancellation.
void gelu(float* out, const float* a, bool approximate, int64_t n) {
  if (approximate) {
    map1(out, a, n, [](float x) {
      float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
      return x * sigmoid1(2.0f * u);
    });
  } else {
    // Phi(x) from the upper tail keeps full precision for negative x, where
    // 0.5 (1 + erf(x / sqrt2)) would cancel.
    map1(out, a, n, [](float x) {
      const float tail = normal_tail(x, gauss(x));
      return x * (x >= 0.0f ? 1.0f - tail : tail);
    });
  }
}

void gelu_backward(float* dinp, const float* a, const float* dout, bool approximate, int64_t n) {
  if (approximate) {
    // d/dx [x s(2u)] = s + x * 2 s (1 - s) * du/dx, with s = sigmoid(2u).
    map2(dinp, a, dout, n, [](float x, float g) {
      float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
      float s = sigmoid1(2.0f * u);
      float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
      return g * (s + 2.0f * x * s * (1.0f - s) * du);
    });
  } else {
    map2(dinp, a, dout, n, [](float x, float g) {
      const float e = gauss(x);
      const float tail = normal_tail(x, e);
      const float cdf = x >= 0.0f ? 1.0f - tail : tail;
      return g * (cdf + x * kInvSqrt2Pi * e);
    });
  }
}

void silu(float* out, const float* a, int64_t n) {
  map1(out, a, n, [](float x) { return x * sigmoid1(x); });
}

void silu_backward(float* dinp, const float* a, const float* dout, int64_t n) {
  map2(dinp, a, dout, n, [](float x, float g) {
    float s = sigmoid1(x);
    return g * s * (1.0f + x * (1.0f - s));
  });
}

namespace {

// splitmix64's finaliser: a good 64-bit mix of (seed, index), cheap enough per element.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

void dropout(float* out, float* mask, const float* a, float p, uint64_t seed, int64_t n) {
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  const uint64_t key = mix64(seed + 0x9e3779b97f4a7c15ULL);
#pragma omp parallel for simd if (n >= kParallelMin) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    // Top 24 bits give a uniform float in [0, 1) exactly.
    float u = static_cast<float>(mix64(key + static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ULL) >> 40) * 0x1p-24f;
    float k = u >= p ? scale : 0.0f;
    mask[i] = k;
    out[i] = a[i] * k;
  }
}

}  // namespace quartet
