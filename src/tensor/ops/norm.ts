// Normalisations over the last dim (LayerNorm, RMSNorm) and softmax. The
// kernels save per-row statistics (mean, rstd) for the backward; the node
// owns those buffers.
import { native } from '../../native.js';
import { defineRule, record } from '../tape/autograd.js';
import { empty, fmtShape, type Tensor } from '../tensor.js';
import { f32, fail, lastDim, rank } from './check.js';

interface RowsAttrs {
  N: number;
  C: number;
}

function checkVec(op: string, name: string, v: Tensor, C: number, x: Tensor): Float32Array {
  const d = f32(op, name, v);
  if (v.shape.length !== 1 || v.shape[0] !== C) fail(op, `${name} ${fmtShape(v.shape)} does not match x ${fmtShape(x.shape)}`);
  return d;
}

/** LayerNorm over the last dim: (x - mean) * rstd * weight + bias (bias may be null). */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor | null, eps: number): Tensor {
  const xd = f32('layerNorm', 'x', x);
  rank('layerNorm', 'x', x, 1, Infinity);
  const C = lastDim(x.shape);
  const N = x.size / Math.max(C, 1);
  const wd = checkVec('layerNorm', 'weight', weight, C, x);
  const bd = bias === null ? null : checkVec('layerNorm', 'bias', bias, C, x);
  if (!(eps >= 0)) fail('layerNorm', `eps must be >= 0, got ${eps}`);
  const out = empty(x.shape);
  const mean = empty([N], 'f32', false);
  const rstd = empty([N], 'f32', false);
  native.layerNormForward(out.f32, mean.f32, rstd.f32, xd, wd, bd, N, C, eps);
  record<RowsAttrs>('layerNorm', out, [x, weight, bias], [x, weight], [mean, rstd], { N, C });
  return out;
}
defineRule<RowsAttrs>('layerNorm', (n, [g]) => {
  const [x, w, mean, rstd] = n.saved;
  const { N, C } = n.attrs;
  const dx = empty(x.shape);
  const dw = empty(w.shape);
  const db = n.inputs[2] === null ? null : empty(w.shape);
  native.layerNormBackward(dx.f32, dw.f32, db === null ? null : db.f32, g!.f32, x.f32, w.f32, mean.f32, rstd.f32, N, C);
  return [dx, dw, db];
});

/** RMSNorm (LLaMA): x * rsqrt(mean(x^2) + eps) * weight. */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const xd = f32('rmsNorm', 'x', x);
  rank('rmsNorm', 'x', x, 1, Infinity);
  const C = lastDim(x.shape);
  const N = x.size / Math.max(C, 1);
  const wd = checkVec('rmsNorm', 'weight', weight, C, x);
  if (!(eps >= 0)) fail('rmsNorm', `eps must be >= 0, got ${eps}`);
  const out = empty(x.shape);
  const rstd = empty([N], 'f32', false);
  native.rmsNormForward(out.f32, rstd.f32, xd, wd, N, C, eps);
  record<RowsAttrs>('rmsNorm', out, [x, weight], [x, weight], [rstd], { N, C });
  return out;
}
defineRule<RowsAttrs>('rmsNorm', (n, [g]) => {
  const [x, w, rstd] = n.saved;
  const dx = empty(x.shape);
  const dw = empty(w.shape);
  native.rmsNormBackward(dx.f32, dw.f32, g!.f32, x.f32, w.f32, rstd.f32, n.attrs.N, n.attrs.C);
  return [dx, dw];
});

/** Softmax over the last dim. */
export function softmax(x: Tensor): Tensor {
  const xd = f32('softmax', 'x', x);
  rank('softmax', 'x', x, 1, Infinity);
  const C = lastDim(x.shape);
  const N = x.size / Math.max(C, 1);
  const out = empty(x.shape);
  native.softmaxForward(out.f32, xd, N, C);
  record<RowsAttrs>('softmax', out, [x], [out], [], { N, C });
  return out;
}
defineRule<RowsAttrs>('softmax', (n, [g]) => {
  const y = n.saved[0];
  const dx = empty(y.shape);
  native.softmaxBackward(dx.f32, y.f32, g!.f32, n.attrs.N, n.attrs.C);
  return [dx];
});
