// Shared by the CUDA kernel files: error checks, launch sizes, warp reductions and a
// grow-only device workspace. Device code stays plain: fp32 arithmetic, no fast-math
// (expf, erfcf, sqrtf and '/' are the IEEE-accurate forms, as nvcc compiles them by
// default), so results track the CPU kernels to float rounding.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops.h"

namespace quartet::cuda {

[[noreturn]] void fail(cudaError_t err, const char* what, const char* file, int line);
[[noreturn]] void fail_msg(const char* what, const char* file, int line);

#define QCUDA(x)                                                                  \
  do {                                                                            \
    cudaError_t qcuda_err_ = (x);                                                 \
    if (qcuda_err_ != cudaSuccess) ::quartet::cuda::fail(qcuda_err_, #x, __FILE__, __LINE__); \
  } while (0)
// After every launch: a bad configuration is reported here, not at the next sync.
#define QLAUNCHED() QCUDA(cudaGetLastError())
#define QREQUIRE(cond, msg)                                                       \
  do {                                                                            \
    if (!(cond)) ::quartet::cuda::fail_msg(msg, __FILE__, __LINE__);              \
  } while (0)

inline cudaStream_t cur_stream() { return static_cast<cudaStream_t>(get_stream()); }

// Grid for a grid-stride loop over n items: enough blocks to fill the chip several
// times over, never more than there is work for.
inline unsigned grid_for(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  const int64_t cap = 132 * 32;  // 32 blocks per SM of an H100/H200 is plenty
  if (blocks > cap) blocks = cap;
  return blocks < 1 ? 1u : static_cast<unsigned>(blocks);
}

// Scratch on the device, valid until the next call that asks for it (ops on one
// stream run in order, so the next op's use cannot overlap this one's).
void* workspace(size_t bytes);

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

}  // namespace quartet::cuda
