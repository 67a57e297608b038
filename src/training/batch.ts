// Batches as the engines take them: typed arrays with their sizes (checked
// once, where a request enters a role: actors/requests.ts), cut into
// micro-batches, and the position ids every forward uses.
import { generationPositions } from '../models/transformer.js';
import type { ForwardOptions } from '../models/transformer.js';

/** Sequences [B, T]: ids and attention mask (1 real token, 0 pad; pads may sit anywhere). */
export interface Seqs {
  ids: Int32Array;
  mask: Int32Array;
  B: number;
  T: number;
}

/** Row ranges [start, end) of micro-batches of at most `size` rows (size 0 or absent: one batch). */
export function microRanges(B: number, size: number | undefined): [number, number][] {
  const n = size && size > 0 ? size : B;
  const out: [number, number][] = [];
  for (let s = 0; s < B; s += n) out.push([s, Math.min(B, s + n)]);
  return out;
}

/** Rows start..end-1 of a [B, W] array (a view, no copy). */
export function rows<A extends Float32Array | Int32Array>(a: A, W: number, start: number, end: number): A {
  return a.subarray(start * W, end * W) as A;
}

export function sliceSeqs(s: Seqs, start: number, end: number): Seqs {
  return { ids: rows(s.ids, s.T, start, end), mask: rows(s.mask, s.T, start, end), B: end - start, T: s.T };
}

/**
 * Forward options of every engine: positions are cumsum(mask) - 1 as in
 * transformers' generate(), so a left-padded sequence gets the same positions
 * in training as when it was generated, and right padding changes nothing.
 */
export function forwardOptions(s: Seqs, train: boolean): ForwardOptions {
  return { mask: s.mask, positions: generationPositions(s.mask, s.B, s.T), train };
}

/** Index of the last real token of each row: [B]. */
export function lastReal(s: Seqs): Int32Array {
  const out = new Int32Array(s.B);
  for (let b = 0; b < s.B; b++) {
    let t = s.T - 1;
    while (t > 0 && s.mask[b * s.T + t] === 0) t--;
    out[b] = t;
  }
  return out;
}
