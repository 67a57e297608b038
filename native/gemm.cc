// Matrix products (native/gemm.h): dispatch between a BLAS, where the build found
// one, and the project's own kernels. This first version is a plain triple loop
// so the addon links; the blocked kernels replace it.
#include "gemm.h"

#include <cmath>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace quartet {

namespace {
int g_threads = 1;
bool g_use_blas = true;
}  // namespace

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb,
          float beta, float* C, int64_t ldc) {
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int64_t i = 0; i < M; i++) {
    for (int64_t j = 0; j < N; j++) {
      float acc = 0.0f;
      for (int64_t p = 0; p < K; p++) {
        float a = transA ? A[p * lda + i] : A[i * lda + p];
        float b = transB ? B[j * ldb + p] : B[p * ldb + j];
        acc += a * b;
      }
      float* c = &C[i * ldc + j];
      *c = beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;
    }
  }
}

void gemm_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, int64_t strideA,
                  const float* B, int64_t ldb, int64_t strideB,
                  float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch) {
  for (int64_t b = 0; b < batch; b++)
    gemm(transA, transB, M, N, K, alpha, A + b * strideA, lda, B + b * strideB, ldb,
         beta, C + b * strideC, ldc);
}

void gemm_set_threads(int n) { g_threads = n < 1 ? 1 : n; }
const char* gemm_blas_name() { return "own"; }
void gemm_use_blas(bool use) { g_use_blas = use; }
bool gemm_using_blas() { return false; }

}  // namespace quartet
