// The engine's ops on an NVIDIA GPU: the same signatures as the CPU kernels in
// native/*.h, over device pointers, enqueued on the current stream (set_stream;
// the legacy default stream until then). Nothing here synchronises with the host
// except where a comment says so; errors throw std::runtime_error naming the call.
//
// Numerics follow the CPU kernels (docs/native.md) operation by operation where it is
// cheap to do so; where the order of a sum differs (parallel reductions, cuBLAS) the
// results agree to float rounding, and native/cuda/check.cu states the tolerance per
// op. Every reduction adds in a fixed order: the same inputs give bitwise the same
// outputs on every run (no float atomics).
//
// This header needs no CUDA header: the addon and plain C++ code can include it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace quartet::cuda {

// --- runtime ---------------------------------------------------------------
// True when the CUDA runtime loads and sees at least one device (never throws).
bool available();
// Name of device `index` ("" when there is none).
const char* device_name(int index = 0);
// The stream every op is enqueued on (a cudaStream_t; nullptr = legacy default stream).
void set_stream(void* stream);
void* get_stream();
// Waits for the current stream.
void synchronize();
// Plain device allocations (cudaMalloc / cudaFree) and copies on the current stream.
void* device_alloc(size_t bytes);
void device_free(void* p);
void copy_to_device(void* dst, const void* src, size_t bytes);    // synchronous
void copy_to_host(void* dst, const void* src, size_t bytes);      // synchronous
void fill_bytes(void* dst, int byte, size_t bytes);               // cudaMemsetAsync

// --- matrix products (cuBLAS; row-major, the contract of native/gemm.h) ----
// C[M,N] = alpha * op(A) @ op(B) + beta * C; beta == 0 ignores C's old contents.
// fp32 products run in true fp32 unless gemm_allow_tf32(true).
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
          int64_t ldc);
void gemm_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, int64_t strideA, const float* B, int64_t ldb,
                  int64_t strideB, float beta, float* C, int64_t ldc, int64_t strideC,
                  int64_t batch);
// bf16 operands (raw uint16 bfloat16 bits), fp32 accumulation; C is fp32 or, with
// c_bf16, bf16 (rounded to nearest even once, at the end).
void gemm_bf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
               const uint16_t* A, int64_t lda, const uint16_t* B, int64_t ldb, float beta,
               void* C, int64_t ldc, bool c_bf16);
void gemm_bf16_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                       const uint16_t* A, int64_t lda, int64_t strideA, const uint16_t* B,
                       int64_t ldb, int64_t strideB, float beta, void* C, int64_t ldc,
                       int64_t strideC, int64_t batch, bool c_bf16);
void gemm_allow_tf32(bool allow);
// false when this build has no cuBLAS (the gemm calls then throw).
bool have_cublas();

// --- conversions (native/convert.h) ----------------------------------------
void f32_to_bf16(uint16_t* out, const float* inp, int64_t n);
void bf16_to_f32(float* out, const uint16_t* inp, int64_t n);

// --- norms (native/norms.h) --------------------------------------------------
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                       const float* weight, const float* bias, int64_t N, int64_t C, float eps);
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean,
                        const float* rstd, int64_t N, int64_t C);
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N,
                     int64_t C, float eps);
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                      const float* weight, const float* rstd, int64_t N, int64_t C);

// --- activations (native/activations.h) -------------------------------------
void gelu(float* out, const float* a, bool approximate, int64_t n);
void gelu_backward(float* dinp, const float* a, const float* dout, bool approximate, int64_t n);
void silu(float* out, const float* a, int64_t n);
void silu_backward(float* dinp, const float* a, const float* dout, int64_t n);

// --- fused log-softmax + gather (native/losses.h) ---------------------------
// Cross-entropy is this with dout = -1 / (count of labels >= 0).
void logprobs_forward(float* out, float* lse, const float* logits, const int32_t* labels,
                      int64_t N, int64_t V);
void logprobs_backward(float* dlogits, const float* dout, const float* logits, const float* lse,
                       const int32_t* labels, int64_t N, int64_t V);

// --- AdamW (native/optim.h) ------------------------------------------------
void adamw(float* param, const float* grad, float* m, float* v, int64_t n, double lr,
           double beta1, double beta2, double eps, double weight_decay, int64_t step);

// --- embedding (native/layout.h) --------------------------------------------
void gather_rows(float* out, const float* inp, const int32_t* idx, int64_t n_idx, int64_t C);
// Deterministic: contributions to a row are added in index order (a stable sort of
// idx, then one thread per output element), exactly as the CPU kernel adds them.
// Uses a device workspace; indices must be in [0, R).
void scatter_add_rows(float* out, const float* inp, const int32_t* idx, int64_t n_idx,
                      int64_t R, int64_t C);

// --- rotary and attention (native/attention.h) ------------------------------
void rope(float* out, const float* x, const int32_t* positions, const float* inv_freq,
          int64_t B, int64_t T, int64_t NH, int64_t HS, int64_t rotary_dim, bool interleaved,
          bool inverse);
// HS <= 128. dropout_p must be 0 (attention dropout is CPU-only for now).
// Tq <= 4 (KV-cache decode) takes a split-key kernel; larger Tq one thread per query row.
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const float* key_mask, int64_t B, int64_t NH, int64_t NKV, int64_t Tq,
                       int64_t Tk, int64_t kvCap, int64_t HS, float scale, bool causal,
                       float dropout_p = 0.0f, uint64_t seed = 0);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        const float* key_mask, int64_t B, int64_t NH, int64_t NKV, int64_t Tq,
                        int64_t Tk, int64_t HS, float scale, bool causal, float dropout_p = 0.0f,
                        uint64_t seed = 0);

}  // namespace quartet::cuda
