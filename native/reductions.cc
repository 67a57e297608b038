// Row broadcasts (bias add, row scale) and reductions (column sums, row sums, total
// sum, sum of squares, finiteness). Cross-thread sums use fixed blocks added in order,
// so a result never depends on the thread count.
#include "reductions.h"

#include <vector>

#include "parallel.h"

namespace quartet {

void add_row(float* out, const float* a, const float* b, int64_t N, int64_t C) {
#pragma omp parallel for if (N * C >= kParallelMin) schedule(static)
  for (int64_t r = 0; r < N; r++) {
    float* o = out + r * C;
    const float* x = a + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) o[c] = x[c] + b[c];
  }
}

void mul_row(float* out, const float* a, const float* b, int64_t N, int64_t C) {
#pragma omp parallel for if (N * C >= kParallelMin) schedule(static)
  for (int64_t r = 0; r < N; r++) {
    float* o = out + r * C;
    const float* x = a + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) o[c] = x[c] * b[c];
  }
}

// Columns are split into fixed chunks; each chunk sums its rows in row order, so the
// result is the same on any thread count and needs no scratch.
void sum_rows(float* out, const float* a, int64_t N, int64_t C) {
  constexpr int64_t kChunk = 64;
  const int64_t chunks = (C + kChunk - 1) / kChunk;
#pragma omp parallel for if (N * C >= kParallelMin) schedule(static)
  for (int64_t ch = 0; ch < chunks; ch++) {
    const int64_t c0 = ch * kChunk;
    const int64_t c1 = c0 + kChunk < C ? c0 + kChunk : C;
    float acc[kChunk] = {};
    for (int64_t r = 0; r < N; r++) {
      const float* x = a + r * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; c++) acc[c - c0] += x[c];
    }
    for (int64_t c = c0; c < c1; c++) out[c] = acc[c - c0];
  }
}

void sum_cols(float* out, const float* a, int64_t N, int64_t C) {
#pragma omp parallel for if (N * C >= kParallelMin) schedule(static)
  for (int64_t r = 0; r < N; r++) {
    const float* x = a + r * C;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; c++) s += x[c];
    out[r] = s;
  }
}

namespace {

// Sums f(a[i]) in double over fixed blocks, then adds the block sums in order.
template <class F>
double blocked_sum(const float* a, int64_t n, F f) {
  const int64_t blocks = (n + kReduceBlock - 1) / kReduceBlock;
  std::vector<double> partial(blocks > 0 ? blocks : 1, 0.0);
#pragma omp parallel for if (n >= kParallelMin) schedule(static)
  for (int64_t blk = 0; blk < blocks; blk++) {
    const int64_t i1 = (blk + 1) * kReduceBlock < n ? (blk + 1) * kReduceBlock : n;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = blk * kReduceBlock; i < i1; i++) s += f(static_cast<double>(a[i]));
    partial[blk] = s;
  }
  double total = 0.0;
  for (int64_t blk = 0; blk < blocks; blk++) total += partial[blk];
  return total;
}

}  // namespace

double sum_all(const float* a, int64_t n) {
  return blocked_sum(a, n, [](double x) { return x; });
}

double sum_squares(const float* a, int64_t n) {
  return blocked_sum(a, n, [](double x) { return x * x; });
}

// x * 0 is NaN exactly when x is NaN or infinite.
bool all_finite(const float* a, int64_t n) {
  int bad = 0;
#pragma omp parallel for simd if (n >= kParallelMin) schedule(static) reduction(| : bad)
  for (int64_t i = 0; i < n; i++) bad |= (a[i] * 0.0f != 0.0f);
  return bad == 0;
}

}  // namespace quartet
