// Softmax over rows of [N, C] and its backward.
#include "softmax.h"

#include <cmath>

#include "parallel.h"
#include "vecmath.h"

namespace quartet {

void softmax_forward(float* out, const float* inp, int64_t N, int64_t C) {
#pragma omp parallel for if (N * C >= kParallelRowsMin) schedule(static)
  for (int64_t r = 0; r < N; r++) {
    const float* x = inp + r * C;
    float* o = out + r * C;
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t c = 0; c < C; c++) mx = x[c] > mx ? x[c] : mx;
    // A row of -inf (fully masked) would give NaN from -inf - -inf; it gives 0 instead.
    const float shift = mx == -INFINITY ? 0.0f : mx;
    const float s = sum_exp_row(x, o, shift, C);
    const float inv = s > 0.0f ? 1.0f / s : 0.0f;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) o[c] *= inv;
  }
}

void softmax_backward(float* dinp, const float* out, const float* dout, int64_t N, int64_t C) {
#pragma omp parallel for if (N * C >= kParallelRowsMin) schedule(static)
  for (int64_t r = 0; r < N; r++) {
    const float* y = out + r * C;
    const float* g = dout + r * C;
    float* dx = dinp + r * C;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < C; c++) dot += g[c] * y[c];
#pragma omp simd
    for (int64_t c = 0; c < C; c++) dx[c] = y[c] * (g[c] - dot);
  }
}

}  // namespace quartet
