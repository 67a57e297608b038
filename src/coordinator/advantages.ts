// Advantages for the policy update, in the [B, A] answer layout of
// ppo-math.ts: GAE with a critic (DeepSpeed-Chat's get_advantages_and_returns,
// after trlx), and the critic-free group-relative advantages of GRPO and RLOO.
import { clip, type AnswerBatch } from './ppo-math.js';

function checkArrays(op: string, batch: AnswerBatch, arrays: Record<string, Float32Array>): void {
  if (batch.answerLens.length !== batch.B) throw new Error(`${op}: answerLens has ${batch.answerLens.length} entries, expected B=${batch.B}`);
  for (let b = 0; b < batch.B; b++) {
    if (batch.answerLens[b] < 0 || batch.answerLens[b] > batch.A) throw new Error(`${op}: answerLens[${b}] = ${batch.answerLens[b]} is outside 0..A=${batch.A}`);
  }
  for (const [name, arr] of Object.entries(arrays)) {
    if (arr.length !== batch.B * batch.A) throw new Error(`${op}: ${name} has ${arr.length} entries, expected B*A = ${batch.B}*${batch.A}`);
  }
}

export interface GaeInputs extends AnswerBatch {
  /** Per-token rewards from computeRewards: [B, A]. */
  rewards: Float32Array;
  /** Critic values of the answer tokens at experience time: [B, A]. */
  values: Float32Array;
  gamma: number;
  lambda: number;
}

/**
 * Generalised advantage estimation over each answer, from its last token back:
 *   delta_t = r_t + gamma * V_{t+1} - V_t   (V after the answer's end is 0)
 *   A_t = delta_t + gamma * lambda * A_{t+1}
 *   return_t = A_t + V_t
 * Advantages and returns after the end of an answer are 0, as DeepSpeed-Chat
 * gets by zeroing rewards and values there.
 */
export function gae(x: GaeInputs): { advantages: Float32Array; returns: Float32Array } {
  checkArrays('gae', x, { rewards: x.rewards, values: x.values });
  const { B, A, answerLens, gamma, lambda } = x;
  const advantages = new Float32Array(B * A);
  const returns = new Float32Array(B * A);
  for (let b = 0; b < B; b++) {
    let last = 0;
    for (let t = answerLens[b] - 1; t >= 0; t--) {
      const i = b * A + t;
      const nextValue = t + 1 < answerLens[b] ? x.values[i + 1] : 0;
      const delta = x.rewards[i] + gamma * nextValue - x.values[i];
      last = delta + gamma * lambda * last;
      advantages[i] = last;
      returns[i] = last + x.values[i];
    }
  }
  return { advantages, returns };
}

export interface GroupInputs extends AnswerBatch {
  algorithm: 'grpo' | 'rloo';
  /** Rows come in groups of groupSize consecutive answers to the same prompt. */
  groupSize: number;
  /** Reward-model score of each sequence: [B]. */
  scores: Float32Array;
  logprobs: Float32Array;
  refLogprobs: Float32Array;
  klCtl: number;
  clipRewardValue: number;
}

/** GRPO's normaliser: std + this, as TRL's GRPOTrainer. */
export const GRPO_EPS = 1e-4;

/**
 * Critic-free advantages. Each answer's return is its clipped score minus the
 * KL penalty summed over its tokens (the KL goes into the reward, as
 * OpenRLHF does for RLOO, so the actor's loss stays the plain clipped one).
 * Within each group of answers to one prompt:
 *   grpo: A_i = (R_i - mean(R)) / (std(R) + 1e-4), std with n-1 (as TRL);
 *   rloo: A_i = R_i - mean of the others' R = (R_i - mean(R)) * n / (n - 1).
 * Every token of an answer gets its answer's advantage; `returns` holds R per
 * sequence [B] for metrics.
 */
export function groupAdvantages(x: GroupInputs): { advantages: Float32Array; returns: Float32Array } {
  checkArrays('groupAdvantages', x, { logprobs: x.logprobs, refLogprobs: x.refLogprobs });
  const { B, A, answerLens, groupSize: n } = x;
  if (x.scores.length !== B) throw new Error(`groupAdvantages: scores has ${x.scores.length} entries, expected B=${B}`);
  if (!Number.isInteger(n) || n < 2) throw new Error(`groupAdvantages: groupSize must be an integer >= 2, got ${n}`);
  if (B % n !== 0) throw new Error(`groupAdvantages: B=${B} rows do not divide into groups of ${n}`);
  const returns = new Float32Array(B);
  for (let b = 0; b < B; b++) {
    let kl = 0;
    for (let j = 0; j < answerLens[b]; j++) kl += x.logprobs[b * A + j] - x.refLogprobs[b * A + j];
    returns[b] = clip(x.scores[b], -x.clipRewardValue, x.clipRewardValue) - x.klCtl * kl;
  }
  const advantages = new Float32Array(B * A);
  for (let g = 0; g < B; g += n) {
    let mean = 0;
    for (let i = g; i < g + n; i++) mean += returns[i];
    mean /= n;
    let sq = 0;
    for (let i = g; i < g + n; i++) sq += (returns[i] - mean) ** 2;
    const std = Math.sqrt(sq / (n - 1));
    for (let i = g; i < g + n; i++) {
      const adv = x.algorithm === 'grpo' ? (returns[i] - mean) / (std + GRPO_EPS) : ((returns[i] - mean) * n) / (n - 1);
      advantages.fill(adv, i * A, i * A + answerLens[i]);
    }
  }
  return { advantages, returns };
}
