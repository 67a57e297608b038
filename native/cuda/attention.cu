// Fused scaled-dot-product attention on the GPU (semantics: native/attention.h):
// causal, key padding mask, grouped-query heads, a KV cache of capacity kvCap.
//
// Plain, correct kernels first (the [Tq, Tk] score matrix is never stored):
// - forward, Tq > 4: one thread per query row, q and the output accumulator in
//   registers, K and V walked in tiles of BK keys staged in shared memory (every thread
//   reads the same key at once: a broadcast). Online softmax per tile: the running max
//   m and sum l are rescaled once per tile, not per key.
// - forward, Tq <= 4 (KV-cache decode): one block per query row; each warp takes every
//   8th key, a dot product is split over the lanes (HS / 32 dims each) and summed with
//   shuffles, each warp keeps its own (m, l, o), and warp 0 merges the 8 in order.
// - backward: D = rowsum(dO * O) per row; dQ with one thread per query row (as the
//   forward); dK and dV with one thread per key, walking every query row of every head
//   that shares the kv head (so the group's sum needs no atomics), query tiles staged
//   in shared memory. P is recomputed from the saved lse.
// Natural-log units throughout (the CPU kernels use log2 internally; results agree to
// rounding). HS <= 128; dropout is not implemented here (dropout_p must be 0).
#include <cmath>

#include "common.cuh"

namespace quartet::cuda {

namespace {

constexpr int kBQ = 64;        // query rows (threads) per block, forward and dQ
constexpr int kDecodeWarps = 8;

// Last key row i may see (may be < 0: none).
__device__ __forceinline__ int last_key(bool causal, int Tq, int Tk, int i) {
  return causal ? Tk - Tq + i : Tk - 1;
}

template <int HSM, int BK>
__global__ void __launch_bounds__(kBQ) k_attn_forward(float* out, float* lse, const float* q,
                                                     const float* k, const float* v,
                                                     const float* mask, int NH, int NKV, int Tq,
                                                     int Tk, int kvCap, int HS, float scale,
                                                     bool causal) {
  const int b = blockIdx.z, h = blockIdx.y, g = h / (NH / NKV);
  const int i = blockIdx.x * kBQ + threadIdx.x;
  const bool active = i < Tq;
  const int64_t row = ((int64_t)b * NH + h) * Tq + i;
  const float* kb = k + ((int64_t)b * NKV + g) * kvCap * HS;
  const float* vb = v + ((int64_t)b * NKV + g) * kvCap * HS;
  const float* mb = mask ? mask + (int64_t)b * Tk : nullptr;

  float qr[HSM], o[HSM];
#pragma unroll
  for (int d = 0; d < HSM; d++) {
    qr[d] = active && d < HS ? q[row * HS + d] * scale : 0.0f;
    o[d] = 0.0f;
  }
  const int lim = last_key(causal, Tq, Tk, i);
  const int last_row = min((int)(blockIdx.x * kBQ + kBQ - 1), Tq - 1);
  const int jend = min(Tk, last_key(causal, Tq, Tk, last_row) + 1);

  __shared__ float ks[BK][HSM], vs[BK][HSM], ms[BK];
  float m = -INFINITY, l = 0.0f;
  for (int j0 = 0; j0 < jend; j0 += BK) {
    __syncthreads();  // the previous tile is no longer read
    for (int e = threadIdx.x; e < BK * HSM; e += kBQ) {
      const int jj = e / HSM, d = e % HSM, j = j0 + jj;
      const bool ok = j < Tk && d < HS;
      ks[jj][d] = ok ? kb[(int64_t)j * HS + d] : 0.0f;
      vs[jj][d] = ok ? vb[(int64_t)j * HS + d] : 0.0f;
    }
    for (int jj = threadIdx.x; jj < BK; jj += kBQ) {
      const int j = j0 + jj;
      ms[jj] = j < Tk && (!mb || mb[j] != 0.0f) ? 1.0f : 0.0f;
    }
    __syncthreads();
    float s[BK];
    float mt = -INFINITY;
#pragma unroll
    for (int jj = 0; jj < BK; jj++) {
      float acc = 0.0f;
#pragma unroll
      for (int d = 0; d < HSM; d++) acc += qr[d] * ks[jj][d];
      s[jj] = ms[jj] != 0.0f && j0 + jj <= lim ? acc : -INFINITY;
      mt = fmaxf(mt, s[jj]);
    }
    if (mt == -INFINITY) continue;  // nothing visible in this tile for this row
    const float mn = fmaxf(m, mt);
    const float alpha = expf(m - mn);  // m == -inf: 0 (o and l are 0 anyway)
    l *= alpha;
#pragma unroll
    for (int d = 0; d < HSM; d++) o[d] *= alpha;
#pragma unroll
    for (int jj = 0; jj < BK; jj++) {
      const float p = expf(s[jj] - mn);  // -inf: 0
      l += p;
#pragma unroll
      for (int d = 0; d < HSM; d++) o[d] += p * vs[jj][d];
    }
    m = mn;
  }
  if (!active) return;
  if (l > 0.0f) {
    const float inv = 1.0f / l;
#pragma unroll
    for (int d = 0; d < HSM; d++)
      if (d < HS) out[row * HS + d] = o[d] * inv;
    lse[row] = m + logf(l);
  } else {
#pragma unroll
    for (int d = 0; d < HSM; d++)
      if (d < HS) out[row * HS + d] = 0.0f;
    lse[row] = -INFINITY;
  }
}

// Decode: grid (Tq, NH, B), kDecodeWarps warps; DPL = dims per lane (HS <= 32 DPL).
template <int DPL>
__global__ void __launch_bounds__(32 * kDecodeWarps) k_attn_decode(
    float* out, float* lse, const float* q, const float* k, const float* v, const float* mask,
    int NH, int NKV, int Tq, int Tk, int kvCap, int HS, float scale, bool causal) {
  const int b = blockIdx.z, h = blockIdx.y, g = h / (NH / NKV), i = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = ((int64_t)b * NH + h) * Tq + i;
  const float* kb = k + ((int64_t)b * NKV + g) * kvCap * HS;
  const float* vb = v + ((int64_t)b * NKV + g) * kvCap * HS;
  const float* mb = mask ? mask + (int64_t)b * Tk : nullptr;
  float qv[DPL], o[DPL];
#pragma unroll
  for (int t = 0; t < DPL; t++) {
    const int d = lane + 32 * t;
    qv[t] = d < HS ? q[row * HS + d] * scale : 0.0f;
    o[t] = 0.0f;
  }
  const int jend = min(Tk, last_key(causal, Tq, Tk, i) + 1);
  float m = -INFINITY, l = 0.0f;
  for (int j = warp; j < jend; j += kDecodeWarps) {
    if (mb && mb[j] == 0.0f) continue;  // the same for the whole warp
    float part = 0.0f;
    float vv[DPL];
#pragma unroll
    for (int t = 0; t < DPL; t++) {
      const int d = lane + 32 * t;
      part += d < HS ? qv[t] * kb[(int64_t)j * HS + d] : 0.0f;
      vv[t] = d < HS ? vb[(int64_t)j * HS + d] : 0.0f;
    }
    const float s = warp_sum(part);  // every lane holds the same score
    if (s > m) {
      const float alpha = expf(m - s);
      l = l * alpha + 1.0f;
#pragma unroll
      for (int t = 0; t < DPL; t++) o[t] = o[t] * alpha + vv[t];
      m = s;
    } else {
      const float p = expf(s - m);
      l += p;
#pragma unroll
      for (int t = 0; t < DPL; t++) o[t] += p * vv[t];
    }
  }
  __shared__ float wm[kDecodeWarps], wl[kDecodeWarps], wo[kDecodeWarps][32 * DPL];
  if (lane == 0) {
    wm[warp] = m;
    wl[warp] = l;
  }
#pragma unroll
  for (int t = 0; t < DPL; t++) wo[warp][lane + 32 * t] = o[t];
  __syncthreads();
  if (warp != 0) return;
  float M = -INFINITY;
  for (int w = 0; w < kDecodeWarps; w++) M = fmaxf(M, wl[w] > 0.0f ? wm[w] : -INFINITY);
  float L = 0.0f, O[DPL];
#pragma unroll
  for (int t = 0; t < DPL; t++) O[t] = 0.0f;
  if (M != -INFINITY) {
    for (int w = 0; w < kDecodeWarps; w++) {
      if (!(wl[w] > 0.0f)) continue;
      const float f = expf(wm[w] - M);
      L += wl[w] * f;
#pragma unroll
      for (int t = 0; t < DPL; t++) O[t] += wo[w][lane + 32 * t] * f;
    }
  }
  const bool any = L > 0.0f;
#pragma unroll
  for (int t = 0; t < DPL; t++) {
    const int d = lane + 32 * t;
    if (d < HS) out[row * HS + d] = any ? O[t] / L : 0.0f;
  }
  if (lane == 0) lse[row] = any ? M + logf(L) : -INFINITY;
}

// D[row] = sum_d dO[row, d] * O[row, d]; one warp per row.
__global__ void k_attn_rowdot(float* D, const float* dout, const float* out, int64_t rows, int HS) {
  const int64_t r = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  float s = 0.0f;
  for (int d = lane; d < HS; d += 32) s += dout[r * HS + d] * out[r * HS + d];
  s = warp_sum(s);
  if (lane == 0) D[r] = s;
}

// dQ: one thread per query row; K and V tiles in shared memory.
//   p = exp(scale q.k - lse), dp = dO.v, ds = p (dp - D), dq += scale ds k
template <int HSM, int BK>
__global__ void __launch_bounds__(kBQ) k_attn_dq(float* dq, const float* dout, const float* q,
                                                const float* k, const float* v, const float* lse,
                                                const float* Dv, const float* mask, int NH, int NKV,
                                                int Tq, int Tk, int HS, float scale, bool causal) {
  const int b = blockIdx.z, h = blockIdx.y, g = h / (NH / NKV);
  const int i = blockIdx.x * kBQ + threadIdx.x;
  const bool active = i < Tq;
  const int64_t row = ((int64_t)b * NH + h) * Tq + i;
  const float* kb = k + ((int64_t)b * NKV + g) * Tk * HS;
  const float* vb = v + ((int64_t)b * NKV + g) * Tk * HS;
  const float* mb = mask ? mask + (int64_t)b * Tk : nullptr;
  float qr[HSM], dor[HSM], acc[HSM];
#pragma unroll
  for (int d = 0; d < HSM; d++) {
    qr[d] = active && d < HS ? q[row * HS + d] * scale : 0.0f;
    dor[d] = active && d < HS ? dout[row * HS + d] : 0.0f;
    acc[d] = 0.0f;
  }
  const float li = active ? lse[row] : -INFINITY;
  const float Di = active ? Dv[row] : 0.0f;
  const int lim = li == -INFINITY ? -1 : last_key(causal, Tq, Tk, i);
  const int last_row = min((int)(blockIdx.x * kBQ + kBQ - 1), Tq - 1);
  const int jend = min(Tk, last_key(causal, Tq, Tk, last_row) + 1);
  __shared__ float ks[BK][HSM], vs[BK][HSM], ms[BK];
  for (int j0 = 0; j0 < jend; j0 += BK) {
    __syncthreads();
    for (int e = threadIdx.x; e < BK * HSM; e += kBQ) {
      const int jj = e / HSM, d = e % HSM, j = j0 + jj;
      const bool ok = j < Tk && d < HS;
      ks[jj][d] = ok ? kb[(int64_t)j * HS + d] : 0.0f;
      vs[jj][d] = ok ? vb[(int64_t)j * HS + d] : 0.0f;
    }
    for (int jj = threadIdx.x; jj < BK; jj += kBQ) {
      const int j = j0 + jj;
      ms[jj] = j < Tk && (!mb || mb[j] != 0.0f) ? 1.0f : 0.0f;
    }
    __syncthreads();
    for (int jj = 0; jj < BK; jj++) {
      if (ms[jj] == 0.0f || j0 + jj > lim) continue;
      float s = 0.0f, dp = 0.0f;
#pragma unroll
      for (int d = 0; d < HSM; d++) {
        s += qr[d] * ks[jj][d];
        dp += dor[d] * vs[jj][d];
      }
      const float ds = expf(s - li) * (dp - Di);
#pragma unroll
      for (int d = 0; d < HSM; d++) acc[d] += ds * ks[jj][d];
    }
  }
  if (!active) return;
#pragma unroll
  for (int d = 0; d < HSM; d++)
    if (d < HS) dq[row * HS + d] = acc[d] * scale;
}

// dK, dV: one thread per key j of kv head (b, g); its k and v live in shared memory
// as columns ([d][thread]: consecutive threads hit consecutive banks), dk and dv in
// registers. Query rows of every head of the group come in tiles of BQT.
template <int HSM, int BKEY, int BQT>
__global__ void __launch_bounds__(BKEY) k_attn_dkdv(float* dk, float* dv, const float* dout,
                                                   const float* q, const float* k, const float* v,
                                                   const float* lse, const float* Dv,
                                                   const float* mask, int NH, int NKV, int Tq,
                                                   int Tk, int HS, float scale, bool causal) {
  const int b = blockIdx.z, g = blockIdx.y, group = NH / NKV;
  const int j0 = blockIdx.x * BKEY;
  const int j = j0 + threadIdx.x;
  const int64_t kvrow = ((int64_t)b * NKV + g) * Tk + j;
  __shared__ float kT[HSM][BKEY], vT[HSM][BKEY];
  __shared__ float qs[BQT][HSM], dos[BQT][HSM], ls[BQT], Ds[BQT];
  const bool key_ok = j < Tk && (!mask || mask[(int64_t)b * Tk + j] != 0.0f);
#pragma unroll
  for (int d = 0; d < HSM; d++) {
    kT[d][threadIdx.x] = j < Tk && d < HS ? k[kvrow * HS + d] : 0.0f;
    vT[d][threadIdx.x] = j < Tk && d < HS ? v[kvrow * HS + d] : 0.0f;
  }
  float gk[HSM], gv[HSM];
#pragma unroll
  for (int d = 0; d < HSM; d++) gk[d] = gv[d] = 0.0f;
  // The first query row that sees key j0 (causal: i >= j0 - (Tk - Tq)).
  const int i_first = causal ? max(0, j0 - (Tk - Tq)) : 0;
  const int i_start = i_first / BQT * BQT;
  for (int hh = 0; hh < group; hh++) {
    const int h = g * group + hh;
    const int64_t rowbase = ((int64_t)b * NH + h) * Tq;
    for (int i0 = i_start; i0 < Tq; i0 += BQT) {
      __syncthreads();  // previous tile read by all (and kT/vT written, first time)
      for (int e = threadIdx.x; e < BQT * HSM; e += BKEY) {
        const int ii = e / HSM, d = e % HSM, i = i0 + ii;
        const bool ok = i < Tq && d < HS;
        qs[ii][d] = ok ? q[(rowbase + i) * HS + d] * scale : 0.0f;
        dos[ii][d] = ok ? dout[(rowbase + i) * HS + d] : 0.0f;
      }
      for (int ii = threadIdx.x; ii < BQT; ii += BKEY) {
        const int i = i0 + ii;
        ls[ii] = i < Tq ? lse[rowbase + i] : -INFINITY;
        Ds[ii] = i < Tq ? Dv[rowbase + i] : 0.0f;
      }
      __syncthreads();
      if (!key_ok) continue;
      for (int ii = 0; ii < BQT; ii++) {
        const int i = i0 + ii;
        if (i >= Tq || ls[ii] == -INFINITY || j > last_key(causal, Tq, Tk, i)) continue;
        float s = 0.0f, dp = 0.0f;
#pragma unroll
        for (int d = 0; d < HSM; d++) {
          s += qs[ii][d] * kT[d][threadIdx.x];
          dp += dos[ii][d] * vT[d][threadIdx.x];
        }
        const float p = expf(s - ls[ii]);
        const float ds = p * (dp - Ds[ii]);
#pragma unroll
        for (int d = 0; d < HSM; d++) {
          gv[d] += p * dos[ii][d];
          gk[d] += ds * qs[ii][d];  // qs holds scale * q: dk = scale * sum ds q
        }
      }
    }
  }
  if (j >= Tk) return;
#pragma unroll
  for (int d = 0; d < HSM; d++) {
    if (d < HS) {
      dk[kvrow * HS + d] = gk[d];
      dv[kvrow * HS + d] = gv[d];
    }
  }
}

void check_dims(int64_t B, int64_t NH, int64_t NKV, int64_t Tq, int64_t Tk, int64_t kvCap,
                int64_t HS) {
  QREQUIRE(NKV > 0 && NH % NKV == 0, "attention: NH must be a multiple of NKV");
  QREQUIRE(HS > 0 && HS <= 128, "attention: head size must be in [1, 128] on CUDA");
  QREQUIRE(Tk <= kvCap, "attention: Tk > kvCap");
  QREQUIRE(B <= 65535 && NH <= 65535 && Tq <= 0x7fffffffLL && kvCap <= 0x7fffffffLL &&
               (Tq + kBQ - 1) / kBQ <= 0x7fffffffLL,
           "attention: dimensions too large");
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const float* key_mask, int64_t B, int64_t NH, int64_t NKV, int64_t Tq,
                       int64_t Tk, int64_t kvCap, int64_t HS, float scale, bool causal,
                       float dropout_p, uint64_t /*seed*/) {
  QREQUIRE(dropout_p == 0.0f, "attention_forward: dropout is not implemented on CUDA");
  if (B <= 0 || NH <= 0 || Tq <= 0) return;
  check_dims(B, NH, NKV, Tq, Tk, kvCap, HS);
  cudaStream_t st = cur_stream();
  const int nh = (int)NH, nkv = (int)NKV, tq = (int)Tq, tk = (int)Tk, cap = (int)kvCap, hs = (int)HS;
  if (Tq <= 4) {
    const dim3 grid((unsigned)Tq, (unsigned)NH, (unsigned)B);
    if (HS <= 64)
      k_attn_decode<2><<<grid, 32 * kDecodeWarps, 0, st>>>(out, lse, q, k, v, key_mask, nh, nkv, tq, tk, cap, hs, scale, causal);
    else
      k_attn_decode<4><<<grid, 32 * kDecodeWarps, 0, st>>>(out, lse, q, k, v, key_mask, nh, nkv, tq, tk, cap, hs, scale, causal);
  } else {
    const dim3 grid((unsigned)((Tq + kBQ - 1) / kBQ), (unsigned)NH, (unsigned)B);
    if (HS <= 64)
      k_attn_forward<64, 32><<<grid, kBQ, 0, st>>>(out, lse, q, k, v, key_mask, nh, nkv, tq, tk, cap, hs, scale, causal);
    else
      k_attn_forward<128, 16><<<grid, kBQ, 0, st>>>(out, lse, q, k, v, key_mask, nh, nkv, tq, tk, cap, hs, scale, causal);
  }
  QLAUNCHED();
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        const float* key_mask, int64_t B, int64_t NH, int64_t NKV, int64_t Tq,
                        int64_t Tk, int64_t HS, float scale, bool causal, float dropout_p,
                        uint64_t /*seed*/) {
  QREQUIRE(dropout_p == 0.0f, "attention_backward: dropout is not implemented on CUDA");
  if (B <= 0 || NH <= 0) return;
  check_dims(B, NH, NKV, Tq, Tk, Tk, HS);
  cudaStream_t st = cur_stream();
  if (Tk > 0 && (Tq <= 0)) {
    QCUDA(cudaMemsetAsync(dk, 0, sizeof(float) * B * NKV * Tk * HS, st));
    QCUDA(cudaMemsetAsync(dv, 0, sizeof(float) * B * NKV * Tk * HS, st));
    return;
  }
  if (Tq <= 0) return;
  const int64_t rows = B * NH * Tq;
  float* D = static_cast<float*>(workspace(sizeof(float) * rows));
  k_attn_rowdot<<<(unsigned)((rows + 7) / 8), 256, 0, st>>>(D, dout, out, rows, (int)HS);
  QLAUNCHED();
  const int nh = (int)NH, nkv = (int)NKV, tq = (int)Tq, tk = (int)Tk, hs = (int)HS;
  const dim3 gq((unsigned)((Tq + kBQ - 1) / kBQ), (unsigned)NH, (unsigned)B);
  if (HS <= 64)
    k_attn_dq<64, 16><<<gq, kBQ, 0, st>>>(dq, dout, q, k, v, lse, D, key_mask, nh, nkv, tq, tk, hs, scale, causal);
  else
    k_attn_dq<128, 16><<<gq, kBQ, 0, st>>>(dq, dout, q, k, v, lse, D, key_mask, nh, nkv, tq, tk, hs, scale, causal);
  QLAUNCHED();
  if (Tk <= 0) return;
  if (HS <= 64) {
    const dim3 gk((unsigned)((Tk + 63) / 64), (unsigned)NKV, (unsigned)B);
    k_attn_dkdv<64, 64, 16><<<gk, 64, 0, st>>>(dk, dv, dout, q, k, v, lse, D, key_mask, nh, nkv, tq, tk, hs, scale, causal);
  } else {
    const dim3 gk((unsigned)((Tk + 31) / 32), (unsigned)NKV, (unsigned)B);
    k_attn_dkdv<128, 32, 8><<<gk, 32, 0, st>>>(dk, dv, dout, q, k, v, lse, D, key_mask, nh, nkv, tq, tk, hs, scale, causal);
  }
  QLAUNCHED();
}

}  // namespace quartet::cuda
