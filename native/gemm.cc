// Matrix products (native/gemm.h): dispatch between a BLAS, where the build found
// one (native/detect-blas.cjs), and the project's own kernels (gemm_own.cc).
//
// Which one runs by default, from native/lab/gemm_lab.cc on this project's
// machines (AMD Zen 5, one thread, GPT-2 shapes, CPU time): the own AVX-512
// kernel about 180-220 GFLOP/s, Debian's OpenBLAS 0.3.21 about 115-120 (it
// runs AVX2 kernels on this CPU), Debian's BLIS 0.9.0 about 40 (generic code).
// So an AVX-512 build runs its own kernel unless told otherwise. Built for AVX2
// only, the own kernel (about 110-119) is level with OpenBLAS, and the BLAS's
// hand-written assembly, tuned for more CPUs than ours, is preferred there.
#include "gemm.h"

#include <climits>
#include <initializer_list>

#include "gemm_own.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(QUARTET_BLAS_OPENBLAS)
#include <cblas.h>
#define QUARTET_HAVE_BLAS 1
static const char* const kBlasName = "openblas";
static void blas_set_threads(int n) { openblas_set_num_threads(n); }
#elif defined(QUARTET_BLAS_BLIS)
#include <blis.h>
#include <cblas.h>
#define QUARTET_HAVE_BLAS 1
static const char* const kBlasName = "blis";
static void blas_set_threads(int n) { bli_thread_set_num_threads(n); }
#else
#define QUARTET_HAVE_BLAS 0
static const char* const kBlasName = "own";
#endif

namespace quartet {

namespace {
// Until gemm_set_threads is called, as many threads as the other kernels (OpenMP's default).
int default_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
int g_threads = default_threads();
#if QUARTET_HAVE_BLAS && !defined(__AVX512F__)
bool g_use_blas = true;
#else
bool g_use_blas = false;
#endif

#if QUARTET_HAVE_BLAS
// The CBLAS interface takes 32-bit ints; anything larger goes to the own kernels.
bool fits_blas(int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc) {
  for (int64_t v : {M, N, K, lda, ldb, ldc})
    if (v > INT_MAX) return false;
  return true;
}

void blas_gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
               int64_t ldc) {
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A,
              static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}
#endif
}  // namespace

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb,
          float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
#if QUARTET_HAVE_BLAS
  if (g_use_blas && fits_blas(M, N, K, lda, ldb, ldc)) {
    blas_gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#endif
  own::sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, g_threads);
}

void gemm_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, int64_t strideA,
                  const float* B, int64_t ldb, int64_t strideB,
                  float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  const int nt = g_threads;
  // One matrix per thread when the batch divides evenly or is long enough for
  // the remainder not to matter (attention's B*NH small products); otherwise
  // one threaded product after another.
  const bool per_thread = nt > 1 && (batch % nt == 0 || batch >= 4 * nt);
#if QUARTET_HAVE_BLAS
  if (g_use_blas && !per_thread && fits_blas(M, N, K, lda, ldb, ldc)) {
    for (int64_t b = 0; b < batch; b++)
      blas_gemm(transA, transB, M, N, K, alpha, A + b * strideA, lda, B + b * strideB, ldb, beta,
                C + b * strideC, ldc);
    return;
  }
#endif
  if (per_thread) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t b = 0; b < batch; b++)
      own::sgemm(transA, transB, M, N, K, alpha, A + b * strideA, lda, B + b * strideB, ldb, beta,
                 C + b * strideC, ldc, 1);
  } else {
    for (int64_t b = 0; b < batch; b++)
      own::sgemm(transA, transB, M, N, K, alpha, A + b * strideA, lda, B + b * strideB, ldb, beta,
                 C + b * strideC, ldc, nt);
  }
}

void gemm_set_threads(int n) {
  g_threads = n < 1 ? 1 : n;
#if QUARTET_HAVE_BLAS
  blas_set_threads(g_threads);
#endif
}

const char* gemm_blas_name() { return kBlasName; }

void gemm_use_blas(bool use) { g_use_blas = use; }

bool gemm_using_blas() { return QUARTET_HAVE_BLAS && g_use_blas; }

}  // namespace quartet
