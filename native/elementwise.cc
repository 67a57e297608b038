// Elementwise arithmetic: add, sub, mul, div, min/max, affine, axpy, fill, where, clamp.
#include "elementwise.h"

#include "map.h"

namespace quartet {

void add(float* out, const float* a, const float* b, int64_t n) {
  map2(out, a, b, n, [](float x, float y) { return x + y; });
}

void sub(float* out, const float* a, const float* b, int64_t n) {
  map2(out, a, b, n, [](float x, float y) { return x - y; });
}

void mul(float* out, const float* a, const float* b, int64_t n) {
  map2(out, a, b, n, [](float x, float y) { return x * y; });
}

void div(float* out, const float* a, const float* b, int64_t n) {
  map2(out, a, b, n, [](float x, float y) { return x / y; });
}

// x + y is NaN whenever either is NaN: torch's propagation, kept branch-free.
void maximum(float* out, const float* a, const float* b, int64_t n) {
  map2(out, a, b, n, [](float x, float y) {
    float m = x > y ? x : y;
    return (x != x || y != y) ? x + y : m;
  });
}

void minimum(float* out, const float* a, const float* b, int64_t n) {
  map2(out, a, b, n, [](float x, float y) {
    float m = x < y ? x : y;
    return (x != x || y != y) ? x + y : m;
  });
}

void affine(float* out, const float* a, float alpha, float beta, int64_t n) {
  map1(out, a, n, [alpha, beta](float x) { return x * alpha + beta; });
}

void axpy(float* out, const float* a, float alpha, const float* b, int64_t n) {
  map2(out, a, b, n, [alpha](float x, float y) { return x + alpha * y; });
}

void fill(float* out, float value, int64_t n) {
#pragma omp parallel for simd if (n >= kParallelMin) schedule(static)
  for (int64_t i = 0; i < n; i++) out[i] = value;
}

void where(float* out, const float* cond, const float* a, const float* b, int64_t n) {
  map3(out, cond, a, b, n, [](float c, float x, float y) { return c != 0.0f ? x : y; });
}

// Written with comparisons (not fmin/fmax) so that NaN passes through as in torch.clamp.
void clamp(float* out, const float* a, float lo, float hi, int64_t n) {
  map1(out, a, n, [lo, hi](float x) {
    float y = x < lo ? lo : x;
    return y > hi ? hi : y;
  });
}

void clamp_backward(float* dinp, const float* a, const float* dout, float lo, float hi,
                    int64_t n) {
  map2(dinp, a, dout, n,
       [lo, hi](float x, float g) { return (x >= lo && x <= hi) ? g : 0.0f; });
}

}  // namespace quartet
