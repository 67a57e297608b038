// Step 1, supervised fine-tuning, driven from the coordinator: batches of
// prompt + chosen answer go to the actor group's `train_sft` (one optimizer
// step per call: sft.batchSize x sft.gradAccum rows, each replica taking its
// share in micro-batches), with the step's learning rate from the schedule;
// perplexity on the held-out rows before training and at each evaluation
// point; the final actor saved as a Hugging Face folder.
import type { Config } from '../config/defaults.js';
import type { StepData } from '../data/datasets.js';
import { BatchIterator, batchesPerEpoch, sftBatch } from '../data/batches.js';
import type { SftExamples } from '../data/examples.js';
import type { Roles } from '../runtime/index.js';
import { Progress } from '../util/progress.js';
import { f32, figure, i32, lrFor, perReplica, toF32, weightedMean, type DriverHooks } from './driver.js';
import { formatFigures, type Figures } from './metrics.js';
import { startPosition, type StepResume } from './step-checkpoints.js';

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
  const { sft } = config;
  const perEpoch = batchesPerEpoch(examples, sft.batchSize * sft.gradAccum, { minLast: replicas });
  const all = perEpoch * sft.epochs;
  return sft.maxSteps > 0 ? Math.min(sft.maxSteps, all) : all;
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
  const log = hooks.log ?? (() => {});
  const rowsPerStep = sft.batchSize * sft.gradAccum;
  const replicas = roles.group('actor').size;
  const total = sftTotalSteps(config, data.train.seqs.n, replicas);
  if (total === 0) throw new Error(`sft: no training examples (data gave ${data.train.seqs.n} rows for the sft share)`);
  const it = new BatchIterator(data.train.seqs.n, rowsPerStep, config.seed, { epochs: sft.epochs, minLast: replicas });
  const settings = { lr: sft.lr, schedule: sft.schedule, warmup: sft.warmup };
  const microBatch = perReplica(roles, 'actor', sft.batchSize);

  const start = await startPosition(roles, ck, it, 'sft', log, async () => {
    const loss = await evalSft(roles, config, data);
    if (loss !== null) {
      hooks.metrics?.write('sft', 0, { eval_loss: loss, eval_ppl: Math.exp(loss) });
      log(`sft: eval loss before training ${loss.toFixed(4)} (ppl ${Math.exp(loss).toFixed(2)})`);
    }
    return loss;
  });
  const evalLossBefore = start.evalBefore;
  let step = start.step;
  const resumedAt = step;
  const position = () => ({ step, batches: it.state(), evalBefore: evalLossBefore });
  let evalLossAfter = evalLossBefore;
  const bar = hooks.progress === false ? null : new Progress({ total: total - resumedAt, label: resumedAt ? `sft (from step ${resumedAt})` : 'sft', unit: 'steps' });
  while (step < total && !hooks.shouldStop?.()) {
    const indices = it.next();
    if (!indices) break;
    const lr = lrFor(settings, step, total);
    const tensors = sftTensors(data, data.train, indices, sft.maskPrompt);
    const t0 = performance.now();
    const r = await roles.group('actor').call('train_sft', {
      meta: { lr, weightDecay: sft.weightDecay, gradClip: config.actor.gradClip, microBatch },
      tensors,
    }, { allReplicas: true });
    const seconds = (performance.now() - t0) / 1000;
    step++;
    const tokens = r.replies.reduce((s, rep) => s + (figure(rep.metrics, 'tokens') ?? 0), 0);
    const figures: Figures = {
      loss: weightedMean(r.replies.map((rep) => ({ value: figure(rep.metrics, 'loss'), weight: figure(rep.metrics, 'tokens') ?? 1 }))),
      grad_norm: figure(r.metrics, 'grad_norm'),
      // A role skips an update whose gradients are not finite and says so.
      skipped: figure(r.metrics, 'skipped'),
      lr,
      tokens,
      tokens_per_s: seconds > 0 ? tokens / seconds : null,
      epoch: it.state().epoch,
    };
    const epochEnd = it.state().batch >= it.batchesPerEpoch;
    if ((sft.evalEvery > 0 && step % sft.evalEvery === 0) || (sft.evalEvery === 0 && epochEnd) || step === total) {
      evalLossAfter = await evalSft(roles, config, data);
      if (evalLossAfter !== null) {
        figures.eval_loss = evalLossAfter;
        figures.eval_ppl = Math.exp(evalLossAfter);
      }
    }
    hooks.metrics?.write('sft', step, figures);
    bar?.tick(1, `loss ${figures.loss?.toFixed(4) ?? '?'}`);
    if (figures.eval_loss !== undefined) log(`sft step ${step}/${total}: ${formatFigures(figures, ['loss', 'eval_loss', 'eval_ppl', 'lr'])}`);
    await ck.checkpoints?.afterStep(roles, position(), total);
  }
  bar?.finish();
  if (step < total && hooks.shouldStop?.()) await ck.checkpoints?.onStop(roles, position(), resumedAt);
  await roles.role('actor', 0).call('save', { meta: { dir: output, optimizer: false } });
  log(`sft: ${step} steps; actor saved to ${output}`);
  return { steps: step, evalLossBefore, evalLossAfter, output };
}
