// Batches as the engines take them: typed arrays with their sizes, read from
// the tensors a role receives (checked by name, dtype and shape, and wrapped
// without copying), cut into micro-batches, and the position ids every forward
// uses. A structural type stands for the runtime's wire tensor so this layer
// never imports src/runtime (ARCHITECTURE.md §8).
import { generationPositions } from '../models/transformer.js';
import type { ForwardOptions } from '../models/transformer.js';

export interface TensorLike {
  dtype: string;
  shape: number[];
  data: ArrayLike<number> | ArrayLike<bigint>;
}

/** Sequences [B, T]: ids and attention mask (1 real token, 0 pad; pads may sit anywhere). */
export interface Seqs {
  ids: Int32Array;
  mask: Int32Array;
  B: number;
  T: number;
}

function describe(t: TensorLike): string {
  return `${t.dtype} [${t.shape}]`;
}

/** The named tensor as an f32 or i32 array of the given shape (-1: any size, fixed by the first tensor). */
export function take(op: string, tensors: Record<string, TensorLike>, name: string, dtype: 'f32' | 'i32', shape: number[]): Float32Array | Int32Array {
  const t = tensors[name];
  if (!t) throw new Error(`${op}: tensor '${name}' is missing (got ${Object.keys(tensors).join(', ') || 'none'})`);
  const ok = t.dtype === dtype && t.shape.length === shape.length && shape.every((d, i) => d < 0 || d === t.shape[i]);
  if (!ok) throw new Error(`${op}: tensor '${name}' must be ${dtype} [${shape.map((d) => (d < 0 ? '?' : d))}], got ${describe(t)}`);
  const want = dtype === 'f32' ? Float32Array : Int32Array;
  if (!(t.data instanceof want)) throw new Error(`${op}: tensor '${name}' holds a ${t.data.constructor.name}, not a ${want.name}`);
  return t.data;
}

/** Sequences from `ids`/`mask`-style tensor names, checking that every row has a real token. */
export function takeSeqs(op: string, tensors: Record<string, TensorLike>, idsName = 'ids', maskName = 'mask', minT = 1): Seqs {
  const ids = take(op, tensors, idsName, 'i32', [-1, -1]) as Int32Array;
  const [B, T] = tensors[idsName].shape;
  const mask = take(op, tensors, maskName, 'i32', [B, T]) as Int32Array;
  if (B < 1) throw new Error(`${op}: '${idsName}' has no rows`);
  if (T < minT) throw new Error(`${op}: '${idsName}' has ${T} columns, needs at least ${minT}`);
  for (let b = 0; b < B; b++) {
    let real = 0;
    for (let t = 0; t < T; t++) {
      const m = mask[b * T + t];
      if (m !== 0 && m !== 1) throw new Error(`${op}: '${maskName}'[${b}, ${t}] is ${m}; a mask holds 0 or 1`);
      real += m;
    }
    if (real === 0) throw new Error(`${op}: row ${b} of '${maskName}' has no real token`);
  }
  return { ids, mask, B, T };
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
