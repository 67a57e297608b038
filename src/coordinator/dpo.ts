// Direct preference optimisation, DeepSpeed-Chat's step2_dpo, as the
// alternative to reward-model training plus PPO: batches of (prompt + chosen,
// prompt + rejected) pairs; the frozen SFT policy in the reference group gives
// its per-token log-probs once per batch (`logprobs`), summed here over each
// answer's tokens; the actor group's `train_dpo` takes the pairs with those
// sums and makes one optimizer step on
// -logsigmoid(beta * ((pc - rc) - (pr - rr))). Held-out loss, implicit-reward
// accuracy and margins from `eval_dpo` before training and at each
// evaluation point; the final actor saved as a Hugging Face folder.
//
// Only answer tokens count, by the attention mask. DeepSpeed-Chat sums from
// where the two sequences diverge instead: the shared tokens before that have
// equal log-probs on both sides and cancel in the loss, so only the reported
// implicit rewards differ. It also masks by token id != pad, which drops the
// end-of-conversation token where pad and eos are one token; the mask here
// keeps it (ending the answer is part of the answer).
import type { Config } from '../config/defaults.js';
import type { StepData } from '../data/datasets.js';
import { BatchIterator, rmBatch } from '../data/batches.js';
import type { RmPairs } from '../data/examples.js';
import type { Roles, Tensors } from '../runtime/index.js';
import { f32, figure, i32, lrFor, perReplica, weightedMean, type DriverHooks } from './driver.js';
import type { Figures } from './metrics.js';
import type { StepResume } from './step-checkpoints.js';
import { runStepLoop, totalSteps } from './step-loop.js';
import type { MetaOf } from '../roles/methods.js';

export interface DpoEval {
  loss: number | null;
  /** Share of pairs whose chosen implicit reward beta * (logp - ref_logp) beats the rejected one's. */
  accuracy: number | null;
  chosenReward: number | null;
  rejectedReward: number | null;
  margin: number | null;
  pairs: number;
}

export interface DpoResult {
  steps: number;
  trainPairs: number;
  evalBefore: DpoEval;
  evalAfter: DpoEval;
  output: string;
}

/** Optimizer steps of the DPO phase over `replicas` actor replicas (a last batch with fewer pairs than replicas joins the one before). */
export function dpoTotalSteps(config: Config, pairs: number, replicas: number): number {
  return totalSteps(config.dpo, pairs, replicas);
}

/**
 * Answer targets of right-padded rows [B, T] -> [B, T-1]: entry (b, t-1) is 1
 * when token t is real and at or after the prompt (its log-prob is entry t-1
 * of the roles' `logprobs`).
 */
export function answerTargets(mask: Int32Array, promptLens: Int32Array, B: number, T: number): Float32Array {
  const out = new Float32Array(B * (T - 1));
  for (let b = 0; b < B; b++) {
    for (let t = Math.max(1, promptLens[b]); t < T; t++) out[b * (T - 1) + t - 1] = mask[b * T + t];
  }
  return out;
}

/** Row sums of per-token log-probs [B, T-1] weighted by the answer targets: [B]. */
export function answerSums(logprobs: Float32Array, targets: Float32Array, B: number, A: number): Float32Array {
  const out = new Float32Array(B);
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let j = 0; j < A; j++) s += logprobs[b * A + j] * targets[b * A + j];
    out[b] = s;
  }
  return out;
}

/** The batch's pairs, their answer targets, and the reference's answer sums (one `logprobs` call for both sides). */
export async function dpoTensors(roles: Roles, ex: RmPairs, indices: number[], padId: number): Promise<Tensors> {
  const b = rmBatch(ex, indices, padId);
  const { pairs: B, T } = b;
  const n = B * T, A = T - 1;
  const chosenMask = b.mask.slice(0, n), rejectedMask = b.mask.slice(n);
  const chosenAnswer = answerTargets(chosenMask, b.promptLens, B, T);
  const rejectedAnswer = answerTargets(rejectedMask, b.promptLens, B, T);
  const ref = await roles.group('reference').call('logprobs', { tensors: { ids: i32([2 * B, T], b.ids), mask: i32([2 * B, T], b.mask) } });
  const lp = ref.tensors.logprobs;
  if (!lp || lp.dtype !== 'f32' || lp.shape[0] !== 2 * B || lp.shape[1] !== A)
    throw new Error(`dpo: the reference's logprobs reply is ${lp ? `${lp.dtype} [${lp.shape}]` : 'missing'}, expected f32 [${2 * B}, ${A}]`);
  const all = lp.data as Float32Array;
  return {
    chosen_ids: i32([B, T], b.ids.slice(0, n)),
    chosen_mask: i32([B, T], chosenMask),
    rejected_ids: i32([B, T], b.ids.slice(n)),
    rejected_mask: i32([B, T], rejectedMask),
    chosen_answer_mask: f32([B, A], chosenAnswer),
    rejected_answer_mask: f32([B, A], rejectedAnswer),
    ref_chosen_logps: f32([B], answerSums(all.subarray(0, B * A), chosenAnswer, B, A)),
    ref_rejected_logps: f32([B], answerSums(all.subarray(B * A), rejectedAnswer, B, A)),
  };
}

const FIGURES = { loss: 'loss', accuracy: 'acc', chosen_reward: 'chosen_reward', rejected_reward: 'rejected_reward', margin: 'margin' } as const;

/** Pair-weighted means of the replicas' figures (each reply says how many pairs it had). */
function pairFigures(replies: { metrics: Record<string, number> }[]): Record<keyof typeof FIGURES, number | null> {
  const mean = (key: string) => weightedMean(replies.map((r) => ({ value: figure(r.metrics, key), weight: figure(r.metrics, 'pairs') ?? 1 })));
  return {
    loss: mean(FIGURES.loss), accuracy: mean(FIGURES.accuracy), chosen_reward: mean(FIGURES.chosen_reward),
    rejected_reward: mean(FIGURES.rejected_reward), margin: mean(FIGURES.margin),
  };
}

export async function evalDpo(roles: Roles, config: Config, data: StepData<RmPairs>): Promise<DpoEval> {
  const ex = data.eval;
  const acc: Record<keyof typeof FIGURES, { value: number | null; weight: number }[]> = { loss: [], accuracy: [], chosen_reward: [], rejected_reward: [], margin: [] };
  const it = new BatchIterator(ex.promptLens.length, config.dpo.evalBatchSize, config.seed, { shuffle: false });
  for (let idx = it.next(); idx; idx = it.next()) {
    const r = await roles.group('actor').call('eval_dpo', {
      meta: { beta: config.dpo.beta, labelSmoothing: config.dpo.labelSmoothing } satisfies MetaOf<'actor', 'eval_dpo'>,
      tensors: await dpoTensors(roles, ex, idx, data.padId),
    });
    const f = pairFigures(r.replies);
    for (const k of Object.keys(acc) as (keyof typeof FIGURES)[]) acc[k].push({ value: f[k], weight: idx.length });
  }
  return {
    loss: weightedMean(acc.loss), accuracy: weightedMean(acc.accuracy), chosenReward: weightedMean(acc.chosen_reward),
    rejectedReward: weightedMean(acc.rejected_reward), margin: weightedMean(acc.margin), pairs: ex.promptLens.length,
  };
}

function evalFigures(e: DpoEval): Figures {
  return { eval_loss: e.loss, eval_accuracy: e.accuracy, eval_chosen_reward: e.chosenReward, eval_rejected_reward: e.rejectedReward, eval_margin: e.margin };
}

export async function runDpo(roles: Roles, config: Config, data: StepData<RmPairs>, output: string, hooks: DriverHooks = {}, ck: StepResume = {}): Promise<DpoResult> {
  const { dpo } = config;
  const pairs = data.train.promptLens.length;
  const replicas = roles.group('actor').size;
  const total = dpoTotalSteps(config, pairs, replicas);
  if (total === 0) throw new Error(`dpo: no training pairs (data gave ${pairs} pairs with a rejected answer for the rm share)`);
  const microBatch = perReplica(roles, 'actor', dpo.batchSize);
  const r = await runStepLoop<DpoEval>(roles, {
    name: 'dpo', role: 'actor', saved: 'actor', total, evalEvery: dpo.evalEvery, maxSkippedSteps: config.checks.maxSkippedSteps,
    it: new BatchIterator(pairs, dpo.batchSize * dpo.gradAccum, config.seed, { epochs: dpo.epochs, minLast: replicas }),
    evaluate: data.eval.promptLens.length > 0 ? () => evalDpo(roles, config, data) : null,
    none: { loss: null, accuracy: null, chosenReward: null, rejectedReward: null, margin: null, pairs: 0 },
    evalFigures,
    logKeys: ['loss', 'accuracy', 'margin', 'eval_loss', 'eval_accuracy', 'eval_margin'],
    lr: (step) => lrFor(dpo, step, total),
    train: async (indices, lr) => {
      const t0 = performance.now();
      const tensors = await dpoTensors(roles, data.train, indices, data.padId);
      const r = await roles.group('actor').call('train_dpo', {
        meta: { lr, weightDecay: dpo.weightDecay, gradClip: config.actor.gradClip, microBatch, beta: dpo.beta, labelSmoothing: dpo.labelSmoothing } satisfies MetaOf<'actor', 'train_dpo'>,
        tensors,
      }, { allReplicas: true });
      const seconds = (performance.now() - t0) / 1000;
      return {
        ...pairFigures(r.replies),
        grad_norm: figure(r.metrics, 'grad_norm'),
        skipped: figure(r.metrics, 'skipped'),
        pairs_per_s: seconds > 0 ? indices.length / seconds : null,
      };
    },
  }, output, hooks, ck);
  return { steps: r.steps, trainPairs: pairs, evalBefore: r.evalBefore, evalAfter: r.evalAfter, output };
}
