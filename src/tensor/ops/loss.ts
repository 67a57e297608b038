// Token-level losses over logits [N, V]: per-token log-probs of given labels
// (the fused kernel: no [N, V] log-softmax is ever stored) and the mean
// cross-entropy built on it.
import { native } from '../../native.js';
import { defineRule, record } from '../tape/autograd.js';
import { empty, fmtShape, type Tensor } from '../tensor.js';
import { f32, fail, i32, lastDim, rank } from './check.js';
import { affine } from './binary.js';
import { sum } from './reduce.js';

interface LogprobsAttrs {
  N: number;
  V: number;
}

/** log softmax(logits)[labels] per row: logits [.., V], labels i32 [..] -> [..].
 *  A negative label is ignored (its log-prob is 0 and it gets no gradient). */
export function logprobs(logits: Tensor, labels: Tensor): Tensor {
  const ld = f32('logprobs', 'logits', logits);
  const yd = i32('logprobs', 'labels', labels);
  rank('logprobs', 'logits', logits, 1, Infinity);
  const V = lastDim(logits.shape);
  const N = logits.size / Math.max(V, 1);
  if (labels.size !== N || labels.shape.length !== logits.shape.length - 1 || labels.shape.some((d, i) => d !== logits.shape[i])) {
    fail('logprobs', `labels ${fmtShape(labels.shape)} must be the leading dims of logits ${fmtShape(logits.shape)}`);
  }
  const out = empty(labels.shape);
  const lse = empty([N], 'f32', false);
  native.logprobsForward(out.f32, lse.f32, ld, yd, N, V);
  record<LogprobsAttrs>('logprobs', out, [logits, labels], [logits, labels], [lse], { N, V });
  return out;
}
defineRule<LogprobsAttrs>('logprobs', (n, [g]) => {
  const [logits, labels, lse] = n.saved;
  const d = empty(logits.shape);
  native.logprobsBackward(d.f32, g!.f32, logits.f32, lse.f32, labels.i32, n.attrs.N, n.attrs.V);
  return [d, null];
});

/** Mean cross-entropy over rows whose label is >= 0 (torch's ignore_index for negative labels). */
export function crossEntropy(logits: Tensor, labels: Tensor): Tensor {
  const yd = i32('crossEntropy', 'labels', labels);
  let count = 0;
  for (let i = 0; i < yd.length; i++) if (yd[i] >= 0) count++;
  if (count === 0) fail('crossEntropy', `every label of ${fmtShape(labels.shape)} is ignored (negative)`);
  const lp = logprobs(logits, labels);
  const total = sum(lp);
  const out = affine(total, -1 / count, 0);
  // The intermediates are graph vertices only; their buffers are not needed.
  lp.dispose();
  total.dispose();
  return out;
}
