// Data movement: axis permutation, row gather (embedding lookup) and row
// scatter-add (its backward). Semantics: src/native.ts.
#pragma once
#include <cstdint>

namespace quartet {

constexpr int kMaxPermuteDims = 6;

// inp has `shape` (ndim <= kMaxPermuteDims); out axis i is inp axis perm[i].
void permute(float* out, const float* inp, const int64_t* shape, const int* perm, int ndim);
// out[i, :] = inp[idx[i], :] for i < n_idx. Indices must already be checked in range.
void gather_rows(float* out, const float* inp, const int32_t* idx, int64_t n_idx, int64_t C);
// out [R, C] zeroed, then out[idx[i], :] += inp[i, :]. Indices must be in [0, R).
// Each column block is summed in row order, so duplicates add up the same way on any
// thread count.
void scatter_add_rows(float* out, const float* inp, const int32_t* idx, int64_t n_idx,
                      int64_t R, int64_t C);

}  // namespace quartet
