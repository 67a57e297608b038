// Tensors as they travel between processes: a dtype, a shape and raw
// little-endian bytes. The model side converts its Tensor to and from this;
// the runtime never knows what the numbers mean.
import { endianness } from 'node:os';

if (endianness() !== 'LE') throw new Error('quartet runtime: tensors travel little-endian; this host is big-endian');

export type DType = 'f32' | 'f64' | 'f16' | 'bf16' | 'i8' | 'u8' | 'i16' | 'i32' | 'i64' | 'bool';

/** The typed array that holds each dtype (f16 and bf16 as raw Uint16 bit patterns, bool as Uint8 0/1). */
export interface DTypeArrays {
  f32: Float32Array; f64: Float64Array; f16: Uint16Array; bf16: Uint16Array;
  i8: Int8Array; u8: Uint8Array; i16: Int16Array; i32: Int32Array; i64: BigInt64Array; bool: Uint8Array;
}
export type TypedArray = DTypeArrays[DType];

export interface WireTensor<D extends DType = DType> {
  dtype: D;
  shape: number[];
  /** Contiguous, row-major; length is the product of shape. */
  data: DTypeArrays[D];
}
export type Tensors = Record<string, WireTensor>;

type Ctor = { new (buf: ArrayBufferLike, byteOffset: number, length: number): TypedArray; new (length: number): TypedArray; BYTES_PER_ELEMENT: number };
const ctors: Record<DType, Ctor> = {
  f32: Float32Array, f64: Float64Array, f16: Uint16Array, bf16: Uint16Array,
  i8: Int8Array, u8: Uint8Array, i16: Int16Array, i32: Int32Array, i64: BigInt64Array as unknown as Ctor, bool: Uint8Array,
} as unknown as Record<DType, Ctor>;

export const DTYPES = Object.keys(ctors) as DType[];

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(ctors, x);
}

export function bytesPerElement(dtype: DType): number {
  return ctors[dtype].BYTES_PER_ELEMENT;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(where: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new TypeError(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  return shape as number[];
}

/** Builds a WireTensor, checking that the array type and length fit dtype and shape. */
export function wireTensor<D extends DType>(dtype: D, shape: number[], data: DTypeArrays[D]): WireTensor<D> {
  checkTensor('wireTensor', { dtype, shape, data });
  return { dtype, shape, data };
}

/** Throws a TypeError naming `where` when t is not a well-formed WireTensor. */
export function checkTensor(where: string, t: WireTensor): void {
  if (!isDType(t?.dtype)) throw new TypeError(`${where}: unknown dtype ${JSON.stringify(t?.dtype)} (have ${DTYPES.join(', ')})`);
  checkShape(where, t.shape);
  const C = ctors[t.dtype];
  if (!(t.data instanceof (C as unknown as Function)))
    throw new TypeError(`${where}: dtype ${t.dtype} needs a ${C.name}, got ${(t.data as object)?.constructor?.name ?? typeof t.data}`);
  if (t.data.length !== numel(t.shape))
    throw new TypeError(`${where}: shape [${t.shape}] holds ${numel(t.shape)} elements but data has ${t.data.length}`);
}

/** The bytes of a tensor as a Buffer over the same memory (no copy). */
export function tensorBytes(t: WireTensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * A tensor over a received frame. A view on the frame's memory when its
 * offset suits the dtype's alignment (the usual case for large frames);
 * otherwise one copy into fresh, aligned memory. Throws (naming the tensor)
 * when the frame's length does not match dtype and shape.
 */
export function tensorFromFrame(name: string, dtype: DType, shape: number[], frame: Uint8Array): WireTensor {
  const C = ctors[dtype];
  const n = numel(shape);
  if (frame.byteLength !== n * C.BYTES_PER_ELEMENT)
    throw new RangeError(`tensor '${name}': ${dtype}[${shape}] needs ${n * C.BYTES_PER_ELEMENT} bytes, frame has ${frame.byteLength}`);
  if (frame.byteOffset % C.BYTES_PER_ELEMENT === 0) return { dtype, shape, data: new C(frame.buffer, frame.byteOffset, n) };
  const data = new C(n);
  new Uint8Array(data.buffer).set(frame);
  return { dtype, shape, data };
}

/** Rows [start, end) along dim 0, as a view (no copy). */
export function sliceRows(t: WireTensor, start: number, end: number): WireTensor {
  if (t.shape.length === 0) throw new RangeError('sliceRows: a scalar tensor has no rows to slice');
  const row = numel(t.shape.slice(1));
  return { dtype: t.dtype, shape: [end - start, ...t.shape.slice(1)], data: t.data.subarray(start * row, end * row) as TypedArray };
}

/** Concatenates tensors of one dtype and equal trailing dims along dim 0 (one copy). */
export function concatRows(name: string, parts: WireTensor[]): WireTensor {
  if (parts.length === 0) throw new RangeError(`concatRows '${name}': nothing to concatenate`);
  const { dtype, shape } = parts[0];
  const tail = shape.slice(1).join(',');
  let rows = 0;
  for (const p of parts) {
    if (p.dtype !== dtype || p.shape.length === 0 || p.shape.slice(1).join(',') !== tail)
      throw new TypeError(`concatRows '${name}': parts differ: ${dtype}[${shape}] vs ${p.dtype}[${p.shape}]`);
    rows += p.shape[0];
  }
  if (parts.length === 1) return parts[0];
  const out = new ctors[dtype](rows * numel(shape.slice(1)));
  let at = 0;
  for (const p of parts) {
    (out as Uint8Array).set(p.data as Uint8Array, at);
    at += p.data.length;
  }
  return { dtype, shape: [rows, ...shape.slice(1)], data: out };
}

/** Deep copies of the tensors (the same dtypes and shapes, fresh memory). */
export function cloneTensors(tensors: Tensors): Tensors {
  const out: Tensors = {};
  for (const [name, t] of Object.entries(tensors)) out[name] = { dtype: t.dtype, shape: [...t.shape], data: t.data.slice() } as WireTensor;
  return out;
}

/** The bytes the tensors' data occupy. */
export function tensorsBytes(tensors: Tensors): number {
  let n = 0;
  for (const t of Object.values(tensors)) n += t.data.byteLength;
  return n;
}
