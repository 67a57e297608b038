// The project's own sgemm (native/gemm_own.cc), shared by the dispatcher in
// native/gemm.cc and the kernel lab. Same contract as quartet::gemm, with an
// explicit thread count so batched products can run one matrix per thread.
#pragma once
#include <cstdint>

namespace quartet::own {

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb,
           float beta, float* C, int64_t ldc, int nthreads);

// Widest vector ISA the kernels were compiled for: "avx512", "avx2" or "scalar".
const char* simd_name();

}  // namespace quartet::own
