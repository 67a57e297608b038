// rope: rotary position embedding on [B,T,NH,HS] (see attention.h).
// Angles are position * inv_freq rounded to float as PyTorch does, then
// cos/sin in double so the result is the correctly rounded float.
#include <cmath>
#include <vector>

#include "attention.h"

namespace quartet {

void rope(float* out, const float* x, const int32_t* positions, const float* inv_freq,
          int64_t B, int64_t T, int64_t NH, int64_t HS, int64_t rotary_dim, bool interleaved,
          bool inverse) {
  const int64_t half = rotary_dim / 2;
  const float sign = inverse ? -1.0f : 1.0f;
#pragma omp parallel
  {
    std::vector<float> cs(half > 0 ? half : 1), sn(half > 0 ? half : 1);
#pragma omp for schedule(static)
    for (int64_t bt = 0; bt < B * T; bt++) {
      const float pos = static_cast<float>(positions[bt]);
      for (int64_t i = 0; i < half; i++) {
        const float angle = pos * inv_freq[i];
        cs[i] = static_cast<float>(std::cos(static_cast<double>(angle)));
        sn[i] = sign * static_cast<float>(std::sin(static_cast<double>(angle)));
      }
      for (int64_t h = 0; h < NH; h++) {
        const float* xr = x + (bt * NH + h) * HS;
        float* o = out + (bt * NH + h) * HS;
        if (interleaved) {
          for (int64_t i = 0; i < half; i++) {
            const float a = xr[2 * i], b = xr[2 * i + 1];
            o[2 * i] = a * cs[i] - b * sn[i];
            o[2 * i + 1] = b * cs[i] + a * sn[i];
          }
        } else {
          for (int64_t i = 0; i < half; i++) {
            const float a = xr[i], b = xr[i + half];
            o[i] = a * cs[i] - b * sn[i];
            o[i + half] = b * cs[i] + a * sn[i];
          }
        }
        if (o != xr)
          for (int64_t c = rotary_dim; c < HS; c++) o[c] = xr[c];
      }
    }
  }
}

}  // namespace quartet
