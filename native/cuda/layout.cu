// Embedding lookup (gather_rows) and its backward (scatter_add_rows), plus rotary
// position embedding.
//
// scatter_add_rows is deterministic without float atomics: a stable radix sort of
// (idx[i], i) groups the contributions to each output row in index order; offsets[r]
// is where row r's group starts; then one thread per output element adds its group's
// inputs in that order into 0.0f, exactly the CPU kernel's sum (bitwise equal).
#include <cub/cub.cuh>

#include "common.cuh"

namespace quartet::cuda {

namespace {

#define GRID_STRIDE(i, n)                                                        \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n);      \
       i += (int64_t)gridDim.x * blockDim.x)

__global__ void k_gather_rows(float* out, const float* inp, const int32_t* idx, int64_t n_idx,
                              int64_t C) {
  GRID_STRIDE(e, n_idx * C) {
    const int64_t i = e / C, c = e % C;
    out[e] = inp[static_cast<int64_t>(idx[i]) * C + c];
  }
}

__global__ void k_iota(int32_t* v, int64_t n) {
  GRID_STRIDE(i, n) v[i] = static_cast<int32_t>(i);
}

// offsets[r] = first position in the sorted keys with key >= r, for r in [0, R].
__global__ void k_offsets(int32_t* offsets, const int32_t* keys, int64_t n, int64_t R) {
  GRID_STRIDE(r, R + 1) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (keys[mid] < r) lo = mid + 1;
      else hi = mid;
    }
    offsets[r] = static_cast<int32_t>(lo);
  }
}

__global__ void k_scatter_sum(float* out, const float* inp, const int32_t* order,
                              const int32_t* offsets, int64_t R, int64_t C) {
  GRID_STRIDE(e, R * C) {
    const int64_t r = e / C, c = e % C;
    float s = 0.0f;
    for (int32_t k = offsets[r]; k < offsets[r + 1]; k++) s += inp[static_cast<int64_t>(order[k]) * C + c];
    out[e] = s;
  }
}

size_t align256(size_t b) { return (b + 255) & ~static_cast<size_t>(255); }

// Rotary: one thread per (row, head, d) with d < HS. d < half rotates the pair it owns
// (reads both elements, then writes both: in place is safe); d >= rotary_dim copies;
// the rest have nothing to do. angle = float(position) * inv_freq[i] rounded to float,
// then sincosf, as the CPU kernel and PyTorch do.
__global__ void k_rope(float* out, const float* x, const int32_t* positions, const float* inv_freq,
                       int64_t rows, int64_t NH, int64_t HS, int64_t half, bool interleaved,
                       float sign) {
  GRID_STRIDE(e, rows * NH * HS) {
    const int64_t d = e % HS;
    const int64_t row = e / (NH * HS);
    const int64_t base = e - d;
    if (d < half) {
      float s, c;
      sincosf(static_cast<float>(positions[row]) * inv_freq[d], &s, &c);
      s *= sign;
      const int64_t i0 = interleaved ? base + 2 * d : base + d;
      const int64_t i1 = interleaved ? base + 2 * d + 1 : base + d + half;
      const float a = x[i0], b = x[i1];
      out[i0] = a * c - b * s;
      out[i1] = b * c + a * s;
    } else if (d >= 2 * half) {
      out[e] = x[e];
    }
  }
}

}  // namespace

void gather_rows(float* out, const float* inp, const int32_t* idx, int64_t n_idx, int64_t C) {
  if (n_idx <= 0 || C <= 0) return;
  k_gather_rows<<<grid_for(n_idx * C, 256), 256, 0, cur_stream()>>>(out, inp, idx, n_idx, C);
  QLAUNCHED();
}

void scatter_add_rows(float* out, const float* inp, const int32_t* idx, int64_t n_idx, int64_t R,
                      int64_t C) {
  if (R <= 0 || C <= 0) return;
  if (n_idx <= 0) {
    QCUDA(cudaMemsetAsync(out, 0, sizeof(float) * R * C, cur_stream()));
    return;
  }
  QREQUIRE(n_idx < 0x7fffffffLL && R < 0x7fffffffLL, "scatter_add_rows: too many rows");
  const int n = static_cast<int>(n_idx);
  int end_bit = 1;
  while (end_bit < 31 && (int64_t{1} << end_bit) <= R) end_bit++;
  size_t sort_bytes = 0;
  QCUDA(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, (const int32_t*)nullptr, (int32_t*)nullptr,
                                        (const int32_t*)nullptr, (int32_t*)nullptr, n, 0, end_bit,
                                        cur_stream()));
  const size_t ints = align256(sizeof(int32_t) * n);
  const size_t offs = align256(sizeof(int32_t) * (R + 1));
  char* ws = static_cast<char*>(workspace(3 * ints + offs + align256(sort_bytes)));
  int32_t* keys_sorted = reinterpret_cast<int32_t*>(ws);
  int32_t* iota = reinterpret_cast<int32_t*>(ws + ints);
  int32_t* order = reinterpret_cast<int32_t*>(ws + 2 * ints);
  int32_t* offsets = reinterpret_cast<int32_t*>(ws + 3 * ints);
  void* sort_tmp = ws + 3 * ints + offs;
  k_iota<<<grid_for(n, 256), 256, 0, cur_stream()>>>(iota, n);
  QLAUNCHED();
  QCUDA(cub::DeviceRadixSort::SortPairs(sort_tmp, sort_bytes, idx, keys_sorted, iota, order, n, 0,
                                        end_bit, cur_stream()));
  k_offsets<<<grid_for(R + 1, 256), 256, 0, cur_stream()>>>(offsets, keys_sorted, n, R);
  QLAUNCHED();
  k_scatter_sum<<<grid_for(R * C, 256), 256, 0, cur_stream()>>>(out, inp, order, offsets, R, C);
  QLAUNCHED();
}

void rope(float* out, const float* x, const int32_t* positions, const float* inv_freq, int64_t B,
          int64_t T, int64_t NH, int64_t HS, int64_t rotary_dim, bool interleaved, bool inverse) {
  const int64_t rows = B * T, total = rows * NH * HS;
  if (total <= 0) return;
  k_rope<<<grid_for(total, 256), 256, 0, cur_stream()>>>(out, x, positions, inv_freq, rows, NH, HS,
                                                         rotary_dim / 2, interleaved,
                                                         inverse ? -1.0f : 1.0f);
  QLAUNCHED();
}

}  // namespace quartet::cuda
