// The coordinator's PPO arithmetic over plain typed arrays (no tensor layer):
// DeepSpeed-Chat's per-token rewards (dschat/rlhf/ppo_trainer.py,
// compute_rewards), the clipped policy and value losses as slow, obvious
// references (the actor and critic compute them with autograd and test
// against these), the KL and clip-fraction metrics, and the dropping of
// answers of at most one token. Advantages live in advantages.ts.
//
// Layout: every per-token array covers the answer tokens only, row-major
// [B, A] (B sequences, A = the longest answer). Entry (b, j) belongs to answer
// token j of sequence b: its log-probability, its value, its reward. Row b
// holds answerLens[b] real tokens (the actions, counting the end-of-text token
// that ended the answer if one was generated); the rest of the row is padding
// and is ignored (and written as 0).
//
// One deliberate difference from DeepSpeed-Chat: it adds the reward score one
// position after an answer's last token whenever the answer is shorter than
// the batch's longest (its `ends` points past <eos>; see DeepSpeedExamples
// pull request #672), and keeps a KL term and value there. Here the score goes
// on the last real token and everything after the answer is zero, which is
// what its own comments ask for.

export interface AnswerBatch {
  /** Sequences. */
  B: number;
  /** Answer width: the longest answer in the batch. */
  A: number;
  /** Real answer tokens per sequence, each in 0..A. */
  answerLens: Int32Array;
}

function checkBatch(op: string, batch: AnswerBatch, arrays: Record<string, ArrayLike<number>>): void {
  const { B, A, answerLens } = batch;
  if (!Number.isInteger(B) || B < 0 || !Number.isInteger(A) || A < 0) throw new Error(`${op}: bad sizes B=${B} A=${A}`);
  if (answerLens.length !== B) throw new Error(`${op}: answerLens has ${answerLens.length} entries, expected B=${B}`);
  for (let b = 0; b < B; b++) {
    if (answerLens[b] < 0 || answerLens[b] > A) throw new Error(`${op}: answerLens[${b}] = ${answerLens[b]} is outside 0..A=${A}`);
  }
  for (const [name, arr] of Object.entries(arrays)) {
    if (arr.length !== B * A) throw new Error(`${op}: ${name} has ${arr.length} entries, expected B*A = ${B}*${A}`);
  }
}

/** 1 on the real answer tokens, 0 on padding: [B, A]. */
export function answerMask(batch: AnswerBatch): Float32Array {
  const { B, A, answerLens } = batch;
  const mask = new Float32Array(B * A);
  for (let b = 0; b < B; b++) mask.fill(1, b * A, b * A + answerLens[b]);
  return mask;
}

/**
 * Cuts the answer part out of per-position arrays over whole sequences.
 * `full` is [B, W]; the answer columns are start .. start+A-1. For
 * log-probabilities of `seq[:, 1:]` (W = T-1) and a left-padded prompt of
 * width P, start is P-1, as DeepSpeed-Chat's `[:, start:]`.
 */
export function sliceAnswers(full: Float32Array, B: number, W: number, start: number, A: number): Float32Array {
  if (full.length !== B * W) throw new Error(`sliceAnswers: array has ${full.length} entries, expected B*W = ${B}*${W}`);
  if (start < 0 || start + A > W) throw new Error(`sliceAnswers: columns ${start}..${start + A - 1} are outside 0..${W - 1}`);
  const out = new Float32Array(B * A);
  for (let b = 0; b < B; b++) out.set(full.subarray(b * W + start, b * W + start + A), b * A);
  return out;
}

/**
 * Answer lengths of generated sequences [B, T] whose prompts are left-padded
 * to width P: the tokens up to and including the first end-of-text token, or
 * up to the first pad, or to the end. The end-of-text token that stops an
 * answer is an action the policy took, so it counts (as in DeepSpeed-Chat with
 * OPT, whose pad and eos differ; with pad = eos its count would drop it).
 */
export function answerLengths(seq: Int32Array, B: number, T: number, P: number, eosId: number | null, padId: number): Int32Array {
  if (seq.length !== B * T) throw new Error(`answerLengths: seq has ${seq.length} entries, expected B*T = ${B}*${T}`);
  if (P < 0 || P > T) throw new Error(`answerLengths: prompt width ${P} is outside 0..T=${T}`);
  const lens = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let n = 0;
    for (let t = P; t < T; t++) {
      const id = seq[b * T + t];
      if (id === eosId) { n++; break; }
      if (id === padId) break;
      n++;
    }
    lens[b] = n;
  }
  return lens;
}

/**
 * Rows to keep after generation: DeepSpeed-Chat drops every answer of at most
 * one token (they come from a policy that has not learnt to answer). Returns
 * the indices of the kept rows, in order.
 */
export function answersToKeep(answerLens: Int32Array): number[] {
  const keep: number[] = [];
  for (let b = 0; b < answerLens.length; b++) if (answerLens[b] > 1) keep.push(b);
  return keep;
}

/** Rows `rows` of a [B, rowLen] array, in that order. */
export function gatherRows<T extends Float32Array | Int32Array>(arr: T, rowLen: number, rows: readonly number[]): T {
  const out = new (arr.constructor as { new(n: number): T })(rows.length * rowLen);
  rows.forEach((r, i) => {
    if (r < 0 || (r + 1) * rowLen > arr.length) throw new Error(`gatherRows: row ${r} is outside the array of ${arr.length / rowLen} rows`);
    out.set(arr.subarray(r * rowLen, (r + 1) * rowLen), i * rowLen);
  });
  return out;
}

export function clip(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

export interface RewardInputs extends AnswerBatch {
  /** Actor (old) log-probabilities of the answer tokens: [B, A]. */
  logprobs: Float32Array;
  /** Reference log-probabilities of the same tokens: [B, A]. */
  refLogprobs: Float32Array;
  /** Reward-model score of each sequence: [B]. */
  scores: Float32Array;
  /** KL penalty weight (DeepSpeed-Chat kl_ctl, 0.1). */
  klCtl: number;
  /** Scores are clipped to [-v, v] (clip_reward_value, 5). */
  clipRewardValue: number;
}

/**
 * Per-token rewards: -klCtl * (logp - ref_logp) on every answer token, plus
 * the clipped score on the last one; zero after the answer. [B, A].
 */
export function computeRewards(x: RewardInputs): Float32Array {
  checkBatch('computeRewards', x, { logprobs: x.logprobs, refLogprobs: x.refLogprobs });
  if (x.scores.length !== x.B) throw new Error(`computeRewards: scores has ${x.scores.length} entries, expected B=${x.B}`);
  const { B, A, answerLens } = x;
  const rewards = new Float32Array(B * A);
  for (let b = 0; b < B; b++) {
    const n = answerLens[b];
    for (let j = 0; j < n; j++) {
      const i = b * A + j;
      rewards[i] = -x.klCtl * (x.logprobs[i] - x.refLogprobs[i]);
    }
    if (n > 0) rewards[b * A + n - 1] += clip(x.scores[b], -x.clipRewardValue, x.clipRewardValue);
  }
  return rewards;
}

export interface KlStats {
  /** Mean over sequences of the summed (logp - ref_logp) of each answer. */
  klPerSequence: number;
  /** Mean over all answer tokens of (logp - ref_logp). */
  klPerToken: number;
  /**
   * Mean over sequences of the summed k3 estimate, r - 1 - log r with
   * r = exp(ref_logp - logp) per token: also an unbiased estimate of
   * KL(policy || reference) over answers the policy sampled, but never
   * negative, where the plain (logp - ref_logp) of one batch can be below
   * zero by sampling noise alone (or when sampling is not at temperature 1).
   */
  klK3PerSequence: number;
}

/** The KL metrics of a batch (the sampled estimate, as DeepSpeed-Chat's penalty uses). */
export function klStats(batch: AnswerBatch, logprobs: Float32Array, refLogprobs: Float32Array): KlStats {
  checkBatch('klStats', batch, { logprobs, refLogprobs });
  const { B, A, answerLens } = batch;
  let total = 0, tokens = 0, k3 = 0;
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < answerLens[b]; j++) {
      const logRatio = refLogprobs[b * A + j] - logprobs[b * A + j];
      total -= logRatio;
      k3 += Math.expm1(logRatio) - logRatio;
    }
    tokens += answerLens[b];
  }
  return { klPerSequence: B ? total / B : 0, klPerToken: tokens ? total / tokens : 0, klK3PerSequence: B ? k3 / B : 0 };
}

export interface LossResult {
  loss: number;
  /** d loss / d input (new logprobs, or new values), [B, A]: for checking an autograd implementation. */
  grad: Float32Array;
  /** Share of answer tokens where the clipped term was the larger one (and so carries no gradient). */
  clipFrac: number;
}

export interface PolicyLossInputs extends AnswerBatch {
  /** Log-probabilities under the policy being trained: [B, A]. */
  logprobs: Float32Array;
  /** Log-probabilities at generation time: [B, A]. */
  oldLogprobs: Float32Array;
  advantages: Float32Array;
  /** Ratio clip (cliprange, 0.2). */
  clipRange: number;
}

/**
 * DeepSpeed-Chat's actor_loss_fn: with ratio = exp(logp - old_logp),
 * loss = sum over answer tokens of max(-adv * ratio, -adv * clamp(ratio, 1-c, 1+c)),
 * divided by the number of answer tokens.
 */
export function policyLoss(x: PolicyLossInputs): LossResult & { approxKl: number } {
  checkBatch('policyLoss', x, { logprobs: x.logprobs, oldLogprobs: x.oldLogprobs, advantages: x.advantages });
  const { B, A, answerLens, clipRange } = x;
  const grad = new Float32Array(B * A);
  let count = 0;
  for (let b = 0; b < B; b++) count += answerLens[b];
  if (count === 0) return { loss: 0, grad, clipFrac: 0, approxKl: 0 };
  let sum = 0, clipped = 0, kl = 0;
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < answerLens[b]; j++) {
      const i = b * A + j;
      const logRatio = x.logprobs[i] - x.oldLogprobs[i];
      const ratio = Math.exp(logRatio);
      const adv = x.advantages[i];
      const unclipped = -adv * ratio;
      const clippedTerm = -adv * clip(ratio, 1 - clipRange, 1 + clipRange);
      if (clippedTerm > unclipped) {
        // The clipped term wins only where the ratio is outside the range, so it is constant: no gradient.
        sum += clippedTerm;
        clipped++;
      } else {
        sum += unclipped;
        grad[i] = (-adv * ratio) / count;
      }
      // k3 estimator of KL(old || new): non-negative, unbiased (Schulman, "Approximating KL divergence").
      kl += ratio - 1 - logRatio;
    }
  }
  return { loss: sum / count, grad, clipFrac: clipped / count, approxKl: kl / count };
}

export interface ValueLossInputs extends AnswerBatch {
  /** Values of the critic being trained: [B, A]. */
  values: Float32Array;
  /** Values at experience time: [B, A]. */
  oldValues: Float32Array;
  returns: Float32Array;
  /** Value clip (cliprange_value, 0.2). */
  clipRangeValue: number;
}

/**
 * DeepSpeed-Chat's critic_loss_fn: with v' = clamp(v, old - c, old + c),
 * loss = 0.5 * sum over answer tokens of max((v - R)^2, (v' - R)^2), divided by
 * the number of answer tokens.
 */
export function valueLoss(x: ValueLossInputs): LossResult {
  checkBatch('valueLoss', x, { values: x.values, oldValues: x.oldValues, returns: x.returns });
  const { B, A, answerLens, clipRangeValue: c } = x;
  const grad = new Float32Array(B * A);
  let count = 0;
  for (let b = 0; b < B; b++) count += answerLens[b];
  if (count === 0) return { loss: 0, grad, clipFrac: 0 };
  let sum = 0, clipped = 0;
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < answerLens[b]; j++) {
      const i = b * A + j;
      const v = x.values[i], ret = x.returns[i];
      const vClipped = clip(v, x.oldValues[i] - c, x.oldValues[i] + c);
      const l1 = (v - ret) ** 2, l2 = (vClipped - ret) ** 2;
      if (l2 > l1) {
        // As in the policy loss: the clipped branch wins only outside the range, where it is constant.
        sum += l2;
        clipped++;
      } else {
        sum += l1;
        grad[i] = (v - ret) / count;
      }
    }
  }
  return { loss: (0.5 * sum) / count, grad, clipFrac: clipped / count };
}
