// Attention: rotary position embedding and fused scaled-dot-product attention
// (causal, key padding mask, grouped-query, dropout of the probabilities). The
// training op saves the log-sum-exp rows so that the backward never rebuilds the
// score matrix; with dropout it keeps only the seed of the mask, which the kernel
// regenerates. The cache helpers serve generation (no gradient, no dropout).
import { native } from '../../native.js';
import { defineRule, isGradEnabled, record } from '../tape/autograd.js';
import type { Rng } from '../rng.js';
import { empty, fmtShape, type Tensor } from '../tensor.js';
import { f32, fail, i32, rank } from './check.js';

interface RopeAttrs {
  B: number;
  T: number;
  NH: number;
  HS: number;
  rotaryDim: number;
  interleaved: boolean;
}

/** Rotary embedding of x [B, T, NH, HS] at positions i32 [B, T]; invFreq [rotaryDim/2].
 *  interleaved=false pairs (i, i + rotaryDim/2) (NeoX, LLaMA); true pairs (2i, 2i+1) (GPT-J). */
export function rope(x: Tensor, positions: Tensor, invFreq: Tensor, rotaryDim: number, interleaved: boolean): Tensor {
  const xd = f32('rope', 'x', x);
  const pd = i32('rope', 'positions', positions);
  const fd = f32('rope', 'invFreq', invFreq);
  rank('rope', 'x', x, 4);
  const [B, T, NH, HS] = x.shape;
  if (positions.shape.length !== 2 || positions.shape[0] !== B || positions.shape[1] !== T) {
    fail('rope', `positions ${fmtShape(positions.shape)} must be [B, T] of x ${fmtShape(x.shape)}`);
  }
  if (!Number.isInteger(rotaryDim) || rotaryDim <= 0 || rotaryDim > HS || rotaryDim % 2 !== 0) {
    fail('rope', `rotaryDim ${rotaryDim} must be even and in 2..${HS} (HS of x ${fmtShape(x.shape)})`);
  }
  if (invFreq.size !== rotaryDim / 2) fail('rope', `invFreq ${fmtShape(invFreq.shape)} must have rotaryDim/2 = ${rotaryDim / 2} entries`);
  const out = empty(x.shape);
  native.rope(out.f32, xd, pd, fd, B, T, NH, HS, rotaryDim, interleaved, false);
  record<RopeAttrs>('rope', out, [x], [positions, invFreq], [], { B, T, NH, HS, rotaryDim, interleaved });
  return out;
}
defineRule<RopeAttrs>('rope', (n, [g]) => {
  const [pos, inv] = n.saved;
  const { B, T, NH, HS, rotaryDim, interleaved } = n.attrs;
  const dx = empty(g!.shape);
  native.rope(dx.f32, g!.f32, pos.i32, inv.f32, B, T, NH, HS, rotaryDim, interleaved, true);
  return [dx];
});

export interface AttentionOptions {
  /** [B, Tk], 1 keep / 0 pad (left-padded batches). */
  keyMask?: Tensor | null;
  /** Query i (absolute position Tk - Tq + i) sees keys j <= Tk - Tq + i. */
  causal: boolean;
  /** Default 1 / sqrt(HS). */
  scale?: number;
}

/** Dropout of the attention probabilities (transformers' attn_pdrop / attention_dropout). */
export interface AttentionDropout {
  /** In [0, 1); 0 drops nothing and draws nothing from rng. */
  p: number;
  /** One 32-bit seed is drawn per call: a replayed generator (checkpoint) replays the mask. */
  rng: Rng;
}

export interface TrainAttentionOptions extends AttentionOptions {
  /** Absent or null: no dropout (evaluation). */
  dropout?: AttentionDropout | null;
}

interface AttnDims {
  B: number;
  NH: number;
  NKV: number;
  Tq: number;
  Tk: number;
  cap: number;
  HS: number;
}

function attnDims(op: string, q: Tensor, k: Tensor, v: Tensor, Tk: number | null): AttnDims {
  rank(op, 'q', q, 4);
  rank(op, 'k', k, 4);
  rank(op, 'v', v, 4);
  const [B, NH, Tq, HS] = q.shape;
  const [Bk, NKV, cap, HSk] = k.shape;
  const shapes = `q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`;
  if (Bk !== B || HSk !== HS || v.shape.some((d, i) => d !== k.shape[i])) fail(op, `shapes do not fit: ${shapes}`);
  if (NKV === 0 || NH % NKV !== 0) fail(op, `query heads ${NH} are not a multiple of kv heads ${NKV}: ${shapes}`);
  const tk = Tk ?? cap;
  if (!Number.isInteger(tk) || tk < 0 || tk > cap) fail(op, `Tk ${tk} out of range for cache ${fmtShape(k.shape)}`);
  return { B, NH, NKV, Tq, Tk: tk, cap, HS };
}

function maskData(op: string, mask: Tensor | null | undefined, B: number, Tk: number): Float32Array | null {
  if (mask == null) return null;
  const md = f32(op, 'keyMask', mask);
  if (mask.shape.length !== 2 || mask.shape[0] !== B || mask.shape[1] !== Tk) {
    fail(op, `keyMask ${fmtShape(mask.shape)} must be [B, Tk] = [${B}, ${Tk}]`);
  }
  return md;
}

interface AttnAttrs extends AttnDims {
  scale: number;
  causal: boolean;
  masked: boolean;
  dropoutP: number;
  seed: number;
}

/** Fused attention: q [B, NH, Tq, HS], k and v [B, NKV, Tk, HS] -> [B, NH, Tq, HS].
 *  A query row that sees no key gives zeros. With opts.dropout, the softmax probabilities are
 *  dropped (inverted dropout, as transformers' eager attention) before they weight v. */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: TrainAttentionOptions): Tensor {
  const qd = f32('attention', 'q', q);
  const kd = f32('attention', 'k', k);
  const vd = f32('attention', 'v', v);
  const dims = attnDims('attention', q, k, v, null);
  const { B, NH, NKV, Tq, Tk, HS } = dims;
  const md = maskData('attention', opts.keyMask, B, Tk);
  const scale = opts.scale ?? 1 / Math.sqrt(HS);
  const dropoutP = opts.dropout?.p ?? 0;
  if (!(dropoutP >= 0 && dropoutP < 1)) fail('attention', `dropout p must be in [0, 1), got ${dropoutP}`);
  const seed = dropoutP > 0 ? opts.dropout!.rng.nextU32() : 0;
  const out = empty(q.shape);
  const lse = empty([B, NH, Tq], 'f32', false);
  native.attentionForward(out.f32, lse.f32, qd, kd, vd, md, B, NH, NKV, Tq, Tk, Tk, HS, scale, opts.causal, dropoutP, seed);
  const save = md === null ? [q, k, v, out] : [q, k, v, out, opts.keyMask!];
  record<AttnAttrs>('attention', out, [q, k, v], save, [lse],
    { ...dims, scale, causal: opts.causal, masked: md !== null, dropoutP, seed });
  return out;
}
defineRule<AttnAttrs>('attention', (n, [g]) => {
  const { B, NH, NKV, Tq, Tk, HS, scale, causal, masked, dropoutP, seed } = n.attrs;
  const q = n.saved[0], k = n.saved[1], v = n.saved[2], out = n.saved[3];
  const mask = masked ? n.saved[4] : null;
  const lse = n.saved[n.saved.length - 1];
  const dq = empty(q.shape);
  const dk = empty(k.shape);
  const dv = empty(v.shape);
  native.attentionBackward(dq.f32, dk.f32, dv.f32, g!.f32, q.f32, k.f32, v.f32, out.f32, lse.f32,
    mask === null ? null : mask.f32, B, NH, NKV, Tq, Tk, HS, scale, causal, dropoutP, seed);
  // The kernel computes all three; hand back only those asked for.
  const grads = [dq, dk, dv];
  return grads.map((g, i) => {
    if (n.needs[i]) return g;
    g.dispose();
    return null;
  });
});

/** Attention over the first Tk positions of a KV cache k, v [B, NKV, cap, HS] (generation; no gradient).
 *  keyMask, if given, is [B, Tk]. */
export function attentionCached(q: Tensor, kCache: Tensor, vCache: Tensor, Tk: number, opts: AttentionOptions): Tensor {
  const qd = f32('attentionCached', 'q', q);
  const kd = f32('attentionCached', 'kCache', kCache);
  const vd = f32('attentionCached', 'vCache', vCache);
  if (isGradEnabled() && q.requiresGrad) fail('attentionCached', 'has no gradient; run it under noGrad (use attention() to train)');
  const { B, NH, NKV, Tq, cap, HS } = attnDims('attentionCached', q, kCache, vCache, Tk);
  const md = maskData('attentionCached', opts.keyMask, B, Tk);
  const out = empty(q.shape);
  const lse = empty([B, NH, Tq], 'f32', false);
  native.attentionForward(out.f32, lse.f32, qd, kd, vd, md, B, NH, NKV, Tq, Tk, cap, HS, opts.scale ?? 1 / Math.sqrt(HS), opts.causal, 0, 0);
  lse.dispose();
  return out;
}

/** Writes x [B, NKV, T, HS] into cache [B, NKV, cap, HS] at positions start..start+T-1 (no gradient). */
export function cacheWrite(cache: Tensor, x: Tensor, start: number): void {
  const cd = f32('cacheWrite', 'cache', cache);
  const xd = f32('cacheWrite', 'x', x);
  rank('cacheWrite', 'cache', cache, 4);
  rank('cacheWrite', 'x', x, 4);
  const [B, NKV, cap, HS] = cache.shape;
  const T = x.shape[2];
  if (x.shape[0] !== B || x.shape[1] !== NKV || x.shape[3] !== HS) {
    fail('cacheWrite', `x ${fmtShape(x.shape)} does not fit cache ${fmtShape(cache.shape)}`);
  }
  if (!Number.isInteger(start) || start < 0 || start + T > cap) {
    fail('cacheWrite', `positions ${start}..${start + T - 1} do not fit cache ${fmtShape(cache.shape)}`);
  }
  // One contiguous block of T*HS per (batch, head).
  const block = T * HS;
  for (let bh = 0; bh < B * NKV; bh++) {
    cd.set(xd.subarray(bh * block, (bh + 1) * block), (bh * cap + start) * HS);
  }
}
