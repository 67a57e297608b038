// Building blocks of the fused attention kernels (attention_forward.cc,
// attention_backward.cc): a float vector of the widest ISA compiled for, exp2 on
// such vectors, and a small register-blocked product whose left operand is read
// as scalars with arbitrary strides. That one product serves all of attention's
// tile products (S^T = K Q^T, O += P V, dV += P^T dO, ...), because the kernels
// keep score tiles transposed, [keys][queries], so that softmax statistics of a
// query row live in one vector lane.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace quartet::attn {

#if defined(__AVX512F__)
constexpr int L = 16;     // lanes per vector
constexpr int NVMAX = 4;  // vectors per row of a register tile (6 x 4 of 32 registers)
#elif defined(__AVX2__)
constexpr int L = 8;
constexpr int NVMAX = 2;  // 6 x 2 accumulators of 16 registers
#else
constexpr int L = 4;
constexpr int NVMAX = 2;
#endif
constexpr int RMAX = 6;  // rows of a register tile

constexpr int64_t BQ = 64;  // query rows per block (a multiple of L)
constexpr int64_t BK = 64;  // keys per tile
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

typedef float vf __attribute__((vector_size(L * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(L * sizeof(int32_t))));

static inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
static inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
static inline vf splat(float s) { return vf{} + s; }
static inline vi load_i(const int32_t* p) {
  vi v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

static inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// 2^x for x <= 0 (the kernels only exponentiate differences from a running
// maximum). Cephes' exp2f: x = n + f, |f| <= 1/2, 2^f by a degree-6 polynomial
// (about 1 ulp). Below 2^-126 the result is 0, so that -inf (a masked score)
// gives exactly 0.
static inline vf exp2v(vf x) {
  const vf lo = splat(-126.0f);
  const vf xc = x < lo ? lo : x;
  const vf shifter = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const vf n = (xc + shifter) - shifter;
  const vf f = xc - n;
  vf p = splat(1.535336188319500e-4f);
  p = p * f + 1.339887440266574e-3f;
  p = p * f + 9.618437357674640e-3f;
  p = p * f + 5.550332471162809e-2f;
  p = p * f + 2.402264791363012e-1f;
  p = p * f + 6.931472028550421e-1f;
  p = p * f + 1.0f;
  const vi bits = (__builtin_convertvector(n, vi) + 127) << 23;
  vf two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  return x < lo ? vf{} : p * two_n;
}

static inline float hmax(vf v) {
  float m = v[0];
  for (int i = 1; i < L; i++) m = v[i] > m ? v[i] : m;
  return m;
}

// Sum of the lanes by halving (extracts of the upper half), a few instructions.
typedef float vf4 __attribute__((vector_size(4 * sizeof(float))));
static inline float hsum(vf v) {
#if defined(__AVX512F__) || defined(__AVX2__)
  typedef float vh __attribute__((vector_size(L / 2 * sizeof(float))));
  vh lo, hi;
  std::memcpy(&lo, &v, sizeof lo);
  std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
  lo += hi;
#if defined(__AVX512F__)
  vf4 a, b;
  std::memcpy(&a, &lo, sizeof a);
  std::memcpy(&b, reinterpret_cast<const char*>(&lo) + sizeof a, sizeof b);
  a += b;
#else
  vf4 a = lo;
#endif
#else
  vf4 a = v;
#endif
  return (a[0] + a[2]) + (a[1] + a[3]);
}

// Per-thread scratch buffers, grown on demand and kept across calls (OpenMP threads
// persist), so that a decode step allocates nothing. Slots are distinct per use.
template <class T>
static inline T* scratch(int slot, size_t n) {
  thread_local std::vector<T> bufs[12];
  if (bufs[slot].size() < n) bufs[slot].resize(n);
  return bufs[slot].data();
}

// C[R rows][NV vectors] (+)= sum_k A(r, k) * B[k][...], A(r, k) = A[r*rs + k*ks].
template <int R, int NV>
static inline void bmm_tile(int64_t K, const float* A, int64_t rs, int64_t ks, const float* B,
                            int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  vf c[R][NV];
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) c[r][v] = accumulate ? load(C + r * ldc + v * L) : vf{};
  for (int64_t k = 0; k < K; k++) {
    vf b[NV];
    for (int v = 0; v < NV; v++) b[v] = load(B + k * ldb + v * L);
    for (int r = 0; r < R; r++) {
      const vf a = splat(A[r * rs + k * ks]);
      for (int v = 0; v < NV; v++) c[r][v] += a * b[v];
    }
  }
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) store(C + r * ldc + v * L, c[r][v]);
}

template <int R>
static inline void bmm_rows(int64_t nv, int64_t K, const float* A, int64_t rs, int64_t ks,
                            const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  for (int64_t v0 = 0; v0 < nv; v0 += NVMAX) {
    const float* b = B + v0 * L;
    float* c = C + v0 * L;
    switch (nv - v0 < NVMAX ? nv - v0 : NVMAX) {
      case 1: bmm_tile<R, 1>(K, A, rs, ks, b, ldb, c, ldc, accumulate); break;
      case 2: bmm_tile<R, 2>(K, A, rs, ks, b, ldb, c, ldc, accumulate); break;
      case 3: bmm_tile<R, NVMAX >= 3 ? 3 : 1>(K, A, rs, ks, b, ldb, c, ldc, accumulate); break;
      default: bmm_tile<R, NVMAX>(K, A, rs, ks, b, ldb, c, ldc, accumulate); break;
    }
  }
}

// C[M, N] (+)= A[M, K] B[K, N] with A(r, k) = A[r*rs + k*ks] read as scalars,
// B and C row-major with row strides ldb, ldc; N is a multiple of L.
static inline void bmm(int64_t M, int64_t N, int64_t K, const float* A, int64_t rs, int64_t ks,
                       const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  const int64_t nv = N / L;
  int64_t r = 0;
  for (; r + RMAX <= M; r += RMAX)
    bmm_rows<RMAX>(nv, K, A + r * rs, rs, ks, B, ldb, C + r * ldc, ldc, accumulate);
  const float* a = A + r * rs;
  float* c = C + r * ldc;
  switch (M - r) {
    case 5: bmm_rows<5>(nv, K, a, rs, ks, B, ldb, c, ldc, accumulate); break;
    case 4: bmm_rows<4>(nv, K, a, rs, ks, B, ldb, c, ldc, accumulate); break;
    case 3: bmm_rows<3>(nv, K, a, rs, ks, B, ldb, c, ldc, accumulate); break;
    case 2: bmm_rows<2>(nv, K, a, rs, ks, B, ldb, c, ldc, accumulate); break;
    case 1: bmm_rows<1>(nv, K, a, rs, ks, B, ldb, c, ldc, accumulate); break;
    default: break;
  }
}

// ---- dropout of attention probabilities ----
// Entry (b, h, i, j) of the [B, NH, Tq, Tk] probabilities is kept or dropped by a hash of
// (seed, its flat index ((b*NH + h)*Tq + i)*Tk + j), so the backward regenerates the mask
// without storing it, and the mask depends on neither the thread count nor the tiling.
// The hash is splitmix64's, as in the elementwise dropout (activations.cc); its top 24
// bits u give a uniform number u / 2^24 in [0, 1), kept when >= p.

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

static inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct Dropout {
  uint64_t key;   // the seed, mixed
  int32_t thr;    // keep when the 24 hash bits are >= thr, i.e. u / 2^24 >= p
  float scale;    // 1 / (1 - p): kept entries are scaled up (inverted dropout)
};

// p in [0, 1).
static inline Dropout make_dropout(float p, uint64_t seed) {
  return {mix64(seed + kGolden), static_cast<int32_t>(std::ceil(static_cast<double>(p) * 16777216.0)),
          1.0f / (1.0f - p)};
}

// The hash input of flat index idx is key + idx * kGolden (mod 2^64): a row's entries are
// its base, key + row_start * kGolden, plus j * kGolden.
static inline uint64_t drop_base(const Dropout& d, uint64_t row_start) { return d.key + row_start * kGolden; }

// The scaled keep value (1 / (1 - p) or 0) of entry j of the row with base `base`.
static inline float keep_scaled(const Dropout& d, uint64_t base, int64_t j) {
  const int32_t bits = static_cast<int32_t>(mix64(base + static_cast<uint64_t>(j) * kGolden) >> 40);
  return bits >= d.thr ? d.scale : 0.0f;
}

typedef uint64_t vu __attribute__((vector_size(L * sizeof(uint64_t))));

// keep_scaled of entry j for L rows at once (their bases in `bases`).
static inline vf keep_scaled(const Dropout& d, const uint64_t* bases, int64_t j) {
  vu z;
  std::memcpy(&z, bases, sizeof z);
  z += static_cast<uint64_t>(j) * kGolden;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z = z ^ (z >> 31);
  const vi bits = __builtin_convertvector(z >> 40, vi);
  return bits >= d.thr ? splat(d.scale) : vf{};
}

// Copy `rows` rows of `cols` floats (row stride ld) into dst with row stride ldd,
// zero-filling columns [cols, ldd): operands whose rows are read whole vectors at a time.
static inline void pack_rows(float* dst, int64_t ldd, const float* src, int64_t ld, int64_t rows,
                             int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    std::memcpy(dst + r * ldd, src + r * ld, sizeof(float) * cols);
    for (int64_t c = cols; c < ldd; c++) dst[r * ldd + c] = 0.0f;
  }
}

}  // namespace quartet::attn
