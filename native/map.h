// Loop helpers for the elementwise kernels: one vectorised pass, split over the
// kernel threads when n is large. `out` may alias an input: every element is read
// before it is written at the same index.
#pragma once
#include <cstdint>

#include "parallel.h"

namespace quartet {

template <class F>
inline void map1(float* out, const float* a, int64_t n, F f) {
#pragma omp parallel for simd if (n >= kParallelMin) schedule(static)
  for (int64_t i = 0; i < n; i++) out[i] = f(a[i]);
}

template <class F>
inline void map2(float* out, const float* a, const float* b, int64_t n, F f) {
#pragma omp parallel for simd if (n >= kParallelMin) schedule(static)
  for (int64_t i = 0; i < n; i++) out[i] = f(a[i], b[i]);
}

template <class F>
inline void map3(float* out, const float* a, const float* b, const float* c, int64_t n, F f) {
#pragma omp parallel for simd if (n >= kParallelMin) schedule(static)
  for (int64_t i = 0; i < n; i++) out[i] = f(a[i], b[i], c[i]);
}

}  // namespace quartet
