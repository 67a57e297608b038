// One torch.optim.AdamW step on a flat parameter, in place on param, m and v.
#pragma once
#include <cstdint>

namespace quartet {

// step counts from 1.
void adamw(float* param, const float* grad, float* m, float* v, int64_t n, double lr,
           double beta1, double beta2, double eps, double weight_decay, int64_t step);

}  // namespace quartet
