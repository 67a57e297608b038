// Argument checks shared by the ops: every error names the op, the argument
// and the shapes involved.
import { fmtShape, type Tensor, type Shape } from '../tensor.js';

/** Throws unless t is a tensor that was not disposed (either dtype). */
export function live(op: string, t: Tensor, name = 'x'): void {
  if (t === null || typeof t !== 'object' || !(t as { isTensor?: boolean }).isTensor) {
    throw new Error(`${op}: ${name} must be a Tensor, got ${t === null ? 'null' : typeof t}`);
  }
  if (t.disposed) throw new Error(`${op}: ${name} ${fmtShape(t.shape)} was disposed`);
}

/** Throws unless t is a live f32 tensor; returns its data. */
export function f32(op: string, name: string, t: Tensor): Float32Array {
  live(op, t, name);
  if (t.dtype !== 'f32') throw new Error(`${op}: ${name} must be f32, got ${t.dtype} ${fmtShape(t.shape)}`);
  return t.data as Float32Array;
}

/** Throws unless t is a live i32 tensor; returns its data. */
export function i32(op: string, name: string, t: Tensor): Int32Array {
  live(op, t, name);
  if (t.dtype !== 'i32') throw new Error(`${op}: ${name} must be i32, got ${t.dtype} ${fmtShape(t.shape)}`);
  return t.data as Int32Array;
}

export function fail(op: string, msg: string): never {
  throw new Error(`${op}: ${msg}`);
}

export function rank(op: string, name: string, t: Tensor, min: number, max = min): void {
  if (t.shape.length < min || t.shape.length > max) {
    const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    fail(op, `${name} must have ${want} dimensions, got ${fmtShape(t.shape)}`);
  }
}

/** Throws unless v is a number (infinities allowed: clamp bounds). */
export function numberArg(op: string, name: string, v: number): void {
  if (typeof v !== 'number' || Number.isNaN(v)) fail(op, `${name} must be a number, got ${String(v)}`);
}

export function lastDim(s: Shape): number {
  return s.length === 0 ? 1 : s[s.length - 1];
}

export { fmtShape };
