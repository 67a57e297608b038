// rope: rotary position embedding on [B,T,NH,HS] (semantics in attention.h).
//
// cos and sin depend only on the position, and a batch holds few distinct ones
// (0..T-1, shifted by left padding), so they are computed once per distinct position
// into a table: angle = float(position) * inv_freq rounded to float, as PyTorch does,
// then sincosf (within 1 ulp, like PyTorch's own). The rotation itself is a
// multiply-add over contiguous halves (rotate_half) or adjacent pairs (GPT-J), which
// the compiler vectorises.
#include <cmath>
#include <cstring>
#include <vector>

#include "attention.h"
#include "parallel.h"

namespace quartet {

namespace {

// One table row: cos and sin (negated for the inverse) of position * inv_freq[i].
void fill_row(float* cs, float* sn, int64_t position, const float* inv_freq, int64_t half,
              float sign) {
  const float pos = static_cast<float>(position);
  for (int64_t i = 0; i < half; i++) {
    float s, c;
    sincosf(pos * inv_freq[i], &s, &c);
    cs[i] = c;
    sn[i] = sign * s;
  }
}

void rotate_head(float* o, const float* x, const float* cs, const float* sn, int64_t HS,
                 int64_t half, bool interleaved) {
  if (interleaved) {
    for (int64_t i = 0; i < half; i++) {
      const float a = x[2 * i], b = x[2 * i + 1];
      o[2 * i] = a * cs[i] - b * sn[i];
      o[2 * i + 1] = b * cs[i] + a * sn[i];
    }
  } else {
    // x may alias o: read both halves before writing either.
    for (int64_t i = 0; i < half; i++) {
      const float a = x[i], b = x[i + half];
      o[i] = a * cs[i] - b * sn[i];
      o[i + half] = b * cs[i] + a * sn[i];
    }
  }
  if (o != x) std::memcpy(o + 2 * half, x + 2 * half, sizeof(float) * (HS - 2 * half));
}

}  // namespace

void rope(float* out, const float* x, const int32_t* positions, const float* inv_freq,
          int64_t B, int64_t T, int64_t NH, int64_t HS, int64_t rotary_dim, bool interleaved,
          bool inverse) {
  const int64_t half = rotary_dim / 2;
  const int64_t rows = B * T;
  if (rows <= 0) return;
  const float sign = inverse ? -1.0f : 1.0f;
  int64_t lo = positions[0], hi = positions[0];
  for (int64_t r = 1; r < rows; r++) {
    lo = positions[r] < lo ? positions[r] : lo;
    hi = positions[r] > hi ? positions[r] : hi;
  }
  const bool parallel = rows * NH * HS >= kParallelMin;
  // One table row per distinct position in [lo, hi] when that range is no longer than
  // the batch; otherwise (scattered positions) one row per (b, t).
  const bool by_position = hi - lo + 1 <= rows;
  const int64_t n = by_position ? hi - lo + 1 : rows;
  std::vector<float> cs(n * half), sn(n * half);
#pragma omp parallel if (parallel)
  {
    if (by_position) {
#pragma omp for schedule(static)
      for (int64_t p = 0; p < n; p++)
        fill_row(cs.data() + p * half, sn.data() + p * half, lo + p, inv_freq, half, sign);
    } else {
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; r++)
        fill_row(cs.data() + r * half, sn.data() + r * half, positions[r], inv_freq, half, sign);
    }
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const int64_t t = by_position ? positions[r] - lo : r;
      for (int64_t h = 0; h < NH; h++)
        rotate_head(out + (r * NH + h) * HS, x + (r * NH + h) * HS, cs.data() + t * half, sn.data() + t * half,
                    HS, half, interleaved);
    }
  }
}

}  // namespace quartet
