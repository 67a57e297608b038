// The experience of PPO (OpenRLHF's `Experience`): what one generation batch
// leaves for training, and the conversions between the two layouts in play.
//
//   role layout   [B, T-1]: per-token arrays as the roles send and take them,
//                 column t belongs to token t+1 (docs/roles.md, A = T-1 there)
//   answer layout [B, A]:   answer tokens only, A = T - P (ppo-math.ts,
//                 advantages.ts); answer token j sits at role column P-1+j
//
// Sequences are [B, T] with the prompt left-padded to width P, so every answer
// starts at column P; after the drop of short answers the batch is trimmed to
// its longest answer.
import { answerMask, sliceAnswers } from './ppo-math.js';

/** One batch of experience, from generation to training (OpenRLHF's Experience record). */
export interface Experience extends Trimmed {
  /** [B, A] actor log-probs at generation time. */
  logprobs: Float32Array;
  /** [B, A] reference log-probs. */
  refLogprobs: Float32Array;
  /** [B, A] critic values at experience time (zeros without a critic). */
  values: Float32Array;
  /** [B] reward-model scores. */
  scores: Float32Array;
  /** The scorer's reply metrics and latency, as `reward/<key>` figures (reward-client.ts). */
  scoreFigures: Record<string, number | null>;
  /** [B, A] per-token rewards (PPO) or null (GRPO/RLOO put them in the returns). */
  rewards: Float32Array | null;
  /** [B, A] */
  advantages: Float32Array;
  /** [B, A] (PPO) or [B] per sequence (GRPO/RLOO). */
  returns: Float32Array;
}

/** Generated sequences narrowed to `rows` and to the longest kept answer, with a mask that ends at each answer. */
export interface Trimmed {
  /** Sequences. */
  B: number;
  /** Sequence width: P + A. */
  T: number;
  /** Prompt width (left-padded). */
  P: number;
  /** Answer width: the longest answer. */
  A: number;
  /** [B, T] token ids; pads after an answer hold padId. */
  ids: Int32Array;
  /** [B, T] 1 on the prompt's real tokens and the answer's tokens. */
  mask: Int32Array;
  /** [B] answer tokens per row (the stopping end-of-text token counts). */
  answerLens: Int32Array;
}

export function trimGenerated(ids: Int32Array, T: number, promptMask: Int32Array, P: number, answerLens: Int32Array, rows: readonly number[], padId: number): Trimmed {
  if (promptMask.length !== answerLens.length * P) throw new Error(`trimGenerated: prompt mask has ${promptMask.length} entries, expected ${answerLens.length}*${P}`);
  if (ids.length !== answerLens.length * T) throw new Error(`trimGenerated: ids has ${ids.length} entries, expected ${answerLens.length}*${T}`);
  const B = rows.length;
  const A = Math.max(0, ...rows.map((r) => answerLens[r]));
  const W = P + A;
  const outIds = new Int32Array(B * W).fill(padId);
  const outMask = new Int32Array(B * W);
  const lens = new Int32Array(B);
  rows.forEach((r, b) => {
    const n = answerLens[r];
    lens[b] = n;
    outIds.set(ids.subarray(r * T, r * T + P + n), b * W);
    outMask.set(promptMask.subarray(r * P, (r + 1) * P), b * W);
    outMask.fill(1, b * W + P, b * W + P + n);
  });
  return { B, T: W, P, A, ids: outIds, mask: outMask, answerLens: lens };
}

/** Role layout [B, T-1] -> answer layout [B, A]. */
export function toAnswerLayout(name: string, full: Float32Array, x: { B: number; T: number; P: number; A: number }): Float32Array {
  if (full.length !== x.B * (x.T - 1)) throw new Error(`experience: '${name}' has ${full.length} entries, expected B*(T-1) = ${x.B}*${x.T - 1}`);
  return sliceAnswers(full, x.B, x.T - 1, x.P - 1, x.A);
}

/** Answer layout [B, A] -> role layout [B, T-1], zeros outside the answers. */
export function toRoleLayout(ans: Float32Array, x: { B: number; T: number; P: number; A: number }): Float32Array {
  const W = x.T - 1;
  if (ans.length !== x.B * x.A) throw new Error(`toRoleLayout: array has ${ans.length} entries, expected B*A = ${x.B}*${x.A}`);
  const out = new Float32Array(x.B * W);
  for (let b = 0; b < x.B; b++) out.set(ans.subarray(b * x.A, (b + 1) * x.A), b * W + x.P - 1);
  return out;
}

/** The action mask in the role layout: 1 at the columns of real answer tokens. */
export function actionMask(x: { B: number; T: number; P: number; A: number; answerLens: Int32Array }): Float32Array {
  return toRoleLayout(answerMask(x), x);
}

/** Rows [from, to) of an experience, every per-row array sliced alike. */
export function experienceRows(e: Experience, from: number, to: number): Experience {
  const rows = (a: Float32Array | Int32Array, width: number) => a.slice(from * width, to * width);
  const perSeq = e.returns.length === e.B;
  return {
    ...e,
    B: to - from,
    ids: rows(e.ids, e.T) as Int32Array,
    mask: rows(e.mask, e.T) as Int32Array,
    answerLens: e.answerLens.slice(from, to),
    logprobs: rows(e.logprobs, e.A) as Float32Array,
    refLogprobs: rows(e.refLogprobs, e.A) as Float32Array,
    values: rows(e.values, e.A) as Float32Array,
    scores: e.scores.slice(from, to),
    scoreFigures: e.scoreFigures,
    rewards: e.rewards ? (rows(e.rewards, e.A) as Float32Array) : null,
    advantages: rows(e.advantages, e.A) as Float32Array,
    returns: perSeq ? e.returns.slice(from, to) : (rows(e.returns, e.A) as Float32Array),
  };
}
