// float16 / bfloat16 <-> float32 conversions for checkpoints. To-16-bit rounds to
// nearest even; NaN stays NaN, overflow becomes infinity.
#pragma once
#include <cstdint>

namespace quartet {

void f16_to_f32(float* out, const uint16_t* inp, int64_t n);
void bf16_to_f32(float* out, const uint16_t* inp, int64_t n);
void f32_to_f16(uint16_t* out, const float* inp, int64_t n);
void f32_to_bf16(uint16_t* out, const float* inp, int64_t n);

}  // namespace quartet
