// Numeric comparison for kernel tests: |got - want| <= atol + rtol * |want| per element,
// NaN matching NaN and infinities matching exactly. On failure the message names the
// first bad element and the largest difference, llm.c style, so a mismatch is readable.
import type { Test } from 'tap';
import { mulberry32 } from '../../src/util/mulberry32.js';

export interface Tolerance {
  rtol: number;
  atol: number;
}

export const EXACT: Tolerance = { rtol: 0, atol: 0 };

export function closeReport(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance): string | null {
  if (got.length !== want.length) return `length ${got.length}, expected ${want.length}`;
  let bad = -1;
  let maxDiff = 0;
  let maxAt = -1;
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    let ok: boolean;
    if (Number.isNaN(w)) ok = Number.isNaN(g);
    else if (!Number.isFinite(w)) ok = g === w;
    else {
      const d = Math.abs(g - w);
      ok = d <= tol.atol + tol.rtol * Math.abs(w);
      if (!(d <= maxDiff)) {
        maxDiff = d;
        maxAt = i;
      }
    }
    if (!ok && bad < 0) bad = i;
  }
  if (bad < 0) return null;
  return `element ${bad}: got ${got[bad]}, expected ${want[bad]}; max |diff| ${maxDiff} at ${maxAt} ` +
    `(rtol ${tol.rtol}, atol ${tol.atol}, ${want.length} elements)`;
}

export function assertClose(t: Test, name: string, got: ArrayLike<number>, want: ArrayLike<number>,
  tol: Tolerance): void {
  const report = closeReport(got, want, tol);
  t.ok(report === null, report === null ? name : `${name}: ${report}`);
}

/** Bitwise equality of two float arrays (for thread-count agreement). */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/** A small seeded generator (mulberry32) so kernel tests are reproducible. */
export const rng = mulberry32;

/** n normal(0, scale) floats from a seeded generator. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = r() || 1e-12, v = r();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}
