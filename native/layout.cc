// Data movement: permute (up to 6 axes), gather rows (embedding lookup) and
// scatter-add rows (embedding backward).
#include "layout.h"

#include <cstring>

#include "parallel.h"

namespace quartet {

// The shape is padded to 6 axes with leading size-1 axes; the output is walked in
// order as rows along its last axis, each read from inp with that axis' stride. Rows
// are handed out in chunks; a chunk finds its first source offset by division, then
// steps an odometer over the outer axes (no division per row).
void permute(float* out, const float* inp, const int64_t* shape, const int* perm, int ndim) {
  constexpr int D = kMaxPermuteDims;
  int64_t in_stride[D];
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    in_stride[i] = s;
    s *= shape[i];
  }
  const int64_t total = s;
  if (total == 0) return;
  int64_t dim[D], stride[D];
  const int pad = D - ndim;
  for (int i = 0; i < D; i++) {
    dim[i] = i < pad ? 1 : shape[perm[i - pad]];
    stride[i] = i < pad ? 0 : in_stride[perm[i - pad]];
  }
  const int64_t inner = dim[D - 1];
  const int64_t inner_stride = stride[D - 1];
  const int64_t outer = total / inner;
  constexpr int64_t kRowsPerChunk = 64;
  const int64_t chunks = (outer + kRowsPerChunk - 1) / kRowsPerChunk;
#pragma omp parallel for if (total >= kParallelMin) schedule(static)
  for (int64_t ch = 0; ch < chunks; ch++) {
    int64_t o = ch * kRowsPerChunk;
    const int64_t o1 = o + kRowsPerChunk < outer ? o + kRowsPerChunk : outer;
    int64_t idx[D - 1];
    int64_t rest = o, src = 0;
    for (int i = D - 2; i >= 0; i--) {
      idx[i] = rest % dim[i];
      rest /= dim[i];
      src += idx[i] * stride[i];
    }
    for (; o < o1; o++) {
      float* dst = out + o * inner;
      const float* from = inp + src;
      if (inner_stride == 1) {
#pragma omp simd
        for (int64_t j = 0; j < inner; j++) dst[j] = from[j];
      } else {
        for (int64_t j = 0; j < inner; j++) dst[j] = from[j * inner_stride];
      }
      for (int i = D - 2; i >= 0; i--) {
        src += stride[i];
        if (++idx[i] < dim[i]) break;
        src -= idx[i] * stride[i];
        idx[i] = 0;
      }
    }
  }
}

void gather_rows(float* out, const float* inp, const int32_t* idx, int64_t n_idx, int64_t C) {
#pragma omp parallel for if (n_idx * C >= kParallelMin) schedule(static)
  for (int64_t i = 0; i < n_idx; i++) {
    float* dst = out + i * C;
    const float* src = inp + static_cast<int64_t>(idx[i]) * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) dst[c] = src[c];
  }
}

void scatter_add_rows(float* out, const float* inp, const int32_t* idx, int64_t n_idx,
                      int64_t R, int64_t C) {
  const int64_t total = R * C;
#pragma omp parallel for simd if (total >= kParallelMin) schedule(static)
  for (int64_t i = 0; i < total; i++) out[i] = 0.0f;
  // Column chunks are independent; inside a chunk rows are added in index order, so
  // repeated indices never race and always sum the same way.
  constexpr int64_t kChunk = 64;
  const int64_t chunks = (C + kChunk - 1) / kChunk;
#pragma omp parallel for if (n_idx * C >= kParallelMin) schedule(static)
  for (int64_t ch = 0; ch < chunks; ch++) {
    const int64_t c0 = ch * kChunk;
    const int64_t c1 = c0 + kChunk < C ? c0 + kChunk : C;
    for (int64_t i = 0; i < n_idx; i++) {
      float* o = out + static_cast<int64_t>(idx[i]) * C;
      const float* x = inp + i * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; c++) o[c] += x[c];
    }
  }
}

}  // namespace quartet
