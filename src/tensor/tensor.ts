// The Tensor: dtype, shape, device and a contiguous view on a refcounted
// storage from the caching allocator; plus the makers. A tensor made by an op
// that records a gradient holds its autograd node (tape/autograd.ts).
import { allocator, Storage } from './allocator.js';
import { trackTensor } from './scope.js';
import { backward, type BackwardOptions, type Node } from './tape/autograd.js';
import { reshape } from './ops/layout.js';
import type { Rng } from './rng.js';

export type DType = 'f32' | 'i32';
export type Shape = readonly number[];
type Data = Float32Array | Int32Array;

export class Tensor {
  readonly shape: Shape;
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  readonly device = 'cpu' as const;
  requiresGrad = false;
  /** Accumulated gradient of a leaf (same shape), or null until a backward reaches it. */
  grad: Tensor | null = null;
  /** The recorded op that made this tensor; null for leaves and untracked results. */
  node: Node | null = null;
  /** Which output of `node` this tensor is. */
  outIndex = 0;
  /** A parameter: a leaf that wants gradients and that tidy never disposes. */
  isParam = false;
  /** Exempt from tidy (see keep()). */
  kept = false;
  private _data: Data | null;
  private _storage: Storage | null;

  /** Internal: use the makers below or the ops. */
  constructor(storage: Storage, data: Data, shape: Shape, dtype: DType, track = true) {
    this._storage = storage;
    this._data = data;
    this.shape = shape;
    this.dtype = dtype;
    this.size = data.length;
    if (track) trackTensor(this);
  }

  get disposed(): boolean {
    return this._data === null;
  }

  /** The elements (a view, not a copy). Throws if disposed. */
  get data(): Data {
    if (this._data === null) throw new Error(`Tensor.data: tensor ${fmtShape(this.shape)} was disposed`);
    return this._data;
  }

  get f32(): Float32Array {
    const d = this.data;
    if (!(d instanceof Float32Array)) throw new Error(`Tensor.f32: tensor ${fmtShape(this.shape)} is ${this.dtype}`);
    return d;
  }

  get i32(): Int32Array {
    const d = this.data;
    if (!(d instanceof Int32Array)) throw new Error(`Tensor.i32: tensor ${fmtShape(this.shape)} is ${this.dtype}`);
    return d;
  }

  /** Internal: the shared storage (for views). */
  get storage(): Storage {
    if (this._storage === null) throw new Error(`Tensor.storage: tensor ${fmtShape(this.shape)} was disposed`);
    return this._storage;
  }

  /** The only element of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`Tensor.item: tensor has ${this.size} elements (shape ${fmtShape(this.shape)}), not 1`);
    return this.data[0];
  }

  /** The elements as a plain array (a copy). */
  toArray(): number[] {
    return Array.from(this.data);
  }

  /** Same storage, new shape (recorded by autograd). -1 infers one dimension. */
  reshape(shape: readonly number[]): Tensor {
    return reshape(this, shape);
  }

  /** A new tensor on the same storage, cut from the graph. */
  detach(): Tensor {
    return this.view(this.shape);
  }

  /** Internal: a tensor on the same storage (elements offset..offset+size), not on the tape.
   *  track=false: no scope owns it (autograd's saved tensors). */
  view(shape: Shape, offset = 0, size = this.size, track = true): Tensor {
    const s = this.storage;
    s.refs++;
    const d = this.data;
    const data = d instanceof Float32Array
      ? new Float32Array(d.buffer, d.byteOffset + offset * 4, size)
      : new Int32Array(d.buffer, d.byteOffset + offset * 4, size);
    return new Tensor(s, data, shape, this.dtype, track);
  }

  /** Accumulates d(this)/d(leaf) into every leaf's .grad; grad defaults to 1 for one-element tensors. */
  backward(grad?: Tensor, opts?: BackwardOptions): void {
    backward(this, grad, opts);
  }

  /** Gives the buffer back (once every view is gone); idempotent. A parameter's grad goes too. */
  dispose(): void {
    if (this._storage === null) return;
    const s = this._storage;
    this._storage = null;
    this._data = null;
    if (--s.refs === 0) allocator.release(s);
    if (this.grad !== null) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  toString(): string {
    return `Tensor(${this.dtype} ${fmtShape(this.shape)}${this.disposed ? ', disposed' : ''})`;
  }
}
// tidy recognises tensors by this flag (scope.ts cannot import the class).
(Tensor.prototype as unknown as { isTensor: boolean }).isTensor = true;

export function fmtShape(shape: Shape): string {
  return '[' + shape.join(', ') + ']';
}

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function sameShape(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkShape(op: string, shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${op}: bad shape ${fmtShape(shape)} (dimensions must be non-negative integers)`);
  }
}

/** An uninitialised tensor from the allocator (contents arbitrary). track=false: no scope owns it. */
export function empty(shape: Shape, dtype: DType = 'f32', track = true): Tensor {
  const n = shapeSize(shape);
  const s = allocator.alloc(n * 4);
  const data = dtype === 'f32' ? new Float32Array(s.buffer, 0, n) : new Int32Array(s.buffer, 0, n);
  return new Tensor(s, data, shape, dtype, track);
}

export interface MakeOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

function finish(t: Tensor, opts: MakeOptions | undefined): Tensor {
  if (opts?.requiresGrad) {
    if (t.dtype !== 'f32') throw new Error(`tensor: an ${t.dtype} tensor cannot require gradients`);
    t.requiresGrad = true;
  }
  return t;
}

/** A tensor holding a copy of `values` (f32 unless opts.dtype or an Int32Array says otherwise). */
export function tensor(values: ArrayLike<number>, shape?: Shape, opts?: MakeOptions): Tensor {
  if (values.length > 0 && typeof values[0] !== 'number') {
    throw new Error(`tensor: values must be a flat array of numbers (got ${typeof values[0]} elements); pass the shape separately`);
  }
  const sh = shape ?? [values.length];
  checkShape('tensor', sh);
  if (shapeSize(sh) !== values.length) {
    throw new Error(`tensor: ${values.length} values do not fill shape ${fmtShape(sh)}`);
  }
  const dtype = opts?.dtype ?? (values instanceof Int32Array ? 'i32' : 'f32');
  const t = empty(sh, dtype);
  t.data.set(values);
  return finish(t, opts);
}

/** An i32 tensor (token ids, labels, positions) holding a copy of `values`. */
export function fromI32(values: ArrayLike<number>, shape?: Shape): Tensor {
  return tensor(values, shape, { dtype: 'i32' });
}

/** Wraps `data` without copying (e.g. a frame received from a socket); the allocator never sees it. */
export function fromData(data: Float32Array | Int32Array, shape?: Shape): Tensor {
  const sh = shape ?? [data.length];
  checkShape('fromData', sh);
  if (shapeSize(sh) !== data.length) throw new Error(`fromData: ${data.length} values do not fill shape ${fmtShape(sh)}`);
  return new Tensor(new Storage(data.buffer as ArrayBuffer, false), data, sh, data instanceof Int32Array ? 'i32' : 'f32');
}

export function full(shape: Shape, value: number, opts?: MakeOptions): Tensor {
  checkShape('full', shape);
  const t = empty(shape, opts?.dtype ?? 'f32');
  t.data.fill(value);
  return finish(t, opts);
}

export function zeros(shape: Shape, opts?: MakeOptions): Tensor {
  return full(shape, 0, opts);
}

export function ones(shape: Shape, opts?: MakeOptions): Tensor {
  return full(shape, 1, opts);
}

/** Normal(0, std^2) samples from rng (initialisation; not a hot path). */
export function randn(shape: Shape, rng: Rng, opts?: MakeOptions & { std?: number }): Tensor {
  checkShape('randn', shape);
  const t = empty(shape, 'f32');
  rng.fillNormal(t.f32, 0, opts?.std ?? 1);
  return finish(t, opts);
}

/** Uniform [lo, hi) samples from rng. */
export function rand(shape: Shape, rng: Rng, lo = 0, hi = 1, opts?: MakeOptions): Tensor {
  checkShape('rand', shape);
  const t = empty(shape, 'f32');
  rng.fillUniform(t.f32, lo, hi);
  return finish(t, opts);
}

/** Marks t as a parameter: a leaf that wants gradients and that tidy never disposes. */
export function param(t: Tensor): Tensor {
  if (t.dtype !== 'f32') throw new Error(`param: an ${t.dtype} tensor cannot be a parameter`);
  if (t.node !== null) throw new Error('param: tensor is the result of an op; pass a leaf (detach() it first)');
  t.requiresGrad = true;
  t.isParam = true;
  return t;
}

/** Drops the gradients of params (torch's zero_grad(set_to_none=True)); the buffers go back to the cache. */
export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) {
    if (p.grad !== null) {
      p.grad.dispose();
      p.grad = null;
    }
  }
}
