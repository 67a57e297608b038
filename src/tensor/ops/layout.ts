// Layout ops: reshape (a view), permute, split/concat along any dim, and row
// slicing/gathering. Split and concat move blocks of rows with one
// gatherRows/scatterAddRows call and a cached index; when the split dim is
// outermost the pieces are plain views.
import { native } from '../../native.js';
import { defineRule, record } from '../tape/autograd.js';
import { empty, fmtShape, shapeSize, type Tensor } from '../tensor.js';
import { f32, fail, i32, live } from './check.js';

function resolveShape(op: string, x: Tensor, shape: readonly number[]): number[] {
  const out = shape.slice();
  let infer = -1;
  let known = 1;
  for (let i = 0; i < out.length; i++) {
    const d = out[i];
    if (d === -1 && infer < 0) infer = i;
    else if (!Number.isInteger(d) || d < 0) fail(op, `bad target shape ${fmtShape(shape)} for ${fmtShape(x.shape)}`);
    else known *= d;
  }
  if (infer >= 0) {
    if (known === 0 || x.size % known !== 0) fail(op, `cannot infer -1 in ${fmtShape(shape)} from ${fmtShape(x.shape)}`);
    out[infer] = x.size / known;
  }
  if (shapeSize(out) !== x.size) fail(op, `cannot view ${fmtShape(x.shape)} (${x.size} elements) as ${fmtShape(shape)}`);
  return out;
}

/** Same storage, new shape; one dimension may be -1. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  live('reshape', x);
  const out = x.view(resolveShape('reshape', x, shape));
  record('reshape', out, [x], [], [], { shape: x.shape });
  return out;
}
defineRule<{ shape: readonly number[] }>('reshape', (n, [g]) => [g!.view(n.attrs.shape)]);

function checkPerm(op: string, x: Tensor, perm: readonly number[]): void {
  const r = x.shape.length;
  if (perm.length !== r || r > 6) fail(op, `perm ${fmtShape(perm)} does not fit ${fmtShape(x.shape)} (rank up to 6)`);
  const seen = new Array<boolean>(r).fill(false);
  for (const p of perm) {
    if (!Number.isInteger(p) || p < 0 || p >= r || seen[p]) fail(op, `perm ${fmtShape(perm)} is not a permutation of 0..${r - 1}`);
    seen[p] = true;
  }
}

/** out.shape[i] = x.shape[perm[i]] (a copy, contiguous). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const xd = f32('permute', 'x', x);
  checkPerm('permute', x, perm);
  const out = empty(perm.map((p) => x.shape[p]));
  native.permute(out.f32, xd, x.shape as number[], perm as number[]);
  record('permute', out, [x], [], [], { perm });
  return out;
}
defineRule<{ perm: readonly number[] }>('permute', (n, [g]) => {
  const perm = n.attrs.perm;
  const inv = new Array<number>(perm.length);
  for (let i = 0; i < perm.length; i++) inv[perm[i]] = i;
  const out = empty(inv.map((p) => g!.shape[p]));
  native.permute(out.f32, g!.f32, g!.shape as number[], inv);
  return [out];
});

/** Swaps two dims (a permute). */
export function transpose(x: Tensor, d0: number, d1: number): Tensor {
  const r = x.shape.length;
  const a = d0 < 0 ? d0 + r : d0;
  const b = d1 < 0 ? d1 + r : d1;
  if (!(a >= 0 && a < r && b >= 0 && b < r)) fail('transpose', `dims ${d0}, ${d1} out of range for ${fmtShape(x.shape)}`);
  const perm = [...Array(r).keys()];
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

// Moving pieces along `dim`: with outer = prod(shape[:dim]) and inner =
// prod(shape[dim+1:]), piece i is, for every outer index, a run of
// sizes[i]*inner contiguous elements. Cut everything into rows of w elements
// (w = gcd of those runs); `idx` lists, piece after piece, the source row of
// each row. Gathering by idx lays the pieces one after another; scattering by
// idx puts them back.
interface PieceIndex {
  idx: Int32Array;
  w: number;
}
const pieceIndexCache = new Map<string, PieceIndex>();

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

function pieceIndex(outer: number, sizes: readonly number[], inner: number): PieceIndex {
  const key = `${outer}|${inner}|${sizes.join(',')}`;
  const hit = pieceIndexCache.get(key);
  if (hit !== undefined) return hit;
  let w = 0;
  for (const s of sizes) w = gcd(w, s * inner);
  const total = sizes.reduce((a, b) => a + b, 0);
  const rowsPerOuter = (total * inner) / w;
  const idx = new Int32Array((outer * total * inner) / w);
  let k = 0;
  let off = 0;
  for (const s of sizes) {
    const runRows = (s * inner) / w;
    const first = (off * inner) / w;
    for (let o = 0; o < outer; o++) {
      const base = o * rowsPerOuter + first;
      for (let j = 0; j < runRows; j++) idx[k++] = base + j;
    }
    off += s;
  }
  if (pieceIndexCache.size >= 256) pieceIndexCache.clear();
  const entry = { idx, w };
  pieceIndexCache.set(key, entry);
  return entry;
}

function normDim(op: string, shape: readonly number[], dim: number): number {
  const d = dim < 0 ? dim + shape.length : dim;
  if (!Number.isInteger(d) || d < 0 || d >= shape.length) fail(op, `dim ${dim} out of range for ${fmtShape(shape)}`);
  return d;
}

function pieceShape(shape: readonly number[], dim: number, size: number): number[] {
  const s = shape.slice();
  s[dim] = size;
  return s;
}

interface SplitAttrs {
  dim: number;
  sizes: number[];
  outer: number;
  inner: number;
  shape: readonly number[];
}

/** Cuts x along dim into pieces of the given sizes (which must add up to x.shape[dim]). */
export function split(x: Tensor, sizes: readonly number[], dim: number): Tensor[] {
  const xd = f32('split', 'x', x);
  const d = normDim('split', x.shape, dim);
  const total = sizes.reduce((a, b) => a + b, 0);
  if (sizes.some((s) => !Number.isInteger(s) || s <= 0) || total !== x.shape[d]) {
    fail('split', `sizes ${fmtShape(sizes)} do not add up to dim ${dim} of ${fmtShape(x.shape)}`);
  }
  const outer = shapeSize(x.shape.slice(0, d));
  const inner = shapeSize(x.shape.slice(d + 1));
  let src: Tensor = x;
  if (outer > 1) {
    const { idx, w } = pieceIndex(outer, sizes, inner);
    src = empty(x.shape);
    native.gatherRows(src.f32, xd, idx, w);
  }
  const outs: Tensor[] = [];
  let off = 0;
  for (const s of sizes) {
    outs.push(src.view(pieceShape(x.shape, d, s), off, outer * s * inner));
    off += outer * s * inner;
  }
  if (src !== x) src.dispose();
  record<SplitAttrs>('split', outs, [x], [], [], { dim: d, sizes: sizes.slice(), outer, inner, shape: x.shape });
  return outs;
}
defineRule<SplitAttrs>('split', (n, gs) => {
  const { sizes, outer, inner, shape } = n.attrs;
  const flat = empty(shape);
  let off = 0;
  for (let i = 0; i < sizes.length; i++) {
    const len = outer * sizes[i] * inner;
    const g = gs[i];
    if (g === null) flat.f32.fill(0, off, off + len);
    else flat.f32.set(g.f32, off);
    off += len;
  }
  return [outer > 1 ? scatterPieces(flat, outer, sizes, inner) : flat];
});

function scatterPieces(flat: Tensor, outer: number, sizes: readonly number[], inner: number): Tensor {
  const { idx, w } = pieceIndex(outer, sizes, inner);
  const out = empty(flat.shape);
  native.scatterAddRows(out.f32, flat.f32, idx, out.size / w, w);
  flat.dispose();
  return out;
}

/** Joins tensors along dim (all other dims equal). */
export function concat(xs: readonly Tensor[], dim: number): Tensor {
  if (xs.length === 0) fail('concat', 'needs at least one tensor');
  for (let i = 0; i < xs.length; i++) f32('concat', `xs[${i}]`, xs[i]);
  const first = xs[0].shape;
  const d = normDim('concat', first, dim);
  for (let i = 1; i < xs.length; i++) {
    const s = xs[i].shape;
    if (s.length !== first.length || s.some((v, j) => j !== d && v !== first[j])) {
      fail('concat', `xs[${i}] ${fmtShape(s)} does not match xs[0] ${fmtShape(first)} outside dim ${dim}`);
    }
  }
  const sizes = xs.map((t) => t.shape[d]);
  const shape = pieceShape(first, d, sizes.reduce((a, b) => a + b, 0));
  const outer = shapeSize(first.slice(0, d));
  const inner = shapeSize(first.slice(d + 1));
  let flat = empty(shape);
  let off = 0;
  for (const t of xs) {
    flat.f32.set(t.f32, off);
    off += t.size;
  }
  if (outer > 1 && flat.size > 0) flat = scatterPieces(flat, outer, sizes, inner);
  record<SplitAttrs>('concat', flat, xs.slice(), [], [], { dim: d, sizes, outer, inner, shape });
  return flat;
}
defineRule<SplitAttrs>('concat', (n, [g]) => {
  const { sizes, outer, inner, shape } = n.attrs;
  let src = g!;
  let tmp: Tensor | null = null;
  if (outer > 1) {
    const { idx, w } = pieceIndex(outer, sizes, inner);
    tmp = src = empty(shape);
    native.gatherRows(tmp.f32, g!.f32, idx, w);
  }
  const outs: (Tensor | null)[] = [];
  let off = 0;
  for (let i = 0; i < sizes.length; i++) {
    const len = outer * sizes[i] * inner;
    outs.push(n.needs[i] ? src.view(pieceShape(shape, n.attrs.dim, sizes[i]), off, len) : null);
    off += len;
  }
  tmp?.dispose();
  return outs;
});

/** Rows start..end-1 of x along dim 0 (a view). */
export function sliceRows(x: Tensor, start: number, end: number): Tensor {
  live('sliceRows', x);
  if (x.shape.length === 0) fail('sliceRows', 'x must have at least one dimension');
  const n = x.shape[0];
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > n || start > end) {
    fail('sliceRows', `range ${start}..${end} out of bounds for ${fmtShape(x.shape)}`);
  }
  const row = x.size / Math.max(n, 1);
  const out = x.view([end - start, ...x.shape.slice(1)], start * row, (end - start) * row);
  record('sliceRows', out, [x], [], [], { start: start * row, shape: x.shape });
  return out;
}
defineRule<{ start: number; shape: readonly number[] }>('sliceRows', (n, [g]) => {
  const out = empty(n.attrs.shape);
  out.f32.fill(0);
  out.f32.set(g!.f32, n.attrs.start);
  return [out];
});

interface GatherAttrs {
  rows: number;
  width: number;
}

function gatherImpl(op: string, x: Tensor, idx: Tensor): Tensor {
  const xd = f32(op, op === 'embedding' ? 'table' : 'x', x);
  const id = i32(op, op === 'embedding' ? 'ids' : 'idx', idx);
  if (x.shape.length < 1) fail(op, `${op === 'embedding' ? 'table' : 'x'} must have at least one dimension`);
  const rows = x.shape[0];
  const width = x.size / Math.max(rows, 1);
  const out = empty([...idx.shape, ...x.shape.slice(1)]);
  native.gatherRows(out.f32, xd, id, width);
  record<GatherAttrs>('gatherRows', out, [x], [idx], [], { rows, width });
  return out;
}
defineRule<GatherAttrs>('gatherRows', (n, [g]) => {
  const x = n.inputs[0]!;
  const out = empty(x.shape);
  native.scatterAddRows(out.f32, g!.f32, n.saved[0].i32, n.attrs.rows, n.attrs.width);
  return [out];
});

/** out[i, ...] = x[idx[i], ...] (rows along dim 0); out.shape = idx.shape ++ x.shape[1:]. */
export function gatherRows(x: Tensor, idx: Tensor): Tensor {
  return gatherImpl('gatherRows', x, idx);
}

/** Token embeddings: table [V, C] looked up by ids i32 [..] -> [.., C]. The backward scatter-adds. */
export function embedding(ids: Tensor, table: Tensor): Tensor {
  return gatherImpl('embedding', table, ids);
}
