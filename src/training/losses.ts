// The losses of the trainers as autograd compositions (DeepSpeed-Chat's
// ppo_trainer.py actor_loss_fn / critic_loss_fn and reward_model.py's pairwise
// loss). src/coordinator/ppo-math.ts holds the same formulas over plain arrays
// as the slow reference; test/training/losses.test.ts holds them equal.
//
// Every loss is a SUM over its tokens divided by a caller-given `denom`: a
// trainer that splits a batch into micro-batches passes the whole batch's
// token (or pair) count, so the accumulated gradient equals the full-batch mean.
import { type Tensor, add, affine, clamp, exp, fromData, logSigmoid, maskedSum, maximum, mul, neg, noGrad, sub, sum } from '../tensor/index.js';

function checkSame(op: string, ref: Tensor, named: Record<string, Tensor>): void {
  for (const [name, t] of Object.entries(named)) {
    if (t.shape.length !== ref.shape.length || t.shape.some((d, i) => d !== ref.shape[i])) {
      throw new Error(`${op}: ${name} has shape [${t.shape}], expected [${ref.shape}]`);
    }
  }
}

export interface PolicyLossStats {
  /** Masked tokens where the clipped term was the larger (no gradient there). */
  clipped: number;
  /** Sum over masked tokens of the k3 KL estimate ratio - 1 - log ratio. */
  klSum: number;
}

/**
 * Clipped policy loss: ratio = exp((logp - old) * mask),
 * sum(max(-adv * ratio, -adv * clamp(ratio, 1-c, 1+c)) * mask) / denom. All [B, A].
 */
export function policyLoss(logp: Tensor, oldLogp: Tensor, adv: Tensor, mask: Tensor, clipRange: number, denom: number): { loss: Tensor; stats: PolicyLossStats } {
  checkSame('policyLoss', logp, { old_logprobs: oldLogp, advantages: adv, action_mask: mask });
  if (!(denom > 0)) throw new Error(`policyLoss: denom must be > 0, got ${denom}`);
  const logRatio = mul(sub(logp, oldLogp), mask);
  const ratio = exp(logRatio);
  const negAdv = neg(adv);
  const unclipped = mul(negAdv, ratio);
  const clipped = mul(negAdv, clamp(ratio, 1 - clipRange, 1 + clipRange));
  const loss = affine(maskedSum(maximum(unclipped, clipped), mask), 1 / denom, 0);
  const stats = noGrad(() => {
    const m = mask.f32, u = unclipped.f32, c = clipped.f32, r = ratio.f32, lr = logRatio.f32;
    let nClipped = 0, kl = 0;
    for (let i = 0; i < m.length; i++) {
      if (m[i] === 0) continue;
      if (c[i] > u[i]) nClipped++;
      kl += r[i] - 1 - lr[i];
    }
    return { clipped: nClipped, klSum: kl };
  });
  return { loss, stats };
}

/**
 * Clipped value loss: v' = clamp(v, old - c, old + c) elementwise,
 * 0.5 * sum(max((v - R)^2, (v' - R)^2) * mask) / denom. All [B, A].
 */
export function valueLoss(values: Tensor, oldValues: Tensor, returns: Tensor, mask: Tensor, clipRangeValue: number, denom: number): { loss: Tensor; clipped: number } {
  checkSame('valueLoss', values, { old_values: oldValues, returns, action_mask: mask });
  if (!(denom > 0)) throw new Error(`valueLoss: denom must be > 0, got ${denom}`);
  // clamp takes scalar bounds, so clip the offset from the old value instead: old + clamp(v - old, -c, c).
  const vClipped = add(oldValues, clamp(sub(values, oldValues), -clipRangeValue, clipRangeValue));
  const e1 = sub(values, returns);
  const e2 = sub(vClipped, returns);
  const l1 = mul(e1, e1);
  const l2 = mul(e2, e2);
  const loss = affine(maskedSum(maximum(l1, l2), mask), 0.5 / denom, 0);
  let clipped = 0;
  const m = mask.f32, a = l1.f32, b = l2.f32;
  for (let i = 0; i < m.length; i++) if (m[i] !== 0 && b[i] > a[i]) clipped++;
  return { loss, clipped };
}

/**
 * Pairwise reward-model loss: -sum(weight * logsigmoid(chosen - rejected)), where chosen and
 * rejected are the values at the compared positions of each pair (flat [K]) and weight
 * gives each pair's positions 1 / (its position count * pairs in the batch).
 */
export function pairwiseLoss(chosen: Tensor, rejected: Tensor, weight: Float32Array): Tensor {
  if (chosen.size !== rejected.size || chosen.size !== weight.length) {
    throw new Error(`pairwiseLoss: chosen has ${chosen.size} values, rejected ${rejected.size}, weights ${weight.length}; they must agree`);
  }
  return neg(maskedSum(logSigmoid(sub(chosen, rejected)), fromData(weight, chosen.shape)));
}

/** Mean negative log-likelihood weighted by `weight` (1 on target tokens), summed and divided by denom. */
export function lmLoss(logp: Tensor, weight: Tensor, denom: number): Tensor {
  if (!(denom > 0)) throw new Error(`lmLoss: denom must be > 0, got ${denom}`);
  return affine(maskedSum(logp, weight), -1 / denom, 0);
}

/**
 * DPO loss (Rafailov et al.; DeepSpeed-Chat step2_dpo): with z = (pc - pr) - (rc - rr), the
 * policy's and the frozen reference's summed answer log-probs of each pair's chosen (c) and
 * rejected (r) answer, sum(-(1 - eps) * logsigmoid(beta * z) - eps * logsigmoid(-beta * z)) / denom.
 * policy* are [B] tensors; ref* plain [B] arrays (no gradient flows into the reference).
 */
export function dpoLoss(policyChosen: Tensor, policyRejected: Tensor, refChosen: Float32Array, refRejected: Float32Array,
  beta: number, labelSmoothing: number, denom: number): Tensor {
  checkSame('dpoLoss', policyChosen, { policy_rejected: policyRejected });
  if (policyChosen.shape.length !== 1 || refChosen.length !== policyChosen.size || refRejected.length !== policyChosen.size) {
    throw new Error(`dpoLoss: policy log-probs have shape [${policyChosen.shape}], reference ones ${refChosen.length} and ${refRejected.length} values; expected [B] each`);
  }
  if (!(beta > 0)) throw new Error(`dpoLoss: beta must be > 0, got ${beta}`);
  if (!(labelSmoothing >= 0 && labelSmoothing <= 0.5)) throw new Error(`dpoLoss: labelSmoothing must be in [0, 0.5], got ${labelSmoothing}`);
  if (!(denom > 0)) throw new Error(`dpoLoss: denom must be > 0, got ${denom}`);
  const refMargin = Float32Array.from(refChosen, (c, i) => c - refRejected[i]);
  const z = sub(sub(policyChosen, policyRejected), fromData(refMargin, policyChosen.shape));
  const agree = affine(sum(logSigmoid(affine(z, beta, 0))), -(1 - labelSmoothing) / denom, 0);
  if (labelSmoothing === 0) return agree;
  return add(agree, affine(sum(logSigmoid(affine(z, -beta, 0))), -labelSmoothing / denom, 0));
}
