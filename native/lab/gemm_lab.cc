// Kernel lab for sgemm (llm.c dev/ style): a float64 reference, numbered variants,
// a correctness check of every variant at several shapes, then a timing sweep.
// Not part of the addon. Build and run (arguments: runs per shape, threads):
//   g++ -O3 -march=native -fopenmp -std=c++17 native/lab/gemm_lab.cc -o /tmp/gemm_lab && /tmp/gemm_lab 5 1
// Against a BLAS (Debian's packages), add for OpenBLAS
//   -DLAB_OPENBLAS -I/usr/include/x86_64-linux-gnu/openblas-pthread -L/usr/lib/x86_64-linux-gnu/openblas-pthread -lopenblas
// or for BLIS
//   -DLAB_BLIS -I/usr/include/x86_64-linux-gnu/blis-openmp -L/usr/lib/x86_64-linux-gnu/blis-openmp -lblis
// (set OPENBLAS_NUM_THREADS / BLIS_NUM_THREADS to the thread count). Add
// -mno-avx512f for the AVX2 kernels, or use -march=x86-64 for the portable ones.
//
// Measured on the project's machine (AMD Zen 5, 2 cores, shared with other
// builds; one thread timed by its CPU time), GPT-2 shapes, GFLOP/s:
//   v2 ~67, v3 ~205, v4 ~215, v5 180-220 (AVX2 build: 108-119; x86-64 build: ~40),
//   OpenBLAS 0.3.21 ~115-120, BLIS 0.9.0 ~40. Two threads (wall clock, when the
//   machine let us have both cores): v5 365-430, OpenBLAS ~235. Under heavy load
//   (load average 10-15 on 2 cores) OMP_WAIT_POLICY=passive gave 2-3x the
//   throughput of libgomp's default spinning, and up to 100x on decode shapes.
//
// Variants (row-major C[M,N] = A[M,K] @ B[K,N]; 5 and 9 also take transposes):
//   1  naive i-k-j loops (the compiler vectorises the inner j loop)
//   2  packed + blocked, AVX2 6x16 micro-kernel
//   3  packed + blocked, AVX-512 6x32 micro-kernel
//   4  packed + blocked, AVX-512 12x32 micro-kernel
//   5  native/gemm_own.cc as compiled into the addon (the winner: every transpose,
//      the streaming path for few rows, threads)
//   9  cblas_sgemm, when built with a BLAS
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "../gemm_own.cc"

#if defined(LAB_BLIS) || defined(LAB_OPENBLAS)
#include <cblas.h>
#endif

// ---------------------------------------------------------------------------
// reference: float64 accumulation, every transpose
static void gemm_ref(bool tA, bool tB, int M, int N, int K, const float* A, const float* B, double* C) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double acc = 0;
      for (int p = 0; p < K; p++)
        acc += (double)(tA ? A[(size_t)p * M + i] : A[(size_t)i * K + p]) *
               (double)(tB ? B[(size_t)j * K + p] : B[(size_t)p * N + j]);
      C[(size_t)i * N + j] = acc;
    }
}

// ---------------------------------------------------------------------------
// v1: naive
static void gemm_v1(int M, int N, int K, const float* A, const float* B, float* C) {
  for (int i = 0; i < M; i++) {
    float* c = C + (size_t)i * N;
    std::fill(c, c + N, 0.0f);
    for (int p = 0; p < K; p++) {
      float a = A[(size_t)i * K + p];
      const float* b = B + (size_t)p * N;
      for (int j = 0; j < N; j++) c[j] += a * b[j];
    }
  }
}

// ---------------------------------------------------------------------------
// v2-v4: one blocked single-threaded driver over a micro-kernel that computes an
// MR x NR tile from packed panels: a[k*MR + r], b[k*NR + c].
template <int MR, int NR>
static void pack_a(int mc, int kc, const float* A, int lda, float* pa) {
  for (int i = 0; i < mc; i += MR)
    for (int k = 0; k < kc; k++)
      for (int r = 0; r < MR; r++) *pa++ = i + r < mc ? A[(size_t)(i + r) * lda + k] : 0.0f;
}
template <int MR, int NR>
static void pack_b(int kc, int nc, const float* B, int ldb, float* pb) {
  for (int j = 0; j < nc; j += NR)
    for (int k = 0; k < kc; k++)
      for (int c = 0; c < NR; c++) *pb++ = j + c < nc ? B[(size_t)k * ldb + j + c] : 0.0f;
}

#ifdef __AVX2__
static void ukernel_avx2_6x16(int kc, const float* a, const float* b, float* c, int ldc, bool acc_c) {
  __m256 r[6][2];
  for (int i = 0; i < 6; i++) r[i][0] = r[i][1] = _mm256_setzero_ps();
  for (int k = 0; k < kc; k++, a += 6, b += 16) {
    __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
      __m256 ai = _mm256_broadcast_ss(a + i);
      r[i][0] = _mm256_fmadd_ps(ai, b0, r[i][0]);
      r[i][1] = _mm256_fmadd_ps(ai, b1, r[i][1]);
    }
  }
  for (int i = 0; i < 6; i++) {
    float* ci = c + (size_t)i * ldc;
    if (acc_c) {
      r[i][0] = _mm256_add_ps(r[i][0], _mm256_loadu_ps(ci));
      r[i][1] = _mm256_add_ps(r[i][1], _mm256_loadu_ps(ci + 8));
    }
    _mm256_storeu_ps(ci, r[i][0]);
    _mm256_storeu_ps(ci + 8, r[i][1]);
  }
}
#endif

#ifdef __AVX512F__
template <int MR>
static void ukernel_avx512_x32(int kc, const float* a, const float* b, float* c, int ldc, bool acc_c) {
  __m512 r[MR][2];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) r[i][0] = r[i][1] = _mm512_setzero_ps();
  for (int k = 0; k < kc; k++, a += MR, b += 32) {
    __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      __m512 ai = _mm512_set1_ps(a[i]);
      r[i][0] = _mm512_fmadd_ps(ai, b0, r[i][0]);
      r[i][1] = _mm512_fmadd_ps(ai, b1, r[i][1]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) {
    float* ci = c + (size_t)i * ldc;
    if (acc_c) {
      r[i][0] = _mm512_add_ps(r[i][0], _mm512_loadu_ps(ci));
      r[i][1] = _mm512_add_ps(r[i][1], _mm512_loadu_ps(ci + 16));
    }
    _mm512_storeu_ps(ci, r[i][0]);
    _mm512_storeu_ps(ci + 16, r[i][1]);
  }
}
#endif

using UKernel = void (*)(int, const float*, const float*, float*, int, bool);

// Loop order: N block (B panel in L2) -> K block -> A rows; the A micro-panel
// stays in L1 across the B micro-panels of the block. Edge tiles go through a
// scratch tile.
template <int MR, int NR>
static void gemm_blocked(UKernel uk, int M, int N, int K, const float* A, const float* B, float* C,
                         int MC, int KC, int NC) {
  static std::vector<float> pa_buf, pb_buf;
  pa_buf.resize((size_t)(MC + MR) * KC);
  pb_buf.resize((size_t)(NC + NR) * KC);
  float tile[MR * NR];
  for (int jc = 0; jc < N; jc += NC) {
    int nc = std::min(NC, N - jc);
    for (int pc = 0; pc < K; pc += KC) {
      int kc = std::min(KC, K - pc);
      pack_b<MR, NR>(kc, nc, B + (size_t)pc * N + jc, N, pb_buf.data());
      for (int ic = 0; ic < M; ic += MC) {
        int mc = std::min(MC, M - ic);
        pack_a<MR, NR>(mc, kc, A + (size_t)ic * K + pc, K, pa_buf.data());
        for (int ir = 0; ir < mc; ir += MR) {
          const float* pa = pa_buf.data() + (size_t)ir * kc;
          for (int jr = 0; jr < nc; jr += NR) {
            const float* pb = pb_buf.data() + (size_t)jr * kc;
            float* c = C + (size_t)(ic + ir) * N + jc + jr;
            int mr = std::min(MR, mc - ir), nr = std::min(NR, nc - jr);
            if (mr == MR && nr == NR) {
              uk(kc, pa, pb, c, N, pc > 0);
            } else {
              uk(kc, pa, pb, tile, NR, false);
              for (int i = 0; i < mr; i++)
                for (int j = 0; j < nr; j++)
                  c[(size_t)i * N + j] = (pc > 0 ? c[(size_t)i * N + j] : 0.0f) + tile[i * NR + j];
            }
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
struct Variant {
  int id;
  const char* name;
  void (*fn)(int, int, int, const float*, const float*, float*);
};

static int g_threads = 1;
static void v1(int M, int N, int K, const float* A, const float* B, float* C) { gemm_v1(M, N, K, A, B, C); }
#ifdef __AVX2__
static void v2(int M, int N, int K, const float* A, const float* B, float* C) {
  gemm_blocked<6, 16>(ukernel_avx2_6x16, M, N, K, A, B, C, 72, 256, 4080);
}
#endif
#ifdef __AVX512F__
static void v3(int M, int N, int K, const float* A, const float* B, float* C) {
  gemm_blocked<6, 32>(ukernel_avx512_x32<6>, M, N, K, A, B, C, 96, 384, 2048);
}
static void v4(int M, int N, int K, const float* A, const float* B, float* C) {
  gemm_blocked<12, 32>(ukernel_avx512_x32<12>, M, N, K, A, B, C, 96, 384, 2048);
}
#endif
// The sweep sets these for the variants that take transposes (5 and 9).
static bool g_tA = false, g_tB = false;
static void v5(int M, int N, int K, const float* A, const float* B, float* C) {
  quartet::own::sgemm(g_tA, g_tB, M, N, K, 1.0f, A, g_tA ? M : K, B, g_tB ? K : N, 0.0f, C, N, g_threads);
}
#if defined(LAB_BLIS) || defined(LAB_OPENBLAS)
static void v9(int M, int N, int K, const float* A, const float* B, float* C) {
  cblas_sgemm(CblasRowMajor, g_tA ? CblasTrans : CblasNoTrans, g_tB ? CblasTrans : CblasNoTrans, M, N, K,
              1.0f, A, g_tA ? M : K, B, g_tB ? K : N, 0.0f, C, N);
}
#endif

static const Variant kVariants[] = {
    {1, "naive ikj", v1},
#ifdef __AVX2__
    {2, "blocked avx2 6x16", v2},
#endif
#ifdef __AVX512F__
    {3, "blocked avx512 6x32", v3},
    {4, "blocked avx512 12x32", v4},
#endif
    {5, "gemm_own.cc", v5},
#if defined(LAB_BLIS) || defined(LAB_OPENBLAS)
    {9, "cblas_sgemm", v9},
#endif
};

static void fill(std::vector<float>& v, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (auto& x : v) x = d(rng);
}

// max |got - ref| / sqrt(K): inputs in [-1, 1] make the rounding error grow like
// sqrt(K), so one tolerance fits every K.
static double check(int K, const std::vector<float>& got, const std::vector<double>& ref) {
  double worst = 0;
  for (size_t i = 0; i < ref.size(); i++) worst = std::max(worst, std::fabs(got[i] - ref[i]) / std::sqrt((double)K));
  return worst;
}

// All four transposes, alpha/beta, NaN in C with beta=0, through gemm_own.cc.
static bool check_own_api() {
  bool ok = true;
  const int shapes[][3] = {{1, 1, 1}, {37, 53, 19}, {5, 300, 70}, {130, 7, 129}, {200, 300, 400}};
  for (auto& s : shapes)
    for (int t = 0; t < 4; t++)
      for (int thr = 1; thr <= 2; thr++) {
        int M = s[0], N = s[1], K = s[2];
        bool tA = t & 1, tB = t & 2;
        std::vector<float> A((size_t)M * K), B((size_t)K * N), C((size_t)M * N), C0;
        fill(A, 1), fill(B, 2), fill(C, 3);
        C0 = C;
        std::vector<double> R((size_t)M * N);
        gemm_ref(tA, tB, M, N, K, A.data(), B.data(), R.data());
        quartet::own::sgemm(tA, tB, M, N, K, 0.5f, A.data(), tA ? M : K, B.data(), tB ? K : N, -2.0f,
                            C.data(), N, thr);
        double worst = 0;
        for (size_t i = 0; i < R.size(); i++) worst = std::max(worst, std::fabs(C[i] - (0.5 * R[i] - 2.0 * C0[i])));
        std::fill(C.begin(), C.end(), NAN);
        quartet::own::sgemm(tA, tB, M, N, K, 1.0f, A.data(), tA ? M : K, B.data(), tB ? K : N, 0.0f,
                            C.data(), N, thr);
        for (size_t i = 0; i < R.size(); i++) worst = std::max(worst, (double)std::fabs(C[i] - R[i]));
        bool pass = worst < 1e-4 * std::sqrt((double)K) + 1e-6 && std::isfinite(worst);
        if (!pass) printf("  gemm_own %dx%dx%d tA=%d tB=%d threads=%d: max err %.3g FAIL\n", M, N, K, tA, tB, thr, worst);
        ok &= pass;
      }
  printf("gemm_own.cc transposes/alpha/beta/NaN: %s\n", ok ? "ok" : "FAIL");
  return ok;
}

// On a shared machine, one thread is timed by its own CPU time (time spent
// descheduled does not count); several threads by the wall clock.
static double now() {
  timespec ts;
  clock_gettime(g_threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 5;
  g_threads = argc > 2 ? atoi(argv[2]) : 1;
  omp_set_num_threads(g_threads);
#ifdef LAB_OPENBLAS
  openblas_set_num_threads(g_threads);
#endif
  printf("gemm_own.cc compiled for %s\n", quartet::own::simd_name());
  // 1. correctness of every variant at several shapes (edges included)
  const int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {37, 53, 19}, {64, 64, 64}, {129, 257, 385}, {6, 32, 1000}};
  bool ok = true;
  for (auto& s : shapes) {
    int M = s[0], N = s[1], K = s[2];
    std::vector<float> A((size_t)M * K), B((size_t)K * N), C((size_t)M * N);
    fill(A, 1), fill(B, 2);
    std::vector<double> R((size_t)M * N);
    gemm_ref(false, false, M, N, K, A.data(), B.data(), R.data());
    for (auto& v : kVariants) {
      std::fill(C.begin(), C.end(), NAN);
      v.fn(M, N, K, A.data(), B.data(), C.data());
      double e = check(K, C, R);
      bool pass = e < 1e-5 && std::isfinite(e);
      if (!pass) printf("  variant %d (%s) at %dx%dx%d: err %.3g FAIL\n", v.id, v.name, M, N, K, e);
      ok &= pass;
    }
  }
  printf("variants at %zu shapes: %s\n", sizeof(shapes) / sizeof(shapes[0]), ok ? "ok" : "FAIL");
  ok &= check_own_api();
  if (!ok) return 1;

  // 2. timing sweep: GPT-2-small shapes (M tokens, N out, K in), best of `reps`
  // {M, N, K, transA, transB}: forward x @ W^T (W [out, in]), dX = dY @ W, dW = dY^T @ X,
  // then decode shapes. Variants 1-4 only do the plain product.
  const int sweep[][5] = {{2048, 2304, 768, 0, 0}, {2048, 2304, 768, 0, 1}, {2048, 768, 2304, 0, 0},
                          {2304, 768, 2048, 1, 0}, {2048, 768, 768, 0, 1},  {2048, 3072, 768, 0, 1},
                          {2048, 768, 3072, 0, 1}, {3072, 768, 2048, 1, 0}, {512, 50257, 768, 0, 1}, {512, 768, 50257, 0, 0}, {50257, 768, 512, 1, 0},
                          
                          {8, 2304, 768, 0, 1},    {8, 2304, 768, 0, 0},    {1, 3072, 768, 0, 1},
                          {1, 3072, 768, 0, 0},    {4, 50257, 768, 0, 1},   {1, 50257, 768, 0, 1},
                             {64, 64, 64, 0, 1}};
  printf("\nthreads %d, best of %d (%s time), GFLOP/s\n%-22s", g_threads, reps,
         g_threads == 1 ? "thread CPU" : "wall", "MxNxK");
  for (auto& v : kVariants) printf(" %9d", v.id);
  printf("\n");
  for (auto& s : sweep) {
    int M = s[0], N = s[1], K = s[2];
    std::vector<float> A((size_t)M * K), B((size_t)K * N), C((size_t)M * N);
    fill(A, 1), fill(B, 2);
    g_tA = s[3], g_tB = s[4];
    char label[64];
    snprintf(label, sizeof label, "%dx%dx%d %c%c", M, N, K, g_tA ? 'T' : 'N', g_tB ? 'T' : 'N');
    printf("%-22s", label);
    for (auto& v : kVariants) {
      bool plain_only = v.id < 5;
      if ((plain_only && (g_tA || g_tB)) || (v.id == 1 && (double)M * N * K > 2e9)) { printf(" %9s", "-"); continue; }
      double best = 1e30;
      for (int r = 0; r < reps; r++) {
        double t0 = now();
        v.fn(M, N, K, A.data(), B.data(), C.data());
        best = std::min(best, now() - t0);
      }
      printf(" %9.1f", 2.0 * M * N * K / best * 1e-9);
      fflush(stdout);
    }
    printf("\n");
  }
  return 0;
}
