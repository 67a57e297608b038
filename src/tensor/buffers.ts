// Kernels on plain typed arrays, for model code that works outside the tape:
// weight layouts converted at load and save, LoRA adapters merged into the
// weights a checkpoint writes, the token choice of generation, and the
// moving average of the actor's weights. Thin on
// purpose: the same native kernels the tensor ops use, named for what the
// callers need, so that src/models reaches the addon only through this layer.
import { native } from '../native.js';

type F32 = Float32Array;

/** out = data (row-major, `shape`) with its axes reordered by `perm`. */
export function permuteBuffer(out: F32, data: F32, shape: number[], perm: number[]): void {
  native.permute(out, data, shape, perm);
}

/** c [M, N] += alpha * a [M, K] @ b [K, N], all row-major. */
export function addMatmulBuffer(c: F32, a: F32, b: F32, M: number, N: number, K: number, alpha: number): void {
  native.gemm(false, false, M, N, K, alpha, a, K, b, N, 1, c, N);
}

/** One token per row of logits [B, V], softmax(logits / temperature) sampled with one uniform per row. */
export function sampleRows(out: Int32Array, logits: F32, uniforms: Float64Array, B: number, V: number, temperature: number): void {
  native.sampleRows(out, logits, uniforms, B, V, temperature);
}

/** out[b] = log softmax(logits[b])[tokens[b]] for logits [B, V]. */
export function tokenLogprobsBuffer(out: F32, logits: F32, tokens: Int32Array, B: number, V: number): void {
  native.logprobsForward(out, new Float32Array(B), logits, tokens, B, V);
}

/** avg = beta * avg + (1 - beta) * x, in place: one step of a moving average (scaled, then accumulated, in that order). */
export function movingAverageBuffer(avg: F32, x: F32, beta: number): void {
  native.affine(avg, avg, beta, 0);
  native.axpy(avg, avg, 1 - beta, x);
}

/** True when every value is finite (one native pass; the checks of weights read from disk). */
export function allFiniteBuffer(data: F32): boolean {
  return native.allFinite(data);
}
