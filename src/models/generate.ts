// Generation on a left-padded batch, as transformers' generate(): the prompt
// runs once through the stack filling a preallocated KV cache (capacity prompt +
// max new tokens), then one token per step. Positions are cumsum(mask) - 1.
// Greedy, or sampling with temperature -> top-k -> top-p (transformers' order
// and tie rules), seeded; rows stop at an EOS token and are padded after it.
// On request, the log-prob of each generated token under the model's own
// distribution (raw logits, before temperature and filtering), as
// DeepSpeed-Chat and OpenAI-style logprobs report it.
import { Rng, type Tensor, fromI32, gatherRows, noGrad, reshape, sampleRows, tidy, tokenLogprobsBuffer } from '../tensor/index.js';
import { KVCache, type Transformer, generationPositions } from './transformer.js';

export interface GenerateOptions {
  maxNewTokens: number;
  /** Sample instead of taking the argmax; default true when temperature, topK or topP is given. */
  doSample?: boolean;
  /** Divides the logits before sampling (default 1). */
  temperature?: number;
  /** Keep the k most likely tokens (0: all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1: all). */
  topP?: number;
  /** Stop a row at any of these; default the config's eos_token_id. null: never stop early. */
  eosTokenId?: number | number[] | null;
  /** Fills rows after their EOS; default the config's pad id, else the first EOS id, else 0. */
  padTokenId?: number;
  seed?: number;
  /** Draw from this generator instead of a fresh one seeded with `seed`, so successive calls continue one stream (a chat). */
  rng?: Rng;
  /**
   * Called after each step with its index and the new token of every row (the
   * pad id for rows already stopped), so a caller can show tokens as they are
   * made. Returning false stops every row after this step's token.
   */
  onToken?: (step: number, tokens: Int32Array) => boolean;
  /** false: recompute the whole sequence every step (a check of the cache). */
  useCache?: boolean;
  /** Also return each generated token's log-prob (default false: PPO recomputes them with the actor's `logprobs`). */
  logprobs?: boolean;
}

export interface GenerateResult {
  /** [B, T] with T = prompt length + newTokens: the prompt (left-padded) then the new tokens. */
  sequences: Int32Array;
  /** [B, T]: 1 for real prompt tokens and generated tokens up to and including EOS. */
  mask: Int32Array;
  /** [B, newTokens]: log-prob of each generated token, 0 after a row's EOS; null unless asked for. */
  logprobs: Float32Array | null;
  B: number;
  T: number;
  promptLength: number;
  newTokens: number;
}

/** Picks one token per row from logits [B, V]. */
function choose(logits: Float32Array, B: number, V: number, opts: GenerateOptions, rng: Rng): Int32Array {
  const out = new Int32Array(B);
  const sample = opts.doSample ?? (opts.temperature !== undefined || opts.topK !== undefined || opts.topP !== undefined);
  const topK = opts.topK ?? 0, topP = opts.topP ?? 1;
  if (sample && !((topK > 0 && topK < V) || topP < 1)) {
    // Plain temperature sampling, the hot path of PPO rollouts, in the native kernel: one uniform
    // a row, drawn in row order as sampleRow draws them (10x faster than the JavaScript loop).
    const u = new Float64Array(B);
    for (let b = 0; b < B; b++) u[b] = rng.uniform();
    sampleRows(out, logits, u, B, V, opts.temperature ?? 1);
    return out;
  }
  for (let b = 0; b < B; b++) {
    const row = logits.subarray(b * V, (b + 1) * V);
    out[b] = sample ? sampleFiltered(row, opts.temperature ?? 1, topK, topP, rng) : argmax(row);
  }
  return out;
}

function argmax(row: Float32Array): number {
  let best = 0;
  let max = row[0];
  for (let v = 1; v < row.length; v++) {
    if (row[v] > max) {
      max = row[v];
      best = v;
    }
  }
  return best;
}

function sampleFiltered(row: Float32Array, temp: number, topK: number, topP: number, rng: Rng): number {
  const V = row.length;
  const s = new Float64Array(V);
  for (let v = 0; v < V; v++) s[v] = row[v] / temp;
  if (topK > 0 && topK < V) {
    // transformers keeps every score >= the k-th largest (ties with it survive).
    const kth = Float64Array.from(s).sort()[V - topK];
    for (let v = 0; v < V; v++) if (s[v] < kth) s[v] = -Infinity;
  }
  let max = -Infinity;
  for (let v = 0; v < V; v++) if (s[v] > max) max = s[v];
  const p = new Float64Array(V);
  let z = 0;
  for (let v = 0; v < V; v++) {
    p[v] = s[v] === -Infinity ? 0 : Math.exp(s[v] - max);
    z += p[v];
  }
  for (let v = 0; v < V; v++) p[v] /= z;
  if (topP < 1) {
    // transformers: sort ascending, drop tokens whose cumulative probability is <= 1 - top_p, keep at least one.
    const order = sortedDesc(p, V).reverse();
    let cum = 0;
    for (let i = 0; i < order.length - 1; i++) {
      cum += p[order[i]];
      if (cum <= 1 - topP) p[order[i]] = 0;
    }
    z = 0;
    for (let v = 0; v < V; v++) z += p[v];
    for (let v = 0; v < V; v++) p[v] /= z;
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

/** Indices of the `n` largest entries, largest first (stable: lower index first among equals). */
function sortedDesc(x: Float64Array, n: number): number[] {
  const idx = Array.from({ length: x.length }, (_, i) => i);
  idx.sort((a, b) => (x[b] - x[a]) || (a - b));
  return idx.slice(0, n);
}

/**
 * Generates up to maxNewTokens for a left-padded batch of prompts ids/mask [B, T0]
 * (mask null: no padding). Every row needs at least one real token.
 */
export function generate(model: Transformer, ids: Int32Array, mask: Int32Array | null, B: number, T0: number, opts: GenerateOptions): GenerateResult {
  const cfg = model.cfg;
  const n = opts.maxNewTokens;
  if (!Number.isInteger(n) || n < 1) throw new Error(`generate: maxNewTokens must be a positive integer, got ${n}`);
  if (ids.length !== B * T0) throw new Error(`generate: ids have ${ids.length} entries, expected B*T = ${B}*${T0}`);
  if (opts.temperature !== undefined && !(opts.temperature > 0)) throw new Error(`generate: temperature must be > 0, got ${opts.temperature}`);
  if (opts.topK !== undefined && !(Number.isInteger(opts.topK) && opts.topK >= 0)) throw new Error(`generate: topK must be a non-negative integer, got ${opts.topK}`);
  if (opts.topP !== undefined && !(opts.topP > 0 && opts.topP <= 1)) throw new Error(`generate: topP must be in (0, 1], got ${opts.topP}`);
  const m0 = mask ?? new Int32Array(B * T0).fill(1);
  if (m0.length !== B * T0) throw new Error(`generate: mask has ${m0.length} entries, expected ${B * T0}`);
  const real = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T0; t++) real[b] += m0[b * T0 + t];
    if (real[b] === 0) throw new Error(`generate: prompt row ${b} has no real token (its mask is all 0)`);
  }
  const longest = Math.max(...real);
  if (cfg.positions === 'learned' && longest + n > cfg.maxPositions) {
    throw new Error(`generate: a prompt of ${longest} tokens + ${n} new tokens exceeds the ${cfg.maxPositions} learned positions of this ${cfg.modelType} model`);
  }
  const eos = new Set(opts.eosTokenId === null ? [] : opts.eosTokenId === undefined ? cfg.eosTokenIds : [opts.eosTokenId].flat());
  const pad = opts.padTokenId ?? cfg.padTokenId ?? (eos.size ? [...eos][0] : 0);
  const V = cfg.vocabSize;
  const T = T0 + n;
  const seq = new Int32Array(B * T).fill(pad);
  const outMask = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    seq.set(ids.subarray(b * T0, (b + 1) * T0), b * T);
    outMask.set(m0.subarray(b * T0, (b + 1) * T0), b * T);
  }
  const lp = opts.logprobs ? new Float32Array(B * n) : null;
  const done = new Uint8Array(B);
  const rng = opts.rng ?? new Rng(opts.seed ?? 0);
  const useCache = opts.useCache ?? true;
  const cache = useCache ? noGrad(() => new KVCache(cfg, B, T)) : null;
  let steps = 0;
  try {
    for (let s = 0; s < n; s++) {
      const logits = noGrad(() => tidy(() => nextLogits(model, seq, outMask, real, B, T, T0 + s, s, cache)));
      const tok = choose(logits.f32, B, V, opts, rng);
      let tokLp: Float32Array | null = null;
      if (lp) {
        tokLp = new Float32Array(B);
        tokenLogprobsBuffer(tokLp, logits.f32, tok, B, V);
      }
      logits.dispose();
      for (let b = 0; b < B; b++) {
        const at = b * T + T0 + s;
        if (done[b]) {
          tok[b] = pad;
          continue;
        }
        seq[at] = tok[b];
        outMask[at] = 1;
        if (lp) lp[b * n + s] = tokLp![b];
        real[b]++;
        if (eos.has(tok[b])) done[b] = 1;
      }
      steps = s + 1;
      if (opts.onToken && opts.onToken(s, tok) === false) break;
      if (done.every((d) => d === 1)) break;
    }
  } finally {
    cache?.dispose();
  }
  // Trim the columns never reached when every row stopped early.
  const Tout = T0 + steps;
  const trim = (a: Int32Array, w: number, keep: number): Int32Array => {
    if (keep === w) return a;
    const r = new Int32Array(B * keep);
    for (let b = 0; b < B; b++) r.set(a.subarray(b * w, b * w + keep), b * keep);
    return r;
  };
  let lpOut: Float32Array | null = null;
  if (lp) {
    lpOut = new Float32Array(B * steps);
    for (let b = 0; b < B; b++) lpOut.set(lp.subarray(b * n, b * n + steps), b * steps);
  }
  return { sequences: trim(seq, T, Tout), mask: trim(outMask, T, Tout), logprobs: lpOut, B, T: Tout, promptLength: T0, newTokens: steps };
}

/** Logits [B, V] for the next token, with the cache (prompt once, then one token) or over the whole prefix. */
function nextLogits(model: Transformer, seq: Int32Array, mask: Int32Array, real: Int32Array, B: number, T: number, len: number, step: number, cache: KVCache | null): Tensor {
  let ids: Int32Array, m: Int32Array, pos: Int32Array, Tq: number;
  if (cache && step > 0) {
    // One new token per row at column len - 1; its position is the count of real tokens before it.
    Tq = 1;
    ids = new Int32Array(B);
    m = new Int32Array(B).fill(1);
    pos = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      ids[b] = seq[b * T + len - 1];
      pos[b] = real[b] - 1;
    }
  } else {
    Tq = len;
    ids = new Int32Array(B * len);
    m = new Int32Array(B * len);
    for (let b = 0; b < B; b++) {
      ids.set(seq.subarray(b * T, b * T + len), b * len);
      m.set(mask.subarray(b * T, b * T + len), b * len);
    }
    pos = generationPositions(m, B, len);
  }
  const h = model.hidden(fromI32(ids, [B, Tq]), { mask: m, positions: pos, cache });
  const E = h.shape[2];
  let last = reshape(h, [B * Tq, E]);
  if (Tq > 1) {
    const idx = new Int32Array(B);
    for (let b = 0; b < B; b++) idx[b] = b * Tq + Tq - 1;
    last = gatherRows(last, fromI32(idx, [B]));
  }
  return model.logits(last);
}
