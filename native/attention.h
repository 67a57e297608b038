// Fused scaled-dot-product attention (causal, key padding mask, grouped-query,
// KV cache) and rotary position embedding. Semantics: src/native.ts.
#pragma once
#include <cstdint>

namespace quartet {

// q [B,NH,Tq,HS]; k, v [B,NKV,kvCap,HS] (first Tk used); out [B,NH,Tq,HS]; lse [B,NH,Tq].
// key_mask [B,Tk] (1 keep, 0 pad) or nullptr. Causal: query i sees keys j <= Tk - Tq + i.
// A row that sees no key: out = 0, lse = -inf.
// dropout_p in [0, 1): the probabilities P are multiplied by the keep mask of
// attention_dropout_keep(seed) before P V; lse stays that of the undropped softmax.
// dropout_p = 0 is the plain kernel (the default: KV-cache decode never drops).
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const float* key_mask, int64_t B, int64_t NH, int64_t NKV, int64_t Tq,
                       int64_t Tk, int64_t kvCap, int64_t HS, float scale, bool causal,
                       float dropout_p = 0.0f, uint64_t seed = 0);

// Backward with kvCap == Tk. dk, dv [B,NKV,Tk,HS] sum over the heads sharing a kv head.
// dropout_p and seed as given to the forward (which regenerates the same mask); out is
// the forward's (dropped) output.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        const float* key_mask, int64_t B, int64_t NH, int64_t NKV, int64_t Tq,
                        int64_t Tk, int64_t HS, float scale, bool causal,
                        float dropout_p = 0.0f, uint64_t seed = 0);

// The scaled keep mask the kernels apply with (p, seed): out [B,NH,Tq,Tk], each entry
// 1 / (1 - p) (kept) or 0 (dropped). For tests and references; p in [0, 1).
void attention_dropout_keep(float* out, int64_t B, int64_t NH, int64_t Tq, int64_t Tk, float p,
                            uint64_t seed);

// x, out [B,T,NH,HS] (in place allowed); positions [B,T]; inv_freq [rotary_dim/2].
// interleaved=false: pairs (i, i + rotary_dim/2) (HF rotate_half); true: (2i, 2i+1) (GPT-J).
// inverse: rotate by the negative angle (the backward).
void rope(float* out, const float* x, const int32_t* positions, const float* inv_freq,
          int64_t B, int64_t T, int64_t NH, int64_t HS, int64_t rotary_dim, bool interleaved,
          bool inverse);

}  // namespace quartet
