// attention_backward: gradients of attention_forward (see attention.h).
// Probabilities are recomputed from the saved lse; dk/dv of a kv head are
// accumulated by the one thread that owns (b, kv head), so there are no races.
#include <cmath>
#include <cstring>
#include <limits>

#include "attention.h"

namespace quartet {

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        const float* key_mask, int64_t B, int64_t NH, int64_t NKV, int64_t Tq,
                        int64_t Tk, int64_t HS, float scale, bool causal) {
  const int64_t group = NH / NKV;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; b++)
    for (int64_t g = 0; g < NKV; g++) {
      const float* kb = k + (b * NKV + g) * Tk * HS;
      const float* vb = v + (b * NKV + g) * Tk * HS;
      float* dkb = dk + (b * NKV + g) * Tk * HS;
      float* dvb = dv + (b * NKV + g) * Tk * HS;
      const float* mask = key_mask ? key_mask + b * Tk : nullptr;
      std::memset(dkb, 0, sizeof(float) * Tk * HS);
      std::memset(dvb, 0, sizeof(float) * Tk * HS);
      for (int64_t h = g * group; h < (g + 1) * group; h++)
        for (int64_t i = 0; i < Tq; i++) {
          const int64_t row = (b * NH + h) * Tq + i;
          const float* qi = q + row * HS;
          const float* doi = dout + row * HS;
          const float* oi = out + row * HS;
          float* dqi = dq + row * HS;
          for (int64_t c = 0; c < HS; c++) dqi[c] = 0.0f;
          const float L = lse[row];
          if (L == -std::numeric_limits<float>::infinity()) continue;
          float D = 0.0f;
          for (int64_t c = 0; c < HS; c++) D += doi[c] * oi[c];
          int64_t end = causal ? Tk - Tq + i + 1 : Tk;
          if (end > Tk) end = Tk;
          for (int64_t j = 0; j < end; j++) {
            if (mask && mask[j] == 0.0f) continue;
            float s = 0.0f, dp = 0.0f;
            for (int64_t c = 0; c < HS; c++) {
              s += qi[c] * kb[j * HS + c];
              dp += doi[c] * vb[j * HS + c];
            }
            const float p = std::exp(s * scale - L);
            const float ds = p * (dp - D) * scale;
            for (int64_t c = 0; c < HS; c++) {
              dqi[c] += ds * kb[j * HS + c];
              dkb[j * HS + c] += ds * qi[c];
              dvb[j * HS + c] += p * doi[c];
            }
          }
        }
    }
}

}  // namespace quartet
