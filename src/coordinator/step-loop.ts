// The loop the one-model steps share (SFT, RM, DPO): a held-out evaluation
// before training (or the position of the checkpoint a resumed run continues
// from), then optimizer steps on the batch iterator with the schedule's lr,
// evaluations at epoch ends or every `evalEvery` steps and at the last, a
// metrics line and a progress tick per step, checkpoints by their cadence and
// at Ctrl-C, and the final model saved by replica 0 of the trained group.
// Each driver says only how one step trains and how its evaluation reads.
import { batchesPerEpoch, type BatchIterator } from '../data/batches.js';
import type { Roles } from '../runtime/index.js';
import { Progress } from '../util/progress.js';
import type { DriverHooks } from './driver.js';
import { formatFigures, type Figures } from './metrics.js';
import { SkippedSteps } from './skipped-steps.js';
import { saveOn, startPosition, type StepResume } from './step-checkpoints.js';

/**
 * Optimizer steps of a one-model step over `rows` examples or pairs and
 * `replicas` replicas: batches of batchSize x gradAccum for `epochs` (an
 * epoch's last batch with fewer rows than replicas joins the one before),
 * capped by maxSteps when it is set.
 */
export function totalSteps(s: { batchSize: number; gradAccum: number; epochs: number; maxSteps: number }, rows: number, replicas: number): number {
  const all = batchesPerEpoch(rows, s.batchSize * s.gradAccum, { minLast: replicas }) * s.epochs;
  return s.maxSteps > 0 ? Math.min(s.maxSteps, all) : all;
}

export interface StepLoop<E> {
  name: 'sft' | 'rm' | 'dpo';
  /** The trained group; its replica 0 saves the final model. */
  role: 'actor' | 'reward';
  /** What the saved model is, for the last log line ('actor', 'reward model'). */
  saved: string;
  it: BatchIterator;
  total: number;
  /** 0: evaluate at each epoch's end. */
  evalEvery: number;
  /** The held-out evaluation; null when the step has no held-out rows (then `none` stands for it). */
  evaluate: (() => Promise<E>) | null;
  none: E;
  /** The eval_* figures of an evaluation, for the metrics and the log. */
  evalFigures: (e: E) => Figures;
  /** The figures named in the line logged at each evaluation. */
  logKeys: string[];
  /** The learning rate of optimizer step `step` (0-based). */
  lr: (step: number) => number;
  /** One optimizer step on these rows: its figures (the loop adds lr and epoch), with `loss` and `skipped` (the share of replicas that skipped it). */
  train: (indices: number[], lr: number) => Promise<Figures>;
  /** checks.maxSkippedSteps: non-finite steps in a row that stop training (0: never). */
  maxSkippedSteps: number;
}

export interface StepLoopResult<E> {
  steps: number;
  evalBefore: E;
  evalAfter: E;
}

export async function runStepLoop<E>(roles: Roles, s: StepLoop<E>, output: string, hooks: DriverHooks, ck: StepResume): Promise<StepLoopResult<E>> {
  const log = hooks.log ?? (() => {});
  const { name, it, total } = s;
  const start = await startPosition(roles, ck, it, name, log, async () => {
    if (!s.evaluate) return s.none;
    const e = await s.evaluate();
    hooks.metrics?.write(name, 0, s.evalFigures(e));
    log(`${name}: before training ${formatFigures(s.evalFigures(e))}`);
    return e;
  });
  const evalBefore = start.evalBefore;
  let step = start.step, evalAfter = evalBefore;
  const resumedAt = step;
  const position = () => ({ step, batches: it.state(), evalBefore });
  const skips = new SkippedSteps(name, s.role, s.maxSkippedSteps);
  const bar = hooks.progress === false ? null : new Progress({ total: total - resumedAt, label: resumedAt ? `${name} (from step ${resumedAt})` : name, unit: 'steps' });
  while (step < total && !hooks.shouldStop?.()) {
    const indices = it.next();
    if (!indices) break;
    const lr = s.lr(step);
    const figures: Figures = await s.train(indices, lr);
    step++;
    // Written first, so that metrics.jsonl shows the steps that stopped the run.
    const check = () => skips.record(`step ${step}`, (figures.skipped ?? 0) > 0, { loss: figures.loss });
    figures.lr = lr;
    figures.epoch = it.state().epoch;
    const epochEnd = it.state().batch >= it.batchesPerEpoch;
    if (s.evaluate && ((s.evalEvery > 0 && step % s.evalEvery === 0) || (s.evalEvery === 0 && epochEnd) || step === total)) {
      evalAfter = await s.evaluate();
      Object.assign(figures, s.evalFigures(evalAfter));
      log(`${name} step ${step}/${total}: ${formatFigures(figures, s.logKeys)}`);
    }
    hooks.metrics?.write(name, step, figures);
    check();
    bar?.tick(1, `loss ${figures.loss?.toFixed(4) ?? '?'}`);
    await ck.checkpoints?.afterStep(roles, position(), total);
  }
  bar?.finish();
  if (step < total && hooks.shouldStop?.()) await ck.checkpoints?.onStop(roles, position(), resumedAt);
  await saveOn(roles, s.role, output, false);
  log(`${name}: ${step} steps; ${s.saved} saved to ${output}`);
  return { steps: step, evalBefore, evalAfter };
}
