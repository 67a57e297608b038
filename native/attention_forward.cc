// attention_forward: fused scaled-dot-product attention (see attention.h).
// First version: one query row at a time, exact two-pass softmax.
#include <cmath>
#include <limits>
#include <vector>

#include "attention.h"

namespace quartet {

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const float* key_mask, int64_t B, int64_t NH, int64_t NKV, int64_t Tq,
                       int64_t Tk, int64_t kvCap, int64_t HS, float scale, bool causal) {
  const int64_t group = NH / NKV;
#pragma omp parallel
  {
    std::vector<float> s(Tk > 0 ? Tk : 1);
#pragma omp for collapse(3) schedule(static)
    for (int64_t b = 0; b < B; b++)
      for (int64_t h = 0; h < NH; h++)
        for (int64_t i = 0; i < Tq; i++) {
          const float* qi = q + ((b * NH + h) * Tq + i) * HS;
          const float* kb = k + (b * NKV + h / group) * kvCap * HS;
          const float* vb = v + (b * NKV + h / group) * kvCap * HS;
          const float* mask = key_mask ? key_mask + b * Tk : nullptr;
          float* oi = out + ((b * NH + h) * Tq + i) * HS;
          int64_t end = causal ? Tk - Tq + i + 1 : Tk;  // keys [0, end)
          if (end > Tk) end = Tk;
          float mx = -std::numeric_limits<float>::infinity();
          for (int64_t j = 0; j < end; j++) {
            if (mask && mask[j] == 0.0f) continue;
            float d = 0.0f;
            for (int64_t c = 0; c < HS; c++) d += qi[c] * kb[j * HS + c];
            s[j] = d * scale;
            if (s[j] > mx) mx = s[j];
          }
          for (int64_t c = 0; c < HS; c++) oi[c] = 0.0f;
          if (mx == -std::numeric_limits<float>::infinity()) {
            lse[(b * NH + h) * Tq + i] = mx;
            continue;
          }
          float sum = 0.0f;
          for (int64_t j = 0; j < end; j++) {
            if (mask && mask[j] == 0.0f) continue;
            float p = std::exp(s[j] - mx);
            sum += p;
            for (int64_t c = 0; c < HS; c++) oi[c] += p * vb[j * HS + c];
          }
          for (int64_t c = 0; c < HS; c++) oi[c] /= sum;
          lse[(b * NH + h) * Tq + i] = mx + std::log(sum);
        }
  }
}

}  // namespace quartet
