// LayerNorm and RMSNorm over rows of [N, C], forward and backward.
//
// Forward and the dinp part of the backward: one warp per row (a row of C floats is
// read with coalesced strided loops; the second and third reads hit L1). The weight
// and bias gradients are sums over rows: one thread per column adds a fixed chunk of
// kChunkRows rows into a partial [chunks, C], then a second kernel adds the chunks in
// order. No atomics, so the sums are the same on every run.
#include "common.cuh"

namespace quartet::cuda {

namespace {

constexpr int kRowsPerBlock = 8;  // warps per block in the row kernels
constexpr int kChunkRows = 64;    // rows per partial sum of dweight / dbias

__global__ void k_layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                                    const float* weight, const float* bias, int64_t N, int64_t C,
                                    float eps) {
  const int64_t r = blockIdx.x * (int64_t)kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= N) return;
  const float* x = inp + r * C;
  float s = 0.0f;
  for (int64_t c = lane; c < C; c += 32) s += x[c];
  const float m = warp_sum(s) / C;
  float v = 0.0f;
  for (int64_t c = lane; c < C; c += 32) v += (x[c] - m) * (x[c] - m);
  const float rs = 1.0f / sqrtf(warp_sum(v) / C + eps);
  float* o = out + r * C;
  for (int64_t c = lane; c < C; c += 32)
    o[c] = bias ? (x[c] - m) * rs * weight[c] + bias[c] : (x[c] - m) * rs * weight[c];
  if (lane == 0) {
    mean[r] = m;
    rstd[r] = rs;
  }
}

// dx = rs * (g w - mean(g w) - xhat * mean(g w xhat))
__global__ void k_layernorm_backward_dx(float* dinp, const float* dout, const float* inp,
                                        const float* weight, const float* mean, const float* rstd,
                                        int64_t N, int64_t C) {
  const int64_t r = blockIdx.x * (int64_t)kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= N) return;
  const float* x = inp + r * C;
  const float* g = dout + r * C;
  const float m = mean[r], rs = rstd[r];
  float sum_dn = 0.0f, sum_dn_xhat = 0.0f;
  for (int64_t c = lane; c < C; c += 32) {
    const float dn = g[c] * weight[c];
    sum_dn += dn;
    sum_dn_xhat += dn * ((x[c] - m) * rs);
  }
  const float mean_dn = warp_sum(sum_dn) / C, mean_dn_xhat = warp_sum(sum_dn_xhat) / C;
  float* dx = dinp + r * C;
  for (int64_t c = lane; c < C; c += 32) {
    const float xhat = (x[c] - m) * rs;
    dx[c] = (g[c] * weight[c] - mean_dn - xhat * mean_dn_xhat) * rs;
  }
}

// Partial column sums over one chunk of rows: pw[chunk, c] = sum g * xhat (LayerNorm,
// rms == false: xhat = (x - mean) rstd; RMSNorm: x rstd) and pb[chunk, c] = sum g.
__global__ void k_norm_partials(float* pw, float* pb, const float* dout, const float* inp,
                                const float* mean, const float* rstd, int64_t N, int64_t C) {
  const int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  const int64_t chunk = blockIdx.y;
  if (c >= C) return;
  const int64_t r0 = chunk * kChunkRows;
  const int64_t r1 = r0 + kChunkRows < N ? r0 + kChunkRows : N;
  float sw = 0.0f, sb = 0.0f;
  for (int64_t r = r0; r < r1; r++) {
    const float g = dout[r * C + c];
    const float xhat = mean ? (inp[r * C + c] - mean[r]) * rstd[r] : inp[r * C + c] * rstd[r];
    sw += g * xhat;
    sb += g;
  }
  pw[chunk * C + c] = sw;
  if (pb) pb[chunk * C + c] = sb;
}

__global__ void k_add_chunks(float* out, const float* partial, int64_t chunks, int64_t C) {
  const int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (c >= C) return;
  float s = 0.0f;
  for (int64_t k = 0; k < chunks; k++) s += partial[k * C + c];
  out[c] = s;
}

__global__ void k_rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight,
                                  int64_t N, int64_t C, float eps) {
  const int64_t r = blockIdx.x * (int64_t)kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= N) return;
  const float* x = inp + r * C;
  float ss = 0.0f;
  for (int64_t c = lane; c < C; c += 32) ss += x[c] * x[c];
  const float rs = 1.0f / sqrtf(warp_sum(ss) / C + eps);
  float* o = out + r * C;
  for (int64_t c = lane; c < C; c += 32) o[c] = weight[c] * (x[c] * rs);
  if (lane == 0) rstd[r] = rs;
}

// dx = rs * (g w - x rs^2 mean(g w x))
__global__ void k_rmsnorm_backward_dx(float* dinp, const float* dout, const float* inp,
                                      const float* weight, const float* rstd, int64_t N,
                                      int64_t C) {
  const int64_t r = blockIdx.x * (int64_t)kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= N) return;
  const float* x = inp + r * C;
  const float* g = dout + r * C;
  const float rs = rstd[r];
  float dot = 0.0f;
  for (int64_t c = lane; c < C; c += 32) dot += g[c] * weight[c] * x[c];
  const float k = rs * rs * warp_sum(dot) / C;
  float* dx = dinp + r * C;
  for (int64_t c = lane; c < C; c += 32) dx[c] = rs * (g[c] * weight[c] - x[c] * k);
}

unsigned row_blocks(int64_t N) { return static_cast<unsigned>((N + kRowsPerBlock - 1) / kRowsPerBlock); }

// dweight (and dbias when db != nullptr) from the chunked partial sums.
void column_sums(float* dw, float* db, const float* dout, const float* inp, const float* mean,
                 const float* rstd, int64_t N, int64_t C) {
  const int64_t chunks = (N + kChunkRows - 1) / kChunkRows;
  float* pw = static_cast<float*>(workspace(sizeof(float) * chunks * C * 2));
  float* pb = db ? pw + chunks * C : nullptr;
  const dim3 grid(static_cast<unsigned>((C + 255) / 256), static_cast<unsigned>(chunks));
  k_norm_partials<<<grid, 256, 0, cur_stream()>>>(pw, pb, dout, inp, mean, rstd, N, C);
  QLAUNCHED();
  const unsigned cb = static_cast<unsigned>((C + 255) / 256);
  k_add_chunks<<<cb, 256, 0, cur_stream()>>>(dw, pw, chunks, C);
  QLAUNCHED();
  if (db) {
    k_add_chunks<<<cb, 256, 0, cur_stream()>>>(db, pb, chunks, C);
    QLAUNCHED();
  }
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                       const float* weight, const float* bias, int64_t N, int64_t C, float eps) {
  if (N <= 0 || C <= 0) return;
  QREQUIRE(N <= 65535LL * 65535LL, "layernorm: too many rows");
  k_layernorm_forward<<<row_blocks(N), 32 * kRowsPerBlock, 0, cur_stream()>>>(out, mean, rstd, inp, weight, bias, N, C, eps);
  QLAUNCHED();
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean,
                        const float* rstd, int64_t N, int64_t C) {
  if (C <= 0) return;
  if (N <= 0) {
    QCUDA(cudaMemsetAsync(dweight, 0, sizeof(float) * C, cur_stream()));
    if (dbias) QCUDA(cudaMemsetAsync(dbias, 0, sizeof(float) * C, cur_stream()));
    return;
  }
  QREQUIRE((N + kChunkRows - 1) / kChunkRows <= 65535, "layernorm_backward: too many rows");
  k_layernorm_backward_dx<<<row_blocks(N), 32 * kRowsPerBlock, 0, cur_stream()>>>(dinp, dout, inp, weight, mean, rstd, N, C);
  QLAUNCHED();
  column_sums(dweight, dbias, dout, inp, mean, rstd, N, C);
}

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N,
                     int64_t C, float eps) {
  if (N <= 0 || C <= 0) return;
  k_rmsnorm_forward<<<row_blocks(N), 32 * kRowsPerBlock, 0, cur_stream()>>>(out, rstd, inp, weight, N, C, eps);
  QLAUNCHED();
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                      const float* weight, const float* rstd, int64_t N, int64_t C) {
  if (C <= 0) return;
  if (N <= 0) {
    QCUDA(cudaMemsetAsync(dweight, 0, sizeof(float) * C, cur_stream()));
    return;
  }
  QREQUIRE((N + kChunkRows - 1) / kChunkRows <= 65535, "rmsnorm_backward: too many rows");
  k_rmsnorm_backward_dx<<<row_blocks(N), 32 * kRowsPerBlock, 0, cur_stream()>>>(dinp, dout, inp, weight, rstd, N, C);
  QLAUNCHED();
  column_sums(dweight, nullptr, dout, inp, nullptr, rstd, N, C);
}

}  // namespace quartet::cuda
