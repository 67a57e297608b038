// Step 1, supervised fine-tuning, driven from the coordinator: batches of
// prompt + chosen answer go to the actor group's `train_sft` (one optimizer
// step per call: sft.batchSize x sft.gradAccum rows, each replica taking its
// share in micro-batches), with the step's learning rate from the schedule;
// perplexity on the held-out rows before training and at each evaluation
// point; the final actor saved as a Hugging Face folder.
import type { Config } from '../config/defaults.js';
import type { StepData } from '../data/datasets.js';
import { BatchIterator, sftBatch } from '../data/batches.js';
import type { SftExamples } from '../data/examples.js';
import type { Roles } from '../runtime/index.js';
import { f32, figure, i32, lrFor, perReplica, toF32, weightedMean, type DriverHooks } from './driver.js';
import type { Figures } from './metrics.js';
import type { StepResume } from './step-checkpoints.js';
import { runStepLoop, totalSteps } from './step-loop.js';
import type { MetaOf } from '../roles/methods.js';

export interface SftResult {
  /** Optimizer steps taken. */
  steps: number;
  /** Held-out loss before training and after the last step (null without eval rows). */
  evalLossBefore: number | null;
  evalLossAfter: number | null;
  /** Where the actor was saved. */
  output: string;
}

/**
 * Optimizer steps the SFT phase will take over `replicas` actor replicas: an
 * epoch's last batch with fewer examples than replicas joins the one before
 * (each replica of a training call must get a row).
 */
export function sftTotalSteps(config: Config, examples: number, replicas: number): number {
  return totalSteps(config.sft, examples, replicas);
}

function sftTensors(data: StepData<SftExamples>, ex: SftExamples, indices: number[], maskPrompt: boolean) {
  const b = sftBatch(ex, indices, data.padId, maskPrompt);
  return { ids: i32([b.B, b.T], b.ids), mask: i32([b.B, b.T], b.mask), loss_mask: f32([b.B, b.T], toF32(b.lossMask)) };
}

/** Mean loss per target token over the eval rows, or null when there are none. */
export async function evalSft(roles: Roles, config: Config, data: StepData<SftExamples>): Promise<number | null> {
  const ex = data.eval;
  if (ex.seqs.n === 0) return null;
  const parts: { value: number | null; weight: number }[] = [];
  const it = new BatchIterator(ex.seqs.n, config.sft.evalBatchSize, config.seed, { shuffle: false });
  for (let idx = it.next(); idx; idx = it.next()) {
    const r = await roles.group('actor').call('eval_sft', { tensors: sftTensors(data, ex, idx, config.sft.maskPrompt) });
    // The group's metrics are a mean over replicas; weigh each replica's loss by its own token count.
    for (const rep of r.replies) parts.push({ value: figure(rep.metrics, 'loss'), weight: figure(rep.metrics, 'tokens') ?? 1 });
  }
  return weightedMean(parts);
}

export async function runSft(roles: Roles, config: Config, data: StepData<SftExamples>, output: string, hooks: DriverHooks = {}, ck: StepResume = {}): Promise<SftResult> {
  const { sft } = config;
  const replicas = roles.group('actor').size;
  const total = sftTotalSteps(config, data.train.seqs.n, replicas);
  if (total === 0) throw new Error(`sft: no training examples (data gave ${data.train.seqs.n} rows for the sft share)`);
  const settings = { lr: sft.lr, schedule: sft.schedule, warmup: sft.warmup };
  const microBatch = perReplica(roles, 'actor', sft.batchSize);
  const r = await runStepLoop<number | null>(roles, {
    name: 'sft', role: 'actor', saved: 'actor', total, evalEvery: sft.evalEvery, maxSkippedSteps: config.checks.maxSkippedSteps,
    it: new BatchIterator(data.train.seqs.n, sft.batchSize * sft.gradAccum, config.seed, { epochs: sft.epochs, minLast: replicas }),
    evaluate: data.eval.seqs.n > 0 ? () => evalSft(roles, config, data) : null,
    none: null,
    evalFigures: (loss): Figures => (loss === null ? {} : { eval_loss: loss, eval_ppl: Math.exp(loss) }),
    logKeys: ['loss', 'eval_loss', 'eval_ppl', 'lr'],
    lr: (step) => lrFor(settings, step, total),
    train: async (indices, lr) => {
      const t0 = performance.now();
      const r = await roles.group('actor').call('train_sft', {
        meta: { lr, weightDecay: sft.weightDecay, gradClip: config.actor.gradClip, microBatch } satisfies MetaOf<'actor', 'train_sft'>,
        tensors: sftTensors(data, data.train, indices, sft.maskPrompt),
      }, { allReplicas: true });
      const seconds = (performance.now() - t0) / 1000;
      const tokens = r.replies.reduce((s, rep) => s + (figure(rep.metrics, 'tokens') ?? 0), 0);
      return {
        loss: weightedMean(r.replies.map((rep) => ({ value: figure(rep.metrics, 'loss'), weight: figure(rep.metrics, 'tokens') ?? 1 }))),
        grad_norm: figure(r.metrics, 'grad_norm'),
        // A role skips an update whose gradients are not finite and says so.
        skipped: figure(r.metrics, 'skipped'),
        tokens,
        tokens_per_s: seconds > 0 ? tokens / seconds : null,
      };
    },
  }, output, hooks, ck);
  return { steps: r.steps, evalLossBefore: r.evalBefore, evalLossAfter: r.evalAfter, output };
}
