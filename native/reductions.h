// Row broadcasts and reductions over [N, C] matrices and flat arrays. Sums that
// cross threads add fixed blocks in a fixed order, so they do not depend on the
// thread count. Semantics: src/native.ts.
#pragma once
#include <cstdint>

namespace quartet {

// out[n, c] = a[n, c] + b[c]  (in place allowed)
void add_row(float* out, const float* a, const float* b, int64_t N, int64_t C);
// out[n, c] = a[n, c] * b[c]  (in place allowed)
void mul_row(float* out, const float* a, const float* b, int64_t N, int64_t C);
// out[c] = sum_n a[n, c]
void sum_rows(float* out, const float* a, int64_t N, int64_t C);
// out[n] = sum_c a[n, c]
void sum_cols(float* out, const float* a, int64_t N, int64_t C);
double sum_all(const float* a, int64_t n);
double sum_squares(const float* a, int64_t n);
bool all_finite(const float* a, int64_t n);

}  // namespace quartet
