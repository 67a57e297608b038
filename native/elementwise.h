// Elementwise arithmetic over n floats. Outputs are overwritten; `out` may alias
// an input. Semantics: src/native.ts.
#pragma once
#include <cstdint>

namespace quartet {

void add(float* out, const float* a, const float* b, int64_t n);
void sub(float* out, const float* a, const float* b, int64_t n);
void mul(float* out, const float* a, const float* b, int64_t n);
void div(float* out, const float* a, const float* b, int64_t n);
// NaN in either input gives NaN (torch.maximum / torch.minimum).
void maximum(float* out, const float* a, const float* b, int64_t n);
void minimum(float* out, const float* a, const float* b, int64_t n);
// out = a * alpha + beta
void affine(float* out, const float* a, float alpha, float beta, int64_t n);
// out = a + alpha * b
void axpy(float* out, const float* a, float alpha, const float* b, int64_t n);
void fill(float* out, float value, int64_t n);
// out = cond != 0 ? a : b
void where(float* out, const float* cond, const float* a, const float* b, int64_t n);
// out = min(max(a, lo), hi), NaN stays NaN; dinp = dout where lo <= a <= hi, else 0.
void clamp(float* out, const float* a, float lo, float hi, int64_t n);
void clamp_backward(float* dinp, const float* a, const float* dout, float lo, float hi, int64_t n);

}  // namespace quartet
