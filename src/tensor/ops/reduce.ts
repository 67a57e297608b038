// Reductions: the sum and mean of everything (scalar results, shape []), sums
// over the last dim, and the masked sum/mean that PPO and the SFT losses use.
import { native } from '../../native.js';
import { defineRule, record, type Node } from '../tape/autograd.js';
import { empty, fmtShape, sameShape, type Tensor } from '../tensor.js';
import { f32, fail, lastDim } from './check.js';

function scalar(v: number): Tensor {
  const out = empty([]);
  out.f32[0] = v;
  return out;
}

/** Fills a tensor of `shape` with value (the gradient of a full reduction). */
function filled(shape: readonly number[], value: number): Tensor {
  const d = empty(shape);
  native.fill(d.f32, value);
  return d;
}

/** Sum of all elements (accumulated in double) -> shape []. */
export function sum(x: Tensor): Tensor {
  const out = scalar(native.sumAll(f32('sum', 'x', x)));
  record('sum', out, [x], [], [], { scale: 1 });
  return out;
}

/** Mean of all elements -> shape []. */
export function mean(x: Tensor): Tensor {
  const xd = f32('mean', 'x', x);
  if (x.size === 0) fail('mean', `x ${fmtShape(x.shape)} has no elements`);
  const out = scalar(native.sumAll(xd) / x.size);
  record('sum', out, [x], [], [], { scale: 1 / x.size });
  return out;
}
defineRule<{ scale: number }>('sum', (n, [g]) => [filled(n.inputs[0]!.shape, g!.f32[0] * n.attrs.scale)]);

/** x [.., C] -> [..]: the sum over the last dim. */
export function sumLastDim(x: Tensor): Tensor {
  const xd = f32('sumLastDim', 'x', x);
  if (x.shape.length === 0) fail('sumLastDim', 'x must have at least one dimension');
  const C = lastDim(x.shape);
  const out = empty(x.shape.slice(0, -1));
  native.sumCols(out.f32, xd, out.size, C);
  record('sumLastDim', out, [x], [], [], null);
  return out;
}
defineRule('sumLastDim', (n: Node, [g]) => {
  // dx[n, c] = g[n]: the outer product g [N, 1] x ones [1, C].
  const x = n.inputs[0]!;
  const C = lastDim(x.shape);
  const ones = filled([C], 1);
  const d = empty(x.shape);
  native.gemm(false, false, g!.size, C, 1, 1, g!.f32, 1, ones.f32, C, 0, d.f32, C);
  ones.dispose();
  return [d];
});

function checkMask(op: string, x: Tensor, mask: Tensor): Float32Array {
  const md = f32(op, 'mask', mask);
  if (!sameShape(x.shape, mask.shape)) fail(op, `mask ${fmtShape(mask.shape)} must have the shape of x ${fmtShape(x.shape)}`);
  return md;
}

function maskedTotal(op: string, x: Tensor, mask: Tensor): number {
  const xd = f32(op, 'x', x);
  const md = checkMask(op, x, mask);
  const prod = empty(x.shape);
  native.mul(prod.f32, xd, md);
  const s = native.sumAll(prod.f32);
  prod.dispose();
  return s;
}

/** sum(x * mask) -> shape []; no gradient through mask. */
export function maskedSum(x: Tensor, mask: Tensor): Tensor {
  const out = scalar(maskedTotal('maskedSum', x, mask));
  record('maskedSum', out, [x, mask], [mask], [], { scale: 1 });
  return out;
}

/** sum(x * mask) / sum(mask) -> shape []; no gradient through mask. An all-zero mask is an error. */
export function maskedMean(x: Tensor, mask: Tensor): Tensor {
  const total = maskedTotal('maskedMean', x, mask);
  const count = native.sumAll(mask.f32);
  if (count === 0) fail('maskedMean', `mask ${fmtShape(mask.shape)} is all zero`);
  const out = scalar(total / count);
  record('maskedSum', out, [x, mask], [mask], [], { scale: 1 / count });
  return out;
}
defineRule<{ scale: number }>('maskedSum', (n, [g]) => {
  const d = empty(n.saved[0].shape);
  native.affine(d.f32, n.saved[0].f32, g!.f32[0] * n.attrs.scale, 0);
  return [d, null];
});
