// The project's own sgemm, GotoBLAS/BLIS style: op(A) and op(B) are packed into
// cache-sized panels (every transpose becomes the same packed layout), and a
// register-blocked micro-kernel computes an MR x NR tile of C with FMAs.
// AVX-512 where __AVX512F__, AVX2+FMA otherwise, and a plain-C++ "vector" so the
// file builds anywhere. Products with at most kSmall rows (decode shapes) or
// columns skip packing and stream the other operand once.
// Developed and timed in native/lab/gemm_lab.cc.
#include "gemm_own.h"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace quartet::own {

namespace {

// ---- a thin vector layer: the kernels below are written once over it ----
#if defined(__AVX512F__)
using vec = __m512;
constexpr int VL = 16, kRegs = 32;
constexpr const char* kSimd = "avx512";
inline vec vzero() { return _mm512_setzero_ps(); }
inline vec vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vec v) { _mm512_storeu_ps(p, v); }
inline vec vset1(float x) { return _mm512_set1_ps(x); }
inline vec vfma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
inline vec vmul(vec a, vec b) { return _mm512_mul_ps(a, b); }
inline float vsum(vec v) { return _mm512_reduce_add_ps(v); }
#elif defined(__AVX2__) && defined(__FMA__)
using vec = __m256;
constexpr int VL = 8, kRegs = 16;
constexpr const char* kSimd = "avx2";
inline vec vzero() { return _mm256_setzero_ps(); }
inline vec vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vec v) { _mm256_storeu_ps(p, v); }
inline vec vset1(float x) { return _mm256_set1_ps(x); }
inline vec vfma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
inline vec vmul(vec a, vec b) { return _mm256_mul_ps(a, b); }
inline float vsum(vec v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#else
// Portable fallback: four floats the compiler may map onto whatever SIMD it has.
struct vec { float v[4]; };
constexpr int VL = 4, kRegs = 16;
constexpr const char* kSimd = "scalar";
inline vec vzero() { return vec{{0, 0, 0, 0}}; }
inline vec vload(const float* p) { return vec{{p[0], p[1], p[2], p[3]}}; }
inline void vstore(float* p, vec a) { for (int i = 0; i < 4; i++) p[i] = a.v[i]; }
inline vec vset1(float x) { return vec{{x, x, x, x}}; }
inline vec vfma(vec a, vec b, vec c) { for (int i = 0; i < 4; i++) c.v[i] += a.v[i] * b.v[i]; return c; }
inline vec vmul(vec a, vec b) { for (int i = 0; i < 4; i++) a.v[i] *= b.v[i]; return a; }
inline float vsum(vec a) { return (a.v[0] + a.v[1]) + (a.v[2] + a.v[3]); }
#endif

// Micro-tile: MR rows x NR = 2 vectors. 12x32 on AVX-512 (24 accumulators of 32
// registers), 6x16 on AVX2 (12 of 16): the sizes measured best in the lab.
constexpr int NR = 2 * VL;
constexpr int MR = kRegs == 32 ? 12 : (VL == 8 ? 6 : 4);
// Cache blocking: a KC-deep A micro-panel (MR x KC, 18 KB) stays in L1 while the
// B block (KC x NC, <= 0.5 MB) streams from L2; the packed A block (MC x KC) sits in L3.
constexpr int64_t KC = 384, NC = 320, MC = 1536;
// Products with at most this many rows (or columns) take the streaming path.
constexpr int64_t kSmall = 8;
// Below this many flops a second thread costs more than it brings.
constexpr double kMinParallelFlops = 1 << 20;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// C = alpha * v + beta * C, where beta == 0 never reads C (it may hold NaN).
inline void put(float* c, float v, float alpha, float beta) {
  *c = beta == 0.0f ? alpha * v : alpha * v + beta * *c;
}

// A grow-only, 64-byte aligned scratch buffer, one per thread and purpose.
struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch(Scratch&& o) noexcept : p(o.p), cap(o.cap) { o.p = nullptr; o.cap = 0; }
  ~Scratch() { std::free(p); }
  float* get(size_t n) {
    if (n > cap) {
      std::free(p);
      p = static_cast<float*>(std::aligned_alloc(64, round_up(static_cast<int64_t>(n) * 4, 64)));
      cap = p ? n : 0;
      if (!p) throw std::bad_alloc();
    }
    return p;
  }
};

// ---- packing ----
// Packed A: panel p holds pa[p * MR * kc + k * MR + r] = op(A)[i0 + p * MR + r, p0 + k],
// zero rows past the mr rows left. Panels [p_lo, p_hi) of a block starting at row i0.
void pack_a_panels(bool tA, const float* A, int64_t lda, int64_t i0, int64_t rows, int64_t p_lo,
                   int64_t p_hi, int64_t p0, int64_t kc, float* pa) {
  if (!tA) {
    for (int64_t p = p_lo; p < p_hi; p++) {
      float* dst = pa + p * MR * kc;
      const int64_t mr = std::min<int64_t>(MR, rows - p * MR);
      for (int64_t r = 0; r < mr; r++) {
        const float* src = A + (i0 + p * MR + r) * lda + p0;
        for (int64_t k = 0; k < kc; k++) dst[k * MR + r] = src[k];
      }
      for (int64_t r = mr; r < MR; r++)
        for (int64_t k = 0; k < kc; k++) dst[k * MR + r] = 0.0f;
    }
  } else {
    // op(A) columns are rows of A: read each row of A once across all the
    // panels (one panel at a time would touch a new page for every k).
    for (int64_t k = 0; k < kc; k++) {
      const float* src = A + (p0 + k) * lda + i0;
      for (int64_t p = p_lo; p < p_hi; p++) {
        float* dst = pa + p * MR * kc + k * MR;
        const int64_t mr = std::min<int64_t>(MR, rows - p * MR);
        if (mr == MR) {
          for (int r = 0; r < MR; r++) dst[r] = src[p * MR + r];
        } else {
          for (int64_t r = 0; r < MR; r++) dst[r] = r < mr ? src[p * MR + r] : 0.0f;
        }
      }
    }
  }
}

// Packed B panel: pb[k * NR + c] = op(B)[p0 + k, j0 + c], zero columns past N.
void pack_b_panel(bool tB, const float* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
                  int64_t nr, float* dst) {
  if (!tB) {
    for (int64_t k = 0; k < kc; k++) {
      const float* src = B + (p0 + k) * ldb + j0;
      float* d = dst + k * NR;
      if (nr == NR) {
        for (int v = 0; v < NR; v += VL) vstore(d + v, vload(src + v));
      } else {
        for (int64_t c = 0; c < nr; c++) d[c] = src[c];
        for (int64_t c = nr; c < NR; c++) d[c] = 0.0f;
      }
    }
  } else {
    // A transpose: 8 k at a time, so the writes stay within a 1 KB stretch of the panel.
    constexpr int64_t KB = 8;
    for (int64_t k0 = 0; k0 < kc; k0 += KB) {
      const int64_t kb = std::min(KB, kc - k0);
      for (int64_t c = 0; c < nr; c++) {
        const float* src = B + (j0 + c) * ldb + p0 + k0;
        for (int64_t k = 0; k < kb; k++) dst[(k0 + k) * NR + c] = src[k];
      }
      for (int64_t c = nr; c < NR; c++)
        for (int64_t k = 0; k < kb; k++) dst[(k0 + k) * NR + c] = 0.0f;
    }
  }
}

// ---- the micro-kernel: C[MR, NR] = alpha * pa @ pb + beta * C ----
void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* c,
                  int64_t ldc, float alpha, float beta) {
  vec acc[MR][2];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = vzero();
  for (int64_t k = 0; k < kc; k++, a += MR, b += NR) {
    vec b0 = vload(b), b1 = vload(b + VL);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      vec ai = vset1(a[i]);
      acc[i][0] = vfma(ai, b0, acc[i][0]);
      acc[i][1] = vfma(ai, b1, acc[i][1]);
    }
  }
  vec va = vset1(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      vstore(c + i * ldc, vmul(acc[i][0], va));
      vstore(c + i * ldc + VL, vmul(acc[i][1], va));
    }
  } else {
    vec vb = vset1(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      float* ci = c + i * ldc;
      vstore(ci, vfma(acc[i][0], va, vmul(vload(ci), vb)));
      vstore(ci + VL, vfma(acc[i][1], va, vmul(vload(ci + VL), vb)));
    }
  }
}

// A tile at the edge of C: computed in full into a scratch tile, then copied.
void edge_tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr,
               int64_t nr, float alpha, float beta) {
  alignas(64) float tile[MR * NR];
  micro_kernel(kc, a, b, tile, NR, 1.0f, 0.0f);
  for (int64_t i = 0; i < mr; i++)
    for (int64_t j = 0; j < nr; j++) put(c + i * ldc + j, tile[i * NR + j], alpha, beta);
}

// ---- the blocked path ----
// One thread's product, with its own packing buffers pa (MC x KC) and pb (NC x KC).
void blocked_one_thread(bool tA, bool tB, int64_t M, int64_t N, int64_t K, float alpha,
                        const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                        float* C, int64_t ldc, float* pa, float* pb) {
  // Blocks of at most NC columns, all of about the same width.
  const int64_t nc = round_up(ceil_div(N, ceil_div(N, NC)), NR);
  for (int64_t ic = 0; ic < M; ic += MC) {
    const int64_t mc = std::min(MC, M - ic);
    const int64_t panels = ceil_div(mc, MR);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const float beta_k = pc == 0 ? beta : 1.0f;  // later K blocks accumulate
      pack_a_panels(tA, A, lda, ic, mc, 0, panels, pc, kc, pa);
      for (int64_t j0 = 0; j0 < N; j0 += nc) {
        const int64_t ncur = std::min(nc, N - j0);
        for (int64_t q = 0; q * NR < ncur; q++)
          pack_b_panel(tB, B, ldb, pc, kc, j0 + q * NR, std::min<int64_t>(NR, ncur - q * NR), pb + q * NR * kc);
        for (int64_t p = 0; p < panels; p++) {
          const int64_t i0 = p * MR, mr = std::min<int64_t>(MR, mc - i0);
          const float* ap = pa + p * MR * kc;
          for (int64_t q = 0; q * NR < ncur; q++) {
            const int64_t nr = std::min<int64_t>(NR, ncur - q * NR);
            float* c = C + (ic + i0) * ldc + j0 + q * NR;
            if (mr == MR && nr == NR)
              micro_kernel(kc, ap, pb + q * NR * kc, c, ldc, alpha, beta_k);
            else
              edge_tile(kc, ap, pb + q * NR * kc, c, ldc, mr, nr, alpha, beta_k);
          }
        }
      }
    }
  }
}

// Threads split C into bands of whole micro-tiles — by columns where there are
// enough, else by rows — and each runs the one-thread product on its band,
// packing its own copy of the shared operand. That costs a few percent more
// packing but leaves no barrier inside the product: on a machine shared with
// other processes, a descheduled thread then holds up nobody until the end.
void sgemm_blocked(bool tA, bool tB, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                   float* C, int64_t ldc, int nthreads) {
  const int64_t col_units = ceil_div(N, NR), row_units = ceil_div(M, MR);
  const bool by_cols = col_units >= 2 * nthreads || col_units >= row_units;
  const int64_t units = by_cols ? col_units : row_units;
  const int parts = static_cast<int>(std::min<int64_t>(nthreads, units));

  // All buffers are allocated here, on the calling thread, before the parallel region.
  thread_local std::vector<Scratch> pa_bufs, pb_bufs;
  if (pa_bufs.size() < static_cast<size_t>(parts)) {
    pa_bufs.resize(parts);
    pb_bufs.resize(parts);
  }
  std::vector<float*> pas(parts), pbs(parts);
  for (int t = 0; t < parts; t++) {
    pas[t] = pa_bufs[t].get(std::min(MC, round_up(M, MR)) * KC);
    pbs[t] = pb_bufs[t].get(std::min(NC, round_up(N, NR)) * KC);
  }

#pragma omp parallel for num_threads(parts) if (parts > 1) schedule(static, 1)
  for (int t = 0; t < parts; t++) {
    const int64_t u0 = units * t / parts, u1 = units * (t + 1) / parts;
    if (by_cols) {
      const int64_t j0 = u0 * NR, j1 = std::min(N, u1 * NR);
      blocked_one_thread(tA, tB, M, j1 - j0, K, alpha, A, lda, tB ? B + j0 * ldb : B + j0, ldb, beta,
                         C + j0, ldc, pas[t], pbs[t]);
    } else {
      const int64_t i0 = u0 * MR, i1 = std::min(M, u1 * MR);
      blocked_one_thread(tA, tB, i1 - i0, N, K, alpha, tA ? A + i0 : A + i0 * lda, lda, B, ldb, beta,
                         C + i0 * ldc, ldc, pas[t], pbs[t]);
    }
  }
}

// ---- the streaming path for few rows (decode) ----
// `a` holds the MM rows of op(A) contiguously ([MM, K]). C is addressed with a
// row stride rs and a column stride cs, so the same code serves C^T.

// B stored [K, N]: each task owns a stretch of at most kChunk columns and walks
// down the rows of B four at a time, so every row of B is read once, in long
// contiguous runs, and each accumulator load/store is shared by four FMAs.
constexpr int64_t kChunk = 512;
template <int MM>
void rows_times_b(int64_t K, const float* a, const float* B, int64_t ldb, int64_t j0, int64_t w,
                  float alpha, float beta, float* C, int64_t rs, int64_t cs) {
  alignas(64) float acc[MM][kChunk];
  for (int i = 0; i < MM; i++)
    for (int64_t c = 0; c < w; c++) acc[i][c] = 0.0f;
  const int64_t wv = w / VL * VL;
  int64_t k = 0;
  for (; k + 4 <= K; k += 4) {
    const float* b0 = B + k * ldb + j0;
    const float* b1 = b0 + ldb;
    const float* b2 = b1 + ldb;
    const float* b3 = b2 + ldb;
    for (int64_t c = 0; c < wv; c += VL) {
      vec v0 = vload(b0 + c), v1 = vload(b1 + c), v2 = vload(b2 + c), v3 = vload(b3 + c);
#pragma GCC unroll 8
      for (int i = 0; i < MM; i++) {
        const float* ai = a + i * K + k;
        vec r = vload(&acc[i][c]);
        r = vfma(vset1(ai[0]), v0, r);
        r = vfma(vset1(ai[1]), v1, r);
        r = vfma(vset1(ai[2]), v2, r);
        r = vfma(vset1(ai[3]), v3, r);
        vstore(&acc[i][c], r);
      }
    }
    for (int64_t c = wv; c < w; c++)
      for (int i = 0; i < MM; i++) {
        const float* ai = a + i * K + k;
        acc[i][c] += ai[0] * b0[c] + ai[1] * b1[c] + ai[2] * b2[c] + ai[3] * b3[c];
      }
  }
  for (; k < K; k++) {
    const float* b0 = B + k * ldb + j0;
    for (int i = 0; i < MM; i++)
      for (int64_t c = 0; c < w; c++) acc[i][c] += a[i * K + k] * b0[c];
  }
  for (int i = 0; i < MM; i++)
    for (int64_t c = 0; c < w; c++) put(C + i * rs + (j0 + c) * cs, acc[i][c], alpha, beta);
}

// B stored [N, K]: each output is the dot product of a row of `a` with a row of
// B; JG rows of B at a time share the loads of `a`.
template <int MM>
void rows_dot_bt(int64_t K, const float* a, const float* B, int64_t ldb, int64_t j0, int64_t jn,
                 float alpha, float beta, float* C, int64_t rs, int64_t cs) {
  constexpr int JG = std::min(4, std::max(1, (kRegs - 4) / MM));
  for (int64_t jb = j0; jb < j0 + jn; jb += JG) {
    const int jg_n = static_cast<int>(std::min<int64_t>(JG, j0 + jn - jb));
    vec acc[MM][JG];
    for (int i = 0; i < MM; i++)
      for (int g = 0; g < JG; g++) acc[i][g] = vzero();
    int64_t k = 0;
    // Rows of B come from memory in short runs (one per row); asking for the
    // next group's rows while this one computes keeps more loads in flight.
    const float* next = jb + 2 * JG <= j0 + jn ? B + (jb + JG) * ldb : nullptr;
    if (jg_n == JG) {
      for (; k + VL <= K; k += VL) {
#pragma GCC unroll 4
        for (int g = 0; g < JG; g++) {
          if (next) __builtin_prefetch(next + g * ldb + k);
          vec bv = vload(B + (jb + g) * ldb + k);
#pragma GCC unroll 8
          for (int i = 0; i < MM; i++) acc[i][g] = vfma(vload(a + i * K + k), bv, acc[i][g]);
        }
      }
    } else {
      for (; k + VL <= K; k += VL)
        for (int g = 0; g < jg_n; g++) {
          vec bv = vload(B + (jb + g) * ldb + k);
          for (int i = 0; i < MM; i++) acc[i][g] = vfma(vload(a + i * K + k), bv, acc[i][g]);
        }
    }
    for (int i = 0; i < MM; i++)
      for (int g = 0; g < jg_n; g++) {
        float s = vsum(acc[i][g]);
        const float* b = B + (jb + g) * ldb;
        for (int64_t kk = k; kk < K; kk++) s += a[i * K + kk] * b[kk];
        put(C + i * rs + (jb + g) * cs, s, alpha, beta);
      }
  }
}

template <int MM>
void small_rows(bool tB, int64_t N, int64_t K, float alpha, const float* a, const float* B,
                int64_t ldb, float beta, float* C, int64_t rs, int64_t cs, int nthreads) {
  if (!tB) {
    // Stretches of about 256 columns, as many as a multiple of the threads.
    const int64_t tasks = round_up(ceil_div(N, 256), nthreads);
    const int64_t w = round_up(ceil_div(N, tasks), VL);
#pragma omp parallel for num_threads(nthreads) if (nthreads > 1) schedule(static)
    for (int64_t t = 0; t < tasks; t++)
      if (t * w < N)
        rows_times_b<MM>(K, a, B, ldb, t * w, std::min(w, N - t * w), alpha, beta, C, rs, cs);
  } else {
    // Tasks of 64 rows of B keep each thread on one contiguous stretch of memory.
    constexpr int64_t kRowsPerTask = 64;
    const int64_t tasks = ceil_div(N, kRowsPerTask);
#pragma omp parallel for num_threads(nthreads) if (nthreads > 1) schedule(static)
    for (int64_t t = 0; t < tasks; t++)
      rows_dot_bt<MM>(K, a, B, ldb, t * kRowsPerTask, std::min(kRowsPerTask, N - t * kRowsPerTask),
                      alpha, beta, C, rs, cs);
  }
}

// m <= kSmall rows of op(A) times op(B), written at C[i * rs + j * cs].
void sgemm_small(bool tA, bool tB, int64_t m, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t rs,
                 int64_t cs, int nthreads) {
  thread_local Scratch a_buf;
  float* a = a_buf.get(m * K);
  for (int64_t i = 0; i < m; i++)
    for (int64_t k = 0; k < K; k++) a[i * K + k] = tA ? A[k * lda + i] : A[i * lda + k];
  switch (m) {
    case 1: return small_rows<1>(tB, N, K, alpha, a, B, ldb, beta, C, rs, cs, nthreads);
    case 2: return small_rows<2>(tB, N, K, alpha, a, B, ldb, beta, C, rs, cs, nthreads);
    case 3: return small_rows<3>(tB, N, K, alpha, a, B, ldb, beta, C, rs, cs, nthreads);
    case 4: return small_rows<4>(tB, N, K, alpha, a, B, ldb, beta, C, rs, cs, nthreads);
    case 5: return small_rows<5>(tB, N, K, alpha, a, B, ldb, beta, C, rs, cs, nthreads);
    case 6: return small_rows<6>(tB, N, K, alpha, a, B, ldb, beta, C, rs, cs, nthreads);
    case 7: return small_rows<7>(tB, N, K, alpha, a, B, ldb, beta, C, rs, cs, nthreads);
    default: return small_rows<8>(tB, N, K, alpha, a, B, ldb, beta, C, rs, cs, nthreads);
  }
}

}  // namespace

static_assert(kSmall == 8, "sgemm_small instantiates row counts 1..8");

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb,
           float beta, float* C, int64_t ldc, int nthreads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) put(C + i * ldc + j, 0.0f, 0.0f, beta);
    return;
  }
  if (2.0 * M * N * K < kMinParallelFlops) nthreads = 1;
  if (nthreads < 1) nthreads = 1;
  if (M <= kSmall) {
    sgemm_small(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 1, nthreads);
  } else if (N <= kSmall) {
    // C^T = op(B)^T op(A)^T: the few columns of C become the few rows.
    sgemm_small(!transB, !transA, N, M, K, alpha, B, ldb, A, lda, beta, C, 1, ldc, nthreads);
  } else {
    sgemm_blocked(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nthreads);
  }
}

const char* simd_name() { return kSimd; }

}  // namespace quartet::own
