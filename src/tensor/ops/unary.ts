// Unary elementwise ops and their gradients, plus where and dropout. Ops
// whose derivative is cheapest from the output (exp, tanh, sigmoid) save the
// output; the others save the input.
import { native } from '../../native.js';
import { defineRule, record, type Node } from '../tape/autograd.js';
import { empty, fmtShape, sameShape, type Tensor } from '../tensor.js';
import type { Rng } from '../rng.js';
import { f32, fail } from './check.js';

type Kernel = (out: Float32Array, a: Float32Array) => void;

function unary(op: string, k: Kernel, x: Tensor, saveOut: boolean): Tensor {
  const xd = f32(op, 'x', x);
  const out = empty(x.shape);
  k(out.f32, xd);
  record(op, out, [x], [saveOut ? out : x], [], null);
  return out;
}

function grad(g: Tensor): Tensor {
  return empty(g.shape);
}

export function exp(x: Tensor): Tensor {
  return unary('exp', native.exp, x, true);
}
defineRule('exp', (n: Node, [g]) => {
  const d = grad(g!);
  native.mul(d.f32, g!.f32, n.saved[0].f32);
  return [d];
});

export function log(x: Tensor): Tensor {
  return unary('log', native.log, x, false);
}
defineRule('log', (n: Node, [g]) => {
  const d = grad(g!);
  native.div(d.f32, g!.f32, n.saved[0].f32);
  return [d];
});

export function tanh(x: Tensor): Tensor {
  return unary('tanh', native.tanh, x, true);
}
defineRule('tanh', (n: Node, [g]) => {
  // d = g * (1 - y^2)
  const y = n.saved[0].f32;
  const t = grad(g!);
  native.mul(t.f32, y, y);
  native.affine(t.f32, t.f32, -1, 1);
  const d = grad(g!);
  native.mul(d.f32, t.f32, g!.f32);
  t.dispose();
  return [d];
});

export function sigmoid(x: Tensor): Tensor {
  return unary('sigmoid', native.sigmoid, x, true);
}
defineRule('sigmoid', (n: Node, [g]) => {
  // d = g * y * (1 - y)
  const y = n.saved[0].f32;
  const t = grad(g!);
  const u = grad(g!);
  native.affine(t.f32, y, -1, 1);
  native.mul(u.f32, y, t.f32);
  const d = grad(g!);
  native.mul(d.f32, u.f32, g!.f32);
  t.dispose();
  u.dispose();
  return [d];
});

/** log(sigmoid(x)), stable for large |x| (the reward model's pairwise loss). */
export function logSigmoid(x: Tensor): Tensor {
  return unary('logSigmoid', native.logSigmoid, x, false);
}
defineRule('logSigmoid', (n: Node, [g]) => {
  // d = g * sigmoid(-x)
  const t = grad(g!);
  const u = grad(g!);
  native.affine(t.f32, n.saved[0].f32, -1, 0);
  native.sigmoid(u.f32, t.f32);
  const d = grad(g!);
  native.mul(d.f32, u.f32, g!.f32);
  t.dispose();
  u.dispose();
  return [d];
});

export function relu(x: Tensor): Tensor {
  return unary('relu', native.relu, x, false);
}
defineRule('relu', (n: Node, [g]) => {
  const d = grad(g!);
  native.reluBackward(d.f32, n.saved[0].f32, g!.f32);
  return [d];
});

export function silu(x: Tensor): Tensor {
  return unary('silu', native.silu, x, false);
}
defineRule('silu', (n: Node, [g]) => {
  const d = grad(g!);
  native.siluBackward(d.f32, n.saved[0].f32, g!.f32);
  return [d];
});

/** GELU; approximate: the tanh form (GPT-2's gelu_new), else the exact erf form. */
export function gelu(x: Tensor, approximate: boolean): Tensor {
  if (typeof approximate !== 'boolean') fail('gelu', `approximate must be a boolean, got ${String(approximate)}`);
  const xd = f32('gelu', 'x', x);
  const out = empty(x.shape);
  native.gelu(out.f32, xd, approximate);
  record('gelu', out, [x], [x], [], { approximate });
  return out;
}
defineRule<{ approximate: boolean }>('gelu', (n, [g]) => {
  const d = grad(g!);
  native.geluBackward(d.f32, n.saved[0].f32, g!.f32, n.attrs.approximate);
  return [d];
});

/** cond != 0 ? a : b, elementwise (same shapes; a scalar a or b is filled in). No gradient through cond. */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  const cd = f32('where', 'cond', cond);
  const at = typeof a === 'number' ? filled(cond, a) : a;
  const bt = typeof b === 'number' ? filled(cond, b) : b;
  const ad = f32('where', 'a', at);
  const bd = f32('where', 'b', bt);
  if (!sameShape(at.shape, cond.shape) || !sameShape(bt.shape, cond.shape)) {
    fail('where', `cond ${fmtShape(cond.shape)}, a ${fmtShape(at.shape)} and b ${fmtShape(bt.shape)} must have one shape`);
  }
  const out = empty(cond.shape);
  native.where(out.f32, cd, ad, bd);
  record('where', out, [cond, at, bt], [cond], [], null);
  if (at !== a) at.dispose();
  if (bt !== b) bt.dispose();
  return out;
}
defineRule('where', (n: Node, [g]) => {
  const cond = n.saved[0].f32;
  const zero = grad(g!);
  native.fill(zero.f32, 0);
  let da: Tensor | null = null;
  let db: Tensor | null = null;
  if (n.needs[1]) {
    da = grad(g!);
    native.where(da.f32, cond, g!.f32, zero.f32);
  }
  if (n.needs[2]) {
    db = grad(g!);
    native.where(db.f32, cond, zero.f32, g!.f32);
  }
  zero.dispose();
  return [null, da, db];
});

function filled(like: Tensor, v: number): Tensor {
  const t = empty(like.shape);
  native.fill(t.f32, v);
  return t;
}

/** Inverted dropout with probability p (call only in training); the seed is drawn from rng. */
export function dropout(x: Tensor, p: number, rng: Rng): Tensor {
  const xd = f32('dropout', 'x', x);
  if (!(p >= 0 && p < 1)) fail('dropout', `p must be in [0, 1), got ${p}`);
  if (p === 0) return x.reshape(x.shape);
  const out = empty(x.shape);
  const mask = empty(x.shape, 'f32', false);
  native.dropout(out.f32, mask.f32, xd, p, rng.nextU32());
  record('dropout', out, [x], [], [mask], null);
  return out;
}
defineRule('dropout', (n: Node, [g]) => {
  const d = grad(g!);
  native.mul(d.f32, g!.f32, n.saved[0].f32);
  return [d];
});
