// Step 2, reward-model training, driven from the coordinator: batches of
// (prompt + chosen, prompt + rejected) pairs go to the reward group's
// `train_rm` (pairwise loss -log sigmoid(r_chosen - r_rejected) over the
// tokens after the answers diverge, computed by the role); held-out accuracy
// and mean scores from `eval_rm` before training and at each evaluation
// point; the trained model (with its value head) saved as a Hugging Face folder.
import type { Config } from '../config/defaults.js';
import type { StepData } from '../data/datasets.js';
import { BatchIterator, rmBatch } from '../data/batches.js';
import type { RmPairs } from '../data/examples.js';
import { shardRange, type Roles, type Tensors } from '../runtime/index.js';
import { figure, i32, lrFor, perReplica, weightedMean, type DriverHooks } from './driver.js';
import type { Figures } from './metrics.js';
import type { StepResume } from './step-checkpoints.js';
import { runStepLoop, totalSteps } from './step-loop.js';
import type { MetaOf } from '../roles/methods.js';

export interface RmEval {
  loss: number | null;
  accuracy: number | null;
  chosenMean: number | null;
  rejectedMean: number | null;
  pairs: number;
}

export interface RmResult {
  steps: number;
  /** Pairs in the training share. */
  trainPairs: number;
  evalBefore: RmEval;
  evalAfter: RmEval;
  output: string;
}

/** Optimizer steps of the RM phase over `replicas` reward replicas (a last batch with fewer pairs than replicas joins the one before). */
export function rmTotalSteps(config: Config, pairs: number, replicas: number): number {
  return totalSteps(config.rm, pairs, replicas);
}

/** The pair tensors of train_rm / eval_rm: chosen and rejected rows padded to one width. */
export function rmTensors(ex: RmPairs, indices: number[], padId: number): Tensors {
  const b = rmBatch(ex, indices, padId);
  const n = b.pairs * b.T;
  return {
    chosen_ids: i32([b.pairs, b.T], b.ids.slice(0, n)),
    chosen_mask: i32([b.pairs, b.T], b.mask.slice(0, n)),
    rejected_ids: i32([b.pairs, b.T], b.ids.slice(n)),
    rejected_mask: i32([b.pairs, b.T], b.mask.slice(n)),
  };
}

/** Pair-weighted means of a reply's figures over the replicas. */
function pairMean(replies: { metrics: Record<string, number> }[], rows: number[], key: string): number | null {
  return weightedMean(replies.map((r, i) => ({ value: figure(r.metrics, key), weight: rows[i] })));
}

/** Rows each replica that got any was given (the order of a group call's replies). */
function replicaRows(total: number, replicas: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < replicas; i++) {
    const [a, b] = shardRange(total, replicas, i);
    if (b > a) out.push(b - a);
  }
  return out;
}

export async function evalRm(roles: Roles, config: Config, data: StepData<RmPairs>): Promise<RmEval> {
  const ex = data.eval;
  const acc: Record<'loss' | 'acc' | 'chosen_mean' | 'rejected_mean', { value: number | null; weight: number }[]> = { loss: [], acc: [], chosen_mean: [], rejected_mean: [] };
  const it = new BatchIterator(ex.promptLens.length, config.rm.evalBatchSize, config.seed, { shuffle: false });
  for (let idx = it.next(); idx; idx = it.next()) {
    const r = await roles.group('reward').call('eval_rm', { tensors: rmTensors(ex, idx, data.padId) });
    const rows = replicaRows(idx.length, roles.group('reward').size);
    for (const k of Object.keys(acc) as (keyof typeof acc)[]) acc[k].push({ value: pairMean(r.replies, rows, k), weight: idx.length });
  }
  return {
    loss: weightedMean(acc.loss), accuracy: weightedMean(acc.acc),
    chosenMean: weightedMean(acc.chosen_mean), rejectedMean: weightedMean(acc.rejected_mean),
    pairs: ex.promptLens.length,
  };
}

function evalFigures(e: RmEval): Figures {
  return { eval_loss: e.loss, eval_accuracy: e.accuracy, eval_chosen_mean: e.chosenMean, eval_rejected_mean: e.rejectedMean };
}

export async function runRm(roles: Roles, config: Config, data: StepData<RmPairs>, output: string, hooks: DriverHooks = {}, ck: StepResume = {}): Promise<RmResult> {
  const { rm, reward } = config;
  const pairs = data.train.promptLens.length;
  const replicas = roles.group('reward').size;
  const total = rmTotalSteps(config, pairs, replicas);
  if (total === 0) throw new Error(`rm: no training pairs (data gave ${pairs} pairs with a rejected answer for the rm share)`);
  const microBatch = perReplica(roles, 'reward', rm.batchSize);
  const r = await runStepLoop<RmEval>(roles, {
    name: 'rm', role: 'reward', saved: 'reward model', total, evalEvery: rm.evalEvery, maxSkippedSteps: config.checks.maxSkippedSteps,
    it: new BatchIterator(pairs, rm.batchSize * rm.gradAccum, config.seed, { epochs: rm.epochs, minLast: replicas }),
    evaluate: data.eval.promptLens.length > 0 ? () => evalRm(roles, config, data) : null,
    none: { loss: null, accuracy: null, chosenMean: null, rejectedMean: null, pairs: 0 },
    evalFigures,
    logKeys: ['loss', 'accuracy', 'eval_loss', 'eval_accuracy', 'eval_chosen_mean', 'eval_rejected_mean'],
    lr: (step) => lrFor(reward, step, total),
    train: async (indices, lr) => {
      const t0 = performance.now();
      const r = await roles.group('reward').call('train_rm', {
        meta: { lr, weightDecay: reward.weightDecay, gradClip: reward.gradClip, microBatch } satisfies MetaOf<'reward', 'train_rm'>,
        tensors: rmTensors(data.train, indices, data.padId),
      }, { allReplicas: true });
      const seconds = (performance.now() - t0) / 1000;
      const rows = replicaRows(indices.length, roles.group('reward').size);
      return {
        loss: pairMean(r.replies, rows, 'loss'),
        accuracy: pairMean(r.replies, rows, 'acc'),
        chosen_mean: pairMean(r.replies, rows, 'chosen_mean'),
        rejected_mean: pairMean(r.replies, rows, 'rejected_mean'),
        grad_norm: figure(r.metrics, 'grad_norm'),
        skipped: figure(r.metrics, 'skipped'),
        pairs_per_s: seconds > 0 ? indices.length / seconds : null,
      };
    },
  }, output, hooks, ck);
  return { steps: r.steps, trainPairs: pairs, evalBefore: r.evalBefore, evalAfter: r.evalAfter, output };
}
