// Binary elementwise ops with broadcasting of a scalar, or of b over the
// leading dims of a (b.shape a suffix of a.shape, as a bias or a per-channel
// scale). add and mul broadcast rows natively (addRow/mulRow); the others
// expand b first. A broadcast b's gradient is summed over the rows.
import { native } from '../../native.js';
import { defineRule, record } from '../tape/autograd.js';
import { empty, fmtShape, type Tensor } from '../tensor.js';
import { f32, fail, numberArg } from './check.js';

/** Rows of a over which b repeats: 0 when b has a's shape. */
function broadcastRows(op: string, a: Tensor, b: Tensor): number {
  const as = a.shape;
  const bs = b.shape;
  if (bs.length > as.length) fail(op, `cannot broadcast b ${fmtShape(bs)} to a ${fmtShape(as)}`);
  for (let i = 1; i <= bs.length; i++) {
    if (bs[bs.length - i] !== as[as.length - i]) {
      fail(op, `b ${fmtShape(bs)} must equal a ${fmtShape(as)} or a suffix of it`);
    }
  }
  return bs.length === as.length ? 0 : a.size / Math.max(b.size, 1);
}

/** b repeated over `rows` rows; untracked: the op's node owns it (or the op frees it). */
function expand(b: Float32Array, rows: number): Tensor {
  const out = empty([rows * b.length], 'f32', false);
  native.fill(out.f32, 0);
  native.addRow(out.f32, out.f32, b, rows, b.length);
  return out;
}

/** Sums a gradient of a's shape down to b's shape (a no-op view when not broadcast). */
function reduceRows(g: Tensor, b: Tensor, rows: number): Tensor {
  if (rows === 0) return g;
  const out = empty(b.shape);
  native.sumRows(out.f32, g.f32, rows, b.size);
  g.dispose();
  return out;
}

function ew(fn: (out: Float32Array, a: Float32Array, b: Float32Array) => void, a: Tensor, b: Tensor): Tensor {
  const out = empty(a.shape);
  fn(out.f32, a.f32, b.f32);
  return out;
}

interface Bcast {
  rows: number;
}

// ---- out = a * alpha + beta: every scalar form of add/sub/mul/div, and neg ----

/** out = x * alpha + beta. */
export function affine(x: Tensor, alpha: number, beta: number): Tensor {
  const xd = f32('affine', 'x', x);
  numberArg('affine', 'alpha', alpha);
  numberArg('affine', 'beta', beta);
  const out = empty(x.shape);
  native.affine(out.f32, xd, alpha, beta);
  record('affine', out, [x], [], [], { alpha });
  return out;
}
defineRule<{ alpha: number }>('affine', (n, [g]) => {
  if (n.attrs.alpha === 1) return [g!.view(g!.shape)];
  const out = empty(g!.shape);
  native.affine(out.f32, g!.f32, n.attrs.alpha, 0);
  return [out];
});

export function neg(x: Tensor): Tensor {
  return affine(x, -1, 0);
}

// ---- add, sub ----

export function add(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return affine(a, 1, b);
  const ad = f32('add', 'a', a);
  const bd = f32('add', 'b', b);
  const rows = broadcastRows('add', a, b);
  const out = empty(a.shape);
  if (rows === 0) native.add(out.f32, ad, bd);
  else native.addRow(out.f32, ad, bd, rows, b.size);
  record<Bcast>('add', out, [a, b], [], [], { rows });
  return out;
}
defineRule<Bcast>('add', (n, [g]) => [
  n.needs[0] ? g!.view(g!.shape) : null,
  n.needs[1] ? reduceRows(g!.view(g!.shape), n.inputs[1]!, n.attrs.rows) : null,
]);

export function sub(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return affine(a, 1, -b);
  const ad = f32('sub', 'a', a);
  const bd = f32('sub', 'b', b);
  const rows = broadcastRows('sub', a, b);
  const out = empty(a.shape);
  if (rows === 0) {
    native.sub(out.f32, ad, bd);
  } else {
    const nb = empty(b.shape);
    native.affine(nb.f32, bd, -1, 0);
    native.addRow(out.f32, ad, nb.f32, rows, b.size);
    nb.dispose();
  }
  record<Bcast>('sub', out, [a, b], [], [], { rows });
  return out;
}
defineRule<Bcast>('sub', (n, [g]) => {
  let db: Tensor | null = null;
  if (n.needs[1]) {
    db = empty(g!.shape);
    native.affine(db.f32, g!.f32, -1, 0);
    db = reduceRows(db, n.inputs[1]!, n.attrs.rows);
  }
  return [n.needs[0] ? g!.view(g!.shape) : null, db];
});

// ---- mul, div ----

export function mul(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return affine(a, b, 0);
  const ad = f32('mul', 'a', a);
  const bd = f32('mul', 'b', b);
  const rows = broadcastRows('mul', a, b);
  const out = empty(a.shape);
  if (rows === 0) native.mul(out.f32, ad, bd);
  else native.mulRow(out.f32, ad, bd, rows, b.size);
  record<Bcast>('mul', out, [a, b], [a, b], [], { rows });
  return out;
}
defineRule<Bcast>('mul', (n, [g]) => {
  const [a, b] = n.saved;
  const rows = n.attrs.rows;
  let da: Tensor | null = null;
  let db: Tensor | null = null;
  if (n.needs[0]) {
    da = empty(g!.shape);
    if (rows === 0) native.mul(da.f32, g!.f32, b.f32);
    else native.mulRow(da.f32, g!.f32, b.f32, rows, b.size);
  }
  if (n.needs[1]) db = reduceRows(ew(native.mul, g!, a), b, rows);
  return [da, db];
});

export function div(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') {
    if (b === 0) fail('div', 'division by the scalar 0');
    return affine(a, 1 / b, 0);
  }
  const ad = f32('div', 'a', a);
  const bd = f32('div', 'b', b);
  const rows = broadcastRows('div', a, b);
  const bx = rows === 0 ? b : expand(bd, rows);
  const out = empty(a.shape);
  native.div(out.f32, ad, bx.f32);
  // Saved: the quotient and the (expanded) divisor; d/db(a/b) = -(g/b) * (a/b).
  if (rows === 0) record<Bcast>('div', out, [a, b], [out, b], [], { rows });
  else record<Bcast>('div', out, [a, b], [out], [bx], { rows });
  return out;
}
defineRule<Bcast>('div', (n, [g]) => {
  const [q, bx] = n.saved;
  const gb = ew(native.div, g!, bx);
  let db: Tensor | null = null;
  if (n.needs[1]) {
    db = ew(native.mul, gb, q);
    native.affine(db.f32, db.f32, -1, 0);
    db = reduceRows(db, n.inputs[1]!, n.attrs.rows);
  }
  if (n.needs[0]) return [gb, db];
  gb.dispose();
  return [null, db];
});

// ---- minimum, maximum ----
// At ties torch gives each side half the gradient; PPO's clipped objective
// depends on it (inside the clip range both branches are equal).

function minmax(op: 'minimum' | 'maximum', a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') {
    return op === 'minimum' ? clampOp(op, a, -Infinity, b) : clampOp(op, a, b, Infinity);
  }
  const ad = f32(op, 'a', a);
  const bd = f32(op, 'b', b);
  const rows = broadcastRows(op, a, b);
  const bx = rows === 0 ? b : expand(bd, rows);
  const out = empty(a.shape);
  (op === 'minimum' ? native.minimum : native.maximum)(out.f32, ad, bx.f32);
  // Saved: a and the (expanded) b.
  if (rows === 0) record<Bcast>(op, out, [a, b], [a, b], [], { rows });
  else record<Bcast>(op, out, [a, b], [a], [bx], { rows });
  return out;
}

function minmaxRule(op: 'minimum' | 'maximum') {
  return (n: { saved: Tensor[]; needs: boolean[]; inputs: (Tensor | null)[]; attrs: Bcast }, [g]: (Tensor | null)[]) => {
    const [a, bx] = n.saved;
    // win > 0 where a alone wins, lose > 0 where b alone wins.
    const win = op === 'minimum' ? ew(native.sub, bx, a) : ew(native.sub, a, bx);
    const lose = empty(win.shape);
    native.affine(lose.f32, win.f32, -1, 0);
    const gWin = empty(g!.shape);
    const gLose = empty(g!.shape);
    native.reluBackward(gWin.f32, win.f32, g!.f32);
    native.reluBackward(gLose.f32, lose.f32, g!.f32);
    // da = g/2 + (gWin - gLose)/2: g where a wins, 0 where b wins, g/2 at ties.
    native.sub(win.f32, gWin.f32, gLose.f32);
    const da = gWin;
    native.affine(da.f32, g!.f32, 0.5, 0);
    native.axpy(da.f32, da.f32, 0.5, win.f32);
    gLose.dispose();
    lose.dispose();
    win.dispose();
    let db: Tensor | null = null;
    if (n.needs[1]) {
      db = ew(native.sub, g!, da);
      db = reduceRows(db, n.inputs[1]!, n.attrs.rows);
    }
    if (n.needs[0]) return [da, db];
    da.dispose();
    return [null, db];
  };
}
defineRule<Bcast>('minimum', minmaxRule('minimum'));
defineRule<Bcast>('maximum', minmaxRule('maximum'));

export function minimum(a: Tensor, b: Tensor | number): Tensor {
  return minmax('minimum', a, b);
}

export function maximum(a: Tensor, b: Tensor | number): Tensor {
  return minmax('maximum', a, b);
}

// ---- clamp (scalar bounds) ----

function clampOp(op: string, x: Tensor, lo: number, hi: number): Tensor {
  const xd = f32(op, 'x', x);
  numberArg(op, 'lo', lo);
  numberArg(op, 'hi', hi);
  if (lo > hi) fail(op, `lo ${lo} > hi ${hi}`);
  const out = empty(x.shape);
  native.clamp(out.f32, xd, lo, hi);
  record('clamp', out, [x], [x], [], { lo, hi });
  return out;
}
defineRule<{ lo: number; hi: number }>('clamp', (n, [g]) => {
  const out = empty(g!.shape);
  native.clampBackward(out.f32, n.saved[0].f32, g!.f32, n.attrs.lo, n.attrs.hi);
  return [out];
});

/** min(max(x, lo), hi); the gradient passes where lo <= x <= hi (as torch.clamp). */
export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  return clampOp('clamp', x, lo, hi);
}
