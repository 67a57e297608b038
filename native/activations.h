// Unary maps and activations with their backwards, over n floats. Outputs are
// overwritten; `out` may alias the input. Semantics: src/native.ts.
#pragma once
#include <cstdint>

namespace quartet {

void exp(float* out, const float* a, int64_t n);
void log(float* out, const float* a, int64_t n);
void tanh(float* out, const float* a, int64_t n);
void sigmoid(float* out, const float* a, int64_t n);
// log(sigmoid(a)) = min(a, 0) - log1p(exp(-|a|)), stable for large |a|.
void log_sigmoid(float* out, const float* a, int64_t n);
void relu(float* out, const float* a, int64_t n);
void relu_backward(float* dinp, const float* a, const float* dout, int64_t n);
// approximate: GPT-2's tanh form; else the exact erf form.
void gelu(float* out, const float* a, bool approximate, int64_t n);
void gelu_backward(float* dinp, const float* a, const float* dout, bool approximate, int64_t n);
void silu(float* out, const float* a, int64_t n);
void silu_backward(float* dinp, const float* a, const float* dout, int64_t n);
// Inverted dropout with a counter-based generator: element i's draw depends only on
// (seed, i), so the mask is the same for any thread count. p in [0, 1].
void dropout(float* out, float* mask, const float* a, float p, uint64_t seed, int64_t n);

}  // namespace quartet
