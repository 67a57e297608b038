// Generation of one sequence that hands each token to a callback as soon as it
// is chosen, so `quartet chat` can print an answer while it is being written.
// src/models/generate.ts has no per-token hook yet, so this runs the same loop
// for B = 1: the prompt once through a KV cache, then one token per step, with
// generate()'s choice rules (greedy, or temperature -> top-k -> top-p and one
// uniform draw per sampled step), so that for the same seed both give the
// same tokens (test/cli/chat.test.ts checks it). When generate() gains an
// `onToken` hook this file becomes a call to it.
import { Rng, fromI32, gatherRows, noGrad, reshape, tidy } from '../tensor/index.js';
import { KVCache, type Transformer } from '../models/transformer.js';

export interface StreamOptions {
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Token ids that end the answer (the EOS is passed to onToken, then generation stops). */
  eosTokenIds: readonly number[];
}

/**
 * Generates after `prompt` until an EOS, maxNewTokens, or onToken returning
 * false. Returns the generated ids (an EOS included when it ended the answer).
 */
export function streamGenerate(model: Transformer, prompt: readonly number[], opts: StreamOptions, rng: Rng, onToken: (id: number) => boolean): number[] {
  const cfg = model.cfg;
  const n = opts.maxNewTokens;
  if (!Number.isInteger(n) || n < 1) throw new Error(`stream: maxNewTokens must be a positive integer, got ${n}`);
  if (prompt.length === 0) throw new Error('stream: the prompt has no tokens');
  if (prompt.length + n > cfg.maxPositions) {
    throw new Error(`stream: prompt (${prompt.length}) + max new tokens (${n}) exceed the model's ${cfg.maxPositions} positions`);
  }
  if (opts.temperature !== undefined && !(opts.temperature > 0)) throw new Error(`stream: temperature must be > 0, got ${opts.temperature}`);
  if (opts.topK !== undefined && !(Number.isInteger(opts.topK) && opts.topK >= 0)) throw new Error(`stream: topK must be a non-negative integer, got ${opts.topK}`);
  if (opts.topP !== undefined && !(opts.topP > 0 && opts.topP <= 1)) throw new Error(`stream: topP must be in (0, 1], got ${opts.topP}`);
  const sample = opts.temperature !== undefined || opts.topK !== undefined || opts.topP !== undefined;
  const eos = new Set(opts.eosTokenIds);
  const out: number[] = [];
  const cache = noGrad(() => new KVCache(cfg, 1, prompt.length + n));
  try {
    let input = Int32Array.from(prompt);
    let position = 0;
    for (let s = 0; s < n; s++) {
      const Tq = input.length;
      const positions = Int32Array.from({ length: Tq }, (_, t) => position + t);
      const logits = noGrad(() => tidy(() => {
        const h = model.hidden(fromI32(input, [1, Tq]), { mask: new Int32Array(Tq).fill(1), positions, cache });
        const last = gatherRows(reshape(h, [Tq, h.shape[2]]), fromI32([Tq - 1], [1]));
        return model.logits(last);
      }));
      const row = Float32Array.from(logits.f32);
      logits.dispose();
      const id = sample ? sampleRow(row, opts, rng) : argmax(row);
      out.push(id);
      position += Tq;
      input = Int32Array.of(id);
      if (!onToken(id) || eos.has(id)) break;
    }
  } finally {
    cache.dispose();
  }
  return out;
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let v = 1; v < row.length; v++) if (row[v] > row[best]) best = v;
  return best;
}

/** generate()'s sampling rule: temperature, then top-k (ties with the k-th kept), then top-p, then one draw. */
function sampleRow(row: Float32Array, opts: StreamOptions, rng: Rng): number {
  const V = row.length;
  const s = Float64Array.from(row, (x) => x / (opts.temperature ?? 1));
  const topK = opts.topK ?? 0;
  if (topK > 0 && topK < V) {
    const kth = Float64Array.from(s).sort()[V - topK];
    for (let v = 0; v < V; v++) if (s[v] < kth) s[v] = -Infinity;
  }
  let max = -Infinity;
  for (const x of s) if (x > max) max = x;
  const p = Float64Array.from(s, (x) => (x === -Infinity ? 0 : Math.exp(x - max)));
  normalise(p);
  const topP = opts.topP ?? 1;
  if (topP < 1) {
    // Ascending by probability (higher index first among equals); drop while the dropped mass stays <= 1 - p; keep one.
    const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => (p[a] - p[b]) || (b - a));
    let cum = 0;
    for (let i = 0; i < V - 1; i++) {
      cum += p[order[i]];
      if (cum <= 1 - topP) p[order[i]] = 0;
    }
    normalise(p);
  }
  const u = rng.uniform();
  let cum = 0;
  let last = 0;
  for (let v = 0; v < V; v++) {
    if (p[v] === 0) continue;
    cum += p[v];
    last = v;
    if (u < cum) return v;
  }
  return last;
}

function normalise(p: Float64Array): void {
  let z = 0;
  for (const x of p) z += x;
  for (let v = 0; v < p.length; v++) p[v] /= z;
}
