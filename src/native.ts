// The one typed declaration of the native addon (build/Release/quartet.node).
// Nothing else in the project touches the raw addon: src/tensor wraps these
// functions into ops with shapes and gradients.
//
// Conventions for every function below:
// - Arrays are plain typed arrays (often subarray views); the C++ side reads
//   their byteOffset and length and checks that each one is at least as long
//   as the dimensions imply. A wrong type or a short array throws a TypeError
//   or RangeError naming the function and the argument; nothing segfaults.
// - Row-major, contiguous. Dimension legend as llm.c: B batch, T time (Tq
//   queries, Tk keys), C channels, V vocab, NH heads, NKV key/value heads,
//   HS head size, N rows (often B*T).
// - Outputs come first and are overwritten (never accumulated into), so the
//   tensor layer owns gradient accumulation. `out` may alias an input where
//   the doc says "in place allowed".
// - Work is spread over the process's kernel threads (setThreads); results
//   with 1 and N threads agree within rounding. (The kernels outside gemm and
//   attention are bitwise identical for any thread count: cross-row sums add
//   fixed blocks in a fixed order; test/native/threads.test.ts.)
// - Dimensions are integers in [0, 2^40]; NaN, fractions and negatives throw.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from './util/paths.js';

type F32 = Float32Array;
type I32 = Int32Array;

export interface Capability {
  /** Matrix-product backend compiled in: 'openblas', 'blis' or 'own' (the project's kernels). */
  blas: string;
  /** Widest vector ISA the kernels were compiled for: 'avx512', 'avx2' or 'scalar'. */
  simd: string;
  openmp: boolean;
  cuda: boolean;
}

export interface NativeAddon {
  readonly capability: Capability;
  /** Kernel threads of this process (OpenMP and the BLAS alike), n in [1, 1024]. OpenMP keeps
   *  the count per calling thread: a worker thread sets its own. */
  setThreads(n: number): void;
  getThreads(): number;
  /** Force the project's own GEMM even where a BLAS is compiled in (for tests and benchmarks).
   *  'blas' uses the BLAS when one is compiled in (and is harmless when none is). */
  setGemmBackend(name: 'blas' | 'own'): void;
  /** The backend products use now: the BLAS's name ('openblas', 'blis') or 'own'. */
  getGemmBackend(): string;

  // ---- matrix products ----
  /** C[M,N] = alpha * op(A) @ op(B) + beta * C. op(A) is [M,K]: A is stored [M,K] (lda >= K),
   *  or [K,M] when transA (lda >= M). Likewise op(B) is [K,N]. beta = 0 ignores C's old contents. */
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: F32, lda: number, B: F32, ldb: number, beta: number, C: F32, ldc: number): void;
  /** `batch` independent gemms; matrix i starts at i*stride in each array. strideA or strideB
   *  of 0 broadcasts that operand over the batch. */
  gemmBatched(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: F32, lda: number, strideA: number, B: F32, ldb: number, strideB: number,
    beta: number, C: F32, ldc: number, strideC: number, batch: number): void;

  // ---- elementwise: n = a.length; `out` and the other inputs need at least n elements
  //      (longer arrays are fine, only the first n are touched); in place allowed ----
  add(out: F32, a: F32, b: F32): void;
  sub(out: F32, a: F32, b: F32): void;
  mul(out: F32, a: F32, b: F32): void;
  div(out: F32, a: F32, b: F32): void;
  /** NaN in either input gives NaN, as torch.maximum / torch.minimum. */
  maximum(out: F32, a: F32, b: F32): void;
  minimum(out: F32, a: F32, b: F32): void;
  /** out = a * alpha + beta (in place allowed). */
  affine(out: F32, a: F32, alpha: number, beta: number): void;
  /** out = a + alpha * b (in place allowed: the axpy of gradient accumulation). */
  axpy(out: F32, a: F32, alpha: number, b: F32): void;
  /** Fills all of out (n = out.length). */
  fill(out: F32, value: number): void;
  exp(out: F32, a: F32): void;
  log(out: F32, a: F32): void;
  tanh(out: F32, a: F32): void;
  sigmoid(out: F32, a: F32): void;
  /** log(sigmoid(a)), stable for large |a|. */
  logSigmoid(out: F32, a: F32): void;
  /** out = clamp(a, lo, hi) (NaN stays NaN); dinp = dout where lo <= a <= hi, else 0. */
  clamp(out: F32, a: F32, lo: number, hi: number): void;
  clampBackward(dinp: F32, a: F32, dout: F32, lo: number, hi: number): void;
  /** out = cond != 0 ? a : b. */
  where(out: F32, cond: F32, a: F32, b: F32): void;
  relu(out: F32, a: F32): void;
  reluBackward(dinp: F32, a: F32, dout: F32): void;
  /** approximate: the tanh form (GPT-2 'gelu_new'); else the exact erf form. */
  gelu(out: F32, a: F32, approximate: boolean): void;
  geluBackward(dinp: F32, a: F32, dout: F32, approximate: boolean): void;
  silu(out: F32, a: F32): void;
  siluBackward(dinp: F32, a: F32, dout: F32): void;
  /** Inverted dropout: mask[i] = keep ? 1/(1-p) : 0, out = a * mask. p in [0, 1]; seed an
   *  integer in [0, 2^53]. Element i's draw depends only on (seed, i): reproducible on any
   *  thread count, and a slice of a tensor gets a different mask than the whole. */
  dropout(out: F32, mask: F32, a: F32, p: number, seed: number): void;

  // ---- broadcasts and reductions over rows of a [N, C] matrix ----
  /** out[n, c] = a[n, c] + b[c]  (bias add; in place allowed). */
  addRow(out: F32, a: F32, b: F32, N: number, C: number): void;
  /** out[n, c] = a[n, c] * b[c]. */
  mulRow(out: F32, a: F32, b: F32, N: number, C: number): void;
  /** out[c] = sum_n a[n, c]  (bias gradient). */
  sumRows(out: F32, a: F32, N: number, C: number): void;
  /** out[n] = sum_c a[n, c]. */
  sumCols(out: F32, a: F32, N: number, C: number): void;
  /** Sum of all elements, accumulated in double. */
  sumAll(a: F32): number;
  /** Sum of squares, accumulated in double (gradient norms). */
  sumSquares(a: F32): number;
  /** False if any element is NaN or infinite. */
  allFinite(a: F32): boolean;

  // ---- layout ----
  /** out = inp permuted: inp has `shape` (up to 6 dims), out has shape[perm[i]] along axis i. */
  permute(out: F32, inp: F32, shape: number[], perm: number[]): void;
  /** Gather rows: out[i, :] = inp[idx[i], :] (C columns, idx.length rows; inp has
   *  floor(inp.length / C) rows). Index out of range throws a RangeError naming it. */
  gatherRows(out: F32, inp: F32, idx: I32, C: number): void;
  /** Scatter-add rows: out is zeroed, then out[idx[i], :] += inp[i, :] for i < idx.length;
   *  out has R rows. Index out of range throws. Repeated indices add in index order. */
  scatterAddRows(out: F32, inp: F32, idx: I32, R: number, C: number): void;

  // ---- normalisation and softmax ----
  /** LayerNorm over the last dim; mean and rstd [N] are saved for the backward. bias may be null. */
  layerNormForward(out: F32, mean: F32, rstd: F32, inp: F32, weight: F32, bias: F32 | null,
    N: number, C: number, eps: number): void;
  layerNormBackward(dinp: F32, dweight: F32, dbias: F32 | null, dout: F32, inp: F32, weight: F32,
    mean: F32, rstd: F32, N: number, C: number): void;
  /** RMSNorm (LLaMA): out = weight * inp * rstd, rstd = 1/sqrt(mean(inp^2) + eps). */
  rmsNormForward(out: F32, rstd: F32, inp: F32, weight: F32, N: number, C: number, eps: number): void;
  rmsNormBackward(dinp: F32, dweight: F32, dout: F32, inp: F32, weight: F32, rstd: F32,
    N: number, C: number): void;
  /** Softmax over each row. A row that is all -Infinity (fully masked) gives zeros, not NaN. */
  softmaxForward(out: F32, inp: F32, N: number, C: number): void;
  softmaxBackward(dinp: F32, out: F32, dout: F32, N: number, C: number): void;

  // ---- token-level losses ----
  /** Per-row log-prob of a label without materialising log-softmax:
   *  out[n] = logits[n, labels[n]] - lse[n], lse[n] = logsumexp(logits[n, :]).
   *  A negative label is ignored: out[n] = 0 (lse[n] is still written). A label >= V throws. */
  logprobsForward(out: F32, lse: F32, logits: F32, labels: I32, N: number, V: number): void;
  /** One token per row of logits [B, V] by temperature sampling: out[b] = the first v whose
   *  cumulative weight exp((logits[b, v] - max_b) / temperature) exceeds uniforms[b] times the
   *  row's total (weights in float, sums in double, index order); -inf logits are never
   *  chosen; an all -inf row gives 0. uniforms[b] in [0, 1), temperature > 0. */
  sampleRows(out: I32, logits: F32, uniforms: Float64Array, B: number, V: number, temperature: number): void;
  /** dlogits[n, v] = dout[n] * (onehot(labels[n])[v] - softmax(logits[n])[v]); zero rows for ignored labels.
   *  In place allowed: dlogits may be logits itself, which saves an [N, V] buffer. */
  logprobsBackward(dlogits: F32, dout: F32, logits: F32, lse: F32, labels: I32, N: number, V: number): void;

  // ---- transformer pieces ----
  /** Rotary embedding on x [B, T, NH, HS] (in place allowed). The first rotaryDim dims of each
   *  head rotate by positions[b, t] * invFreq[i]; invFreq has rotaryDim/2 entries (the caller
   *  computes it: theta, scaling). interleaved=false pairs (i, i + rotaryDim/2) as HF's
   *  rotate_half (NeoX, LLaMA); true pairs (2i, 2i+1) as GPT-J. inverse=true rotates by the
   *  negative angle, which is the backward. */
  rope(out: F32, x: F32, positions: I32, invFreq: F32, B: number, T: number, NH: number, HS: number,
    rotaryDim: number, interleaved: boolean, inverse: boolean): void;
  /** Fused scaled-dot-product attention.
   *  q: [B, NH, Tq, HS]; k, v: [B, NKV, kvCap, HS] of which the first Tk positions are used
   *  (kvCap >= Tk: a KV cache); out: [B, NH, Tq, HS]; lse: [B, NH, Tq] (saved for the backward).
   *  Query head h reads kv head h / (NH / NKV). keyMask [B, Tk] (1 keep, 0 pad) or null.
   *  causal: query i (absolute position Tk - Tq + i) sees keys j <= Tk - Tq + i.
   *  A query row that sees no key at all gets out = 0 and lse = -Infinity.
   *  Dropout of the attention probabilities (transformers' eager attention): with dropoutP in
   *  (0, 1), out = (P * Z) V where P is the softmax and Z the keep mask of
   *  attentionDropoutKeep(dropoutP, seed); lse stays that of the undropped softmax. The mask is
   *  a hash of (seed, b, h, i, j), never stored: the same for any thread count or tiling, and
   *  regenerated by the backward. dropoutP = 0 (seed ignored) is plain attention, bit for bit.
   *  dropoutP outside [0, 1) or a seed that is not an integer in [0, 2^53] throws a RangeError. */
  attentionForward(out: F32, lse: F32, q: F32, k: F32, v: F32, keyMask: F32 | null,
    B: number, NH: number, NKV: number, Tq: number, Tk: number, kvCap: number, HS: number,
    scale: number, causal: boolean, dropoutP: number, seed: number): void;
  /** Backward of attentionForward with kvCap = Tk. dk, dv: [B, NKV, Tk, HS], summed over the
   *  query heads that share a kv head. dropoutP and seed must be the forward's; out is its
   *  (dropped) output. */
  attentionBackward(dq: F32, dk: F32, dv: F32, dout: F32, q: F32, k: F32, v: F32, out: F32, lse: F32,
    keyMask: F32 | null, B: number, NH: number, NKV: number, Tq: number, Tk: number, HS: number,
    scale: number, causal: boolean, dropoutP: number, seed: number): void;
  /** The scaled keep mask attentionForward applies with (dropoutP, seed): out [B, NH, Tq, Tk], each
   *  entry 1 / (1 - dropoutP) (kept, probability 1 - dropoutP) or 0 (dropped). For tests and references. */
  attentionDropoutKeep(out: F32, B: number, NH: number, Tq: number, Tk: number, dropoutP: number, seed: number): void;

  // ---- optimizer ----
  /** One torch.optim.AdamW step on a flat parameter (in place on param, m, v):
   *  param *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
   *  param -= lr * (m / (1-b1^step)) / (sqrt(v / (1-b2^step)) + eps). step counts from 1.
   *  Follows torch's single-tensor CPU path operation by operation (20 steps agree within
   *  1e-5 relative). lr, eps >= 0 and betas in [0, 1), else a RangeError. */
  adamw(param: F32, grad: F32, m: F32, v: F32, lr: number, beta1: number, beta2: number,
    eps: number, weightDecay: number, step: number): void;

  // ---- dtype conversion (checkpoints) ----
  f16ToF32(out: F32, inp: Uint16Array): void;
  bf16ToF32(out: F32, inp: Uint16Array): void;
  /** Round to nearest even. */
  f32ToF16(out: Uint16Array, inp: F32): void;
  f32ToBf16(out: Uint16Array, inp: F32): void;
}

const require = createRequire(import.meta.url);

/** Iterations an idle OpenMP thread spins before it sleeps, unless the user set their own. */
export const DEFAULT_GOMP_SPINCOUNT = '100000';

function load(): NativeAddon {
  // libgomp reads its settings once, when the addon loads it. Its default lets an idle
  // kernel thread spin for 300k iterations after every parallel region; where cores are
  // shared (colocated roles, the demo's processes on one machine, parallel tests) those
  // spinning threads take the CPU the other processes' kernels are waiting for, and a
  // 2-thread kernel's median time grew 5-10x on a loaded 2-core machine. 100k spins still
  // catch the back-to-back small kernels of KV-cache decoding on an idle machine (tiny
  // config generation: 10k spins 3.8k tokens/s, 100k 4.1k, 1M 4.9k) and then sleep.
  // OMP_WAIT_POLICY or GOMP_SPINCOUNT set by the user win.
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) {
    process.env.GOMP_SPINCOUNT = DEFAULT_GOMP_SPINCOUNT;
  }
  const path = join(repoRoot, 'build', 'Release', 'quartet.node');
  try {
    return require(path) as NativeAddon;
  } catch (err) {
    throw new Error(`quartet: cannot load the native addon at ${path} (run \`npm install\` or \`npx node-gyp rebuild\`): ${(err as Error).message}`);
  }
}

/** The addon, loaded once per process (or worker thread). */
export const native: NativeAddon = load();
