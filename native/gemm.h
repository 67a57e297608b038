// Matrix products over row-major float32 buffers: the project's own blocked,
// vectorised kernels, or a BLAS where the build found one (detect-blas.js).
#pragma once
#include <cstdint>

namespace quartet {

// C[M,N] = alpha * op(A) @ op(B) + beta * C. op(A) is [M,K]: A stored [M,K] with row stride
// lda, or [K,M] when transA. op(B) is [K,N]: B stored [K,N] (ldb), or [N,K] when transB.
// beta == 0 must ignore C's old contents (it may hold NaN).
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb,
          float beta, float* C, int64_t ldc);

// `batch` gemms; matrix i of each operand starts at i * stride (a stride of 0 broadcasts).
void gemm_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, int64_t strideA,
                  const float* B, int64_t ldb, int64_t strideB,
                  float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch);

// Thread count for the products (the BLAS's own pool where one is used).
void gemm_set_threads(int n);
// Name of the BLAS compiled in ("openblas", "blis") or "own" when none.
const char* gemm_blas_name();
// true: use the BLAS when compiled in; false: always the project's own kernels.
void gemm_use_blas(bool use);
bool gemm_using_blas();

}  // namespace quartet
