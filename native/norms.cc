// LayerNorm and RMSNorm forward/backward over rows of [N, C] (llm.c's formulation).
// Backwards write dinp row by row and sum dweight/dbias per block of kNormBlockRows
// rows into a small scratch, then add the blocks in order: one pass over the
// activations, and a result independent of the thread count.
#include "norms.h"

#include <cmath>
#include <vector>

#include "parallel.h"

namespace quartet {

namespace {
constexpr int64_t kNormBlockRows = 32;

inline int64_t blocks_of(int64_t N) { return (N + kNormBlockRows - 1) / kNormBlockRows; }

// out[c] = sum over blocks of partial[blk, c], in block order.
void add_blocks(float* out, const float* partial, int64_t blocks, int64_t C) {
  for (int64_t c = 0; c < C; c++) out[c] = 0.0f;
  for (int64_t blk = 0; blk < blocks; blk++) {
    const float* p = partial + blk * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) out[c] += p[c];
  }
}
}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                       const float* weight, const float* bias, int64_t N, int64_t C, float eps) {
#pragma omp parallel for if (N * C >= kParallelRowsMin) schedule(static)
  for (int64_t r = 0; r < N; r++) {
    const float* x = inp + r * C;
    float* o = out + r * C;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; c++) s += x[c];
    const float m = s / C;
    float v = 0.0f;
#pragma omp simd reduction(+ : v)
    for (int64_t c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
    const float rs = 1.0f / std::sqrt(v / C + eps);
    if (bias) {
#pragma omp simd
      for (int64_t c = 0; c < C; c++) o[c] = (x[c] - m) * rs * weight[c] + bias[c];
    } else {
#pragma omp simd
      for (int64_t c = 0; c < C; c++) o[c] = (x[c] - m) * rs * weight[c];
    }
    mean[r] = m;
    rstd[r] = rs;
  }
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean,
                        const float* rstd, int64_t N, int64_t C) {
  const int64_t blocks = blocks_of(N);
  std::vector<float> dw_part(blocks * C, 0.0f), db_part(blocks * C, 0.0f);
#pragma omp parallel for if (N * C >= kParallelRowsMin) schedule(static)
  for (int64_t blk = 0; blk < blocks; blk++) {
    float* dw = dw_part.data() + blk * C;
    float* db = db_part.data() + blk * C;
    const int64_t r1 = (blk + 1) * kNormBlockRows < N ? (blk + 1) * kNormBlockRows : N;
    for (int64_t r = blk * kNormBlockRows; r < r1; r++) {
      const float* x = inp + r * C;
      const float* g = dout + r * C;
      float* dx = dinp + r * C;
      const float m = mean[r], rs = rstd[r];
      // dnorm = g * w; dx = rs * (dnorm - mean(dnorm) - xhat * mean(dnorm * xhat)).
      float sum_dn = 0.0f, sum_dn_xhat = 0.0f;
#pragma omp simd reduction(+ : sum_dn, sum_dn_xhat)
      for (int64_t c = 0; c < C; c++) {
        const float xhat = (x[c] - m) * rs;
        const float dn = g[c] * weight[c];
        sum_dn += dn;
        sum_dn_xhat += dn * xhat;
        dw[c] += g[c] * xhat;
        db[c] += g[c];
      }
      const float mean_dn = sum_dn / C, mean_dn_xhat = sum_dn_xhat / C;
#pragma omp simd
      for (int64_t c = 0; c < C; c++) {
        const float xhat = (x[c] - m) * rs;
        dx[c] = (g[c] * weight[c] - mean_dn - xhat * mean_dn_xhat) * rs;
      }
    }
  }
  add_blocks(dweight, dw_part.data(), blocks, C);
  if (dbias) add_blocks(dbias, db_part.data(), blocks, C);
}

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight,
                     int64_t N, int64_t C, float eps) {
#pragma omp parallel for if (N * C >= kParallelRowsMin) schedule(static)
  for (int64_t r = 0; r < N; r++) {
    const float* x = inp + r * C;
    float* o = out + r * C;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; c++) ss += x[c] * x[c];
    const float rs = 1.0f / std::sqrt(ss / C + eps);
#pragma omp simd
    for (int64_t c = 0; c < C; c++) o[c] = weight[c] * (x[c] * rs);
    rstd[r] = rs;
  }
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                      const float* weight, const float* rstd, int64_t N, int64_t C) {
  const int64_t blocks = blocks_of(N);
  std::vector<float> dw_part(blocks * C, 0.0f);
#pragma omp parallel for if (N * C >= kParallelRowsMin) schedule(static)
  for (int64_t blk = 0; blk < blocks; blk++) {
    float* dw = dw_part.data() + blk * C;
    const int64_t r1 = (blk + 1) * kNormBlockRows < N ? (blk + 1) * kNormBlockRows : N;
    for (int64_t r = blk * kNormBlockRows; r < r1; r++) {
      const float* x = inp + r * C;
      const float* g = dout + r * C;
      float* dx = dinp + r * C;
      const float rs = rstd[r];
      // dx = rs * (g w - x rs^2 mean(g w x)).
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < C; c++) {
        dot += g[c] * weight[c] * x[c];
        dw[c] += g[c] * x[c] * rs;
      }
      const float k = rs * rs * dot / C;
#pragma omp simd
      for (int64_t c = 0; c < C; c++) dx[c] = rs * (g[c] * weight[c] - x[c] * k);
    }
  }
  add_blocks(dweight, dw_part.data(), blocks, C);
}

}  // namespace quartet
