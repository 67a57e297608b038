// Matrix products through cuBLAS, with the row-major contract of native/gemm.h.
//
// cuBLAS is column-major. A row-major [R, C] matrix with row stride ld is the same
// memory as a column-major [C, R] matrix with leading dimension ld, i.e. its
// transpose. So row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T:
// call cuBLAS with the operands swapped (B first), M and N swapped, and each
// operand's own transpose flag unchanged.
//
// fp32 runs with CUBLAS_COMPUTE_32F (true fp32, not TF32) unless gemm_allow_tf32;
// bf16 operands use CUBLAS_COMPUTE_32F too (fp32 accumulation) with an fp32 or bf16 C.
// Built with -DQUARTET_NO_CUBLAS where no cuBLAS was found: every call then throws.
#include <climits>
#include <cstdio>

#include "common.cuh"

#ifndef QUARTET_NO_CUBLAS
#include <cublas_v2.h>
#include <cuda_bf16.h>
#endif

namespace quartet::cuda {

#ifdef QUARTET_NO_CUBLAS

bool have_cublas() { return false; }
void gemm_allow_tf32(bool) {}
#define NO_CUBLAS() fail_msg("this build has no cuBLAS", __FILE__, __LINE__)
void gemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
          int64_t, float, float*, int64_t) { NO_CUBLAS(); }
void gemm_batched(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                  const float*, int64_t, int64_t, float, float*, int64_t, int64_t, int64_t) { NO_CUBLAS(); }
void gemm_bf16(bool, bool, int64_t, int64_t, int64_t, float, const uint16_t*, int64_t,
               const uint16_t*, int64_t, float, void*, int64_t, bool) { NO_CUBLAS(); }
void gemm_bf16_batched(bool, bool, int64_t, int64_t, int64_t, float, const uint16_t*, int64_t,
                       int64_t, const uint16_t*, int64_t, int64_t, float, void*, int64_t, int64_t,
                       int64_t, bool) { NO_CUBLAS(); }

#else

namespace {

cublasHandle_t g_handle = nullptr;
bool g_tf32 = false;

void check(cublasStatus_t s, const char* what, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s: cuBLAS status %d", what, static_cast<int>(s));
    fail_msg(msg, __FILE__, line);
  }
}
#define QBLAS(x) check((x), #x, __LINE__)

// The handle is created on first use (it allocates on the device) and bound to the
// current stream on every call.
cublasHandle_t handle() {
  if (!g_handle) QBLAS(cublasCreate(&g_handle));
  QBLAS(cublasSetStream(g_handle, cur_stream()));
  return g_handle;
}

__global__ void scale_c(void* C, bool bf16, int64_t M, int64_t N, int64_t ldc, int64_t strideC,
                        int64_t total, float beta) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
       e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t b = e / (M * N), r = (e / N) % M, c = e % N;
    const int64_t at = b * strideC + r * ldc + c;
    if (bf16) {
      __nv_bfloat16* p = static_cast<__nv_bfloat16*>(C) + at;
      *p = __float2bfloat16_rn(beta == 0.0f ? 0.0f : beta * __bfloat162float(*p));
    } else {
      float* p = static_cast<float*>(C) + at;
      *p = beta == 0.0f ? 0.0f : beta * *p;
    }
  }
}

int as_int(int64_t v, const char* what) {
  QREQUIRE(v >= 0 && v <= INT_MAX, what);
  return static_cast<int>(v);
}

// The one entry point: strided-batched GemmEx covers every case (batch 1 included).
void gemm_any(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
              const void* A, cudaDataType_t ta, int64_t lda, int64_t strideA, const void* B,
              cudaDataType_t tb, int64_t ldb, int64_t strideB, float beta, void* C,
              cudaDataType_t tc, int64_t ldc, int64_t strideC, int64_t batch, bool fp32_inputs) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  const int m = as_int(M, "gemm: M too large"), n = as_int(N, "gemm: N too large");
  const int k = as_int(K, "gemm: K too large"), nb = as_int(batch, "gemm: batch too large");
  const int ilda = as_int(lda, "gemm: lda too large"), ildb = as_int(ldb, "gemm: ldb too large");
  const int ildc = as_int(ldc, "gemm: ldc too large");
  const cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasComputeType_t compute =
      fp32_inputs && g_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  cublasHandle_t h = handle();
  if (k == 0) {
    // An empty sum: C = beta * C (beta 0 writes zeros over whatever C held).
    const int64_t total = batch * M * N;
    scale_c<<<grid_for(total, 256), 256, 0, cur_stream()>>>(C, tc == CUDA_R_16BF, M, N, ldc,
                                                            strideC, total, beta);
    QLAUNCHED();
    return;
  }
  QBLAS(cublasGemmStridedBatchedEx(h, opB, opA, n, m, k, &alpha, B, tb, ildb, strideB, A, ta, ilda,
                                   strideA, &beta, C, tc, ildc, strideC, nb, compute,
                                   CUBLAS_GEMM_DEFAULT));
}

}  // namespace

bool have_cublas() { return true; }
void gemm_allow_tf32(bool allow) { g_tf32 = allow; }

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
          int64_t ldc) {
  gemm_any(transA, transB, M, N, K, alpha, A, CUDA_R_32F, lda, 0, B, CUDA_R_32F, ldb, 0, beta, C,
           CUDA_R_32F, ldc, 0, 1, true);
}

void gemm_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, int64_t strideA, const float* B, int64_t ldb,
                  int64_t strideB, float beta, float* C, int64_t ldc, int64_t strideC,
                  int64_t batch) {
  gemm_any(transA, transB, M, N, K, alpha, A, CUDA_R_32F, lda, strideA, B, CUDA_R_32F, ldb,
           strideB, beta, C, CUDA_R_32F, ldc, strideC, batch, true);
}

void gemm_bf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
               const uint16_t* A, int64_t lda, const uint16_t* B, int64_t ldb, float beta,
               void* C, int64_t ldc, bool c_bf16) {
  gemm_any(transA, transB, M, N, K, alpha, A, CUDA_R_16BF, lda, 0, B, CUDA_R_16BF, ldb, 0, beta,
           C, c_bf16 ? CUDA_R_16BF : CUDA_R_32F, ldc, 0, 1, false);
}

void gemm_bf16_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                       const uint16_t* A, int64_t lda, int64_t strideA, const uint16_t* B,
                       int64_t ldb, int64_t strideB, float beta, void* C, int64_t ldc,
                       int64_t strideC, int64_t batch, bool c_bf16) {
  gemm_any(transA, transB, M, N, K, alpha, A, CUDA_R_16BF, lda, strideA, B, CUDA_R_16BF, ldb,
           strideB, beta, C, c_bf16 ? CUDA_R_16BF : CUDA_R_32F, ldc, strideC, batch, false);
}

#endif

}  // namespace quartet::cuda
