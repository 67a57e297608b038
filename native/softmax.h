// Softmax over the last dimension of [N, C] and its backward.
#pragma once
#include <cstdint>

namespace quartet {

void softmax_forward(float* out, const float* inp, int64_t N, int64_t C);
// dinp = out * (dout - sum(dout * out)) per row.
void softmax_backward(float* dinp, const float* out, const float* dout, int64_t N, int64_t C);

}  // namespace quartet
