// Temperature sampling of one token per row (see sampling.h).
#include "sampling.h"

#include <cmath>
#include <vector>

#include "parallel.h"
#include "vecmath.h"

namespace quartet {

void sample_rows(int32_t* out, const float* logits, const double* uniforms, int64_t B, int64_t V,
                 float temperature) {
  const float inv_t = 1.0f / temperature;
#pragma omp parallel for if (B * V >= kParallelRowsMin) schedule(static)
  for (int64_t b = 0; b < B; b++) {
    thread_local std::vector<float> w;
    if (static_cast<int64_t>(w.size()) < V) w.resize(V);
    const float* x = logits + b * V;
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t v = 0; v < V; v++) mx = x[v] > mx ? x[v] : mx;
    if (mx == -INFINITY) {
      out[b] = 0;
      continue;
    }
    // The weights in float (vectorised exp); their running sum in double, in index
    // order, so that the draw does not depend on the vector width.
    float* e = w.data();
#pragma omp simd
    for (int64_t v = 0; v < V; v++) e[v] = exp_fast((x[v] - mx) * inv_t);
    double z = 0.0;
    for (int64_t v = 0; v < V; v++) z += e[v];
    const double target = uniforms[b] * z;
    double cum = 0.0;
    int32_t pick = -1, last = 0;
    for (int64_t v = 0; v < V; v++) {
      if (e[v] == 0.0f) continue;
      cum += e[v];
      last = static_cast<int32_t>(v);
      if (target < cum) {
        pick = last;
        break;
      }
    }
    // Rounding can leave u * z at or past the final sum: the last token with weight.
    out[b] = pick >= 0 ? pick : last;
  }
}

}  // namespace quartet
