// LayerNorm and RMSNorm over the last dimension of [N, C], with backwards.
// dweight/dbias are overwritten with sums over the N rows (fixed blocks, fixed
// order: independent of the thread count). Semantics: src/native.ts.
#pragma once
#include <cstdint>

namespace quartet {

// bias may be nullptr. mean, rstd [N] are written for the backward.
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                       const float* weight, const float* bias, int64_t N, int64_t C, float eps);
// dbias may be nullptr.
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean,
                        const float* rstd, int64_t N, int64_t C);
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight,
                     int64_t N, int64_t C, float eps);
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                      const float* weight, const float* rstd, int64_t N, int64_t C);

}  // namespace quartet
