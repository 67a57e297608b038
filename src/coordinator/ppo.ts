// Step 3, PPO from the reward (ARCHITECTURE.md §3, DeepSpeed-Chat semantics).
// One PPO step:
//   1. for each of ppo.generationBatches prompt batches: actor `generate`;
//      answers of at most one token are dropped (PPO only);
//   2. in parallel: actor `logprobs` (old), reference `logprobs`, reward
//      `score`, critic `values`;
//   3. here: per-token KL-penalised rewards with the clipped score on the last
//      answer token, GAE advantages and returns (or GRPO/RLOO group
//      advantages without a critic);
//   4. ppo.ppoEpochs passes over the gathered experience in micro-batches of
//      ppo.trainBatchSize rows: actor `train_ppo` and critic `train_value` in
//      parallel, one optimizer step each per micro-batch;
//   5. metrics, and a checkpoint every ppo.saveEvery steps (models with their
//      optimizer state, plus the data position and schedule counters).
// A step is one round of the above, so ppo.maxSteps counts rounds of
// ppo.generationBatches prompt batches (equal to DeepSpeed-Chat's prompt
// batches with the default of 1). The learning rates follow each role's
// schedule over the estimated number of optimizer steps of the phase;
// generation seeds derive from (seed, step), so a resumed run samples what
// the uninterrupted one would have. ppo.overlap runs the overlap schedule
// (see runOverlapped).
import { join } from 'node:path';
import type { Config } from '../config/defaults.js';
import { BatchIterator, ppoBatch, type IteratorState } from '../data/batches.js';
import type { PpoPrompts, SftExamples } from '../data/examples.js';
import type { CallResult, Roles } from '../runtime/index.js';
import { Progress } from '../util/progress.js';
import { gae, groupAdvantages } from './advantages.js';
import { i32, type DriverHooks } from './driver.js';
import { microBatchRanges, PtxStream, trainingReplicas, trainOnExperience } from './ppo-train.js';
import { toAnswerLayout, trimGenerated, type Experience, type Trimmed } from './experience.js';
import { formatFigures, mean, type Figures } from './metrics.js';
import { answerLengths, answersToKeep, computeRewards, klStats } from './ppo-math.js';
import { meanFigures, RewardClient, type ScoreTextSource } from './reward-client.js';
import { copyTokenizerFiles, pruneCheckpoints, writeJsonAtomic } from './run-dir.js';
import { saveOn } from './step-checkpoints.js';
import { makeDirs } from '../util/disk.js';
import type { MetaOf } from '../roles/methods.js';

export interface PpoData {
  /** The prompts of the ppo share. */
  prompts: PpoPrompts;
  padId: number;
  /** The token that ends an answer (counted as an action), or null. */
  eosId: number | null;
  /** Plain-text blocks for the ptx loss (when ppo.ptxCoef > 0). */
  ptx?: SftExamples | null;
  /** Decodes the prompt and answer texts every `score` request carries (the actor's tokenizer). */
  texts: ScoreTextSource;
}

/** What a checkpoint records beside the models: enough to continue the same run. */
export interface PpoState {
  /** PPO steps done. */
  step: number;
  /** Position of the prompt iterator after those steps. */
  prompts: IteratorState;
  /** Position of the ptx block iterator, when the ptx loss is on. */
  ptx: IteratorState | null;
  /** Optimizer steps taken, by role: the position in each learning-rate schedule. */
  actorUpdates: number;
  criticUpdates: number;
}

/** What the caller sees of each step's experience (the demo decodes answers and adds its gold score). */
export interface ExperienceView {
  step: number;
  B: number;
  T: number;
  P: number;
  ids: Int32Array;
  mask: Int32Array;
  answerLens: Int32Array;
  scores: Float32Array;
}

export interface PpoHooks extends DriverHooks {
  /** Extra figures for a step's metrics line, from its experience. */
  onExperience?: (x: ExperienceView) => Figures | void;
}

export interface PpoOutputs {
  /** Final actor and critic folders. */
  actor: string;
  critic: string;
  /** Checkpoints go to <checkpoints>/step-N. */
  checkpoints: string;
  /** Folders the actor and critic started from (their tokenizer files are copied to the outputs). */
  actorSource: string | null;
  criticSource: string | null;
}

export interface PpoResume {
  /** A checkpoint folder written by this driver. */
  dir: string;
  state: PpoState;
}

export interface PpoResult {
  steps: number;
  /** Mean reward-model score of the first and of the last step. */
  firstReward: number | null;
  lastReward: number | null;
  /** KL to the reference at the last step (nats per answer). */
  lastKl: number | null;
  /** Mean wall time of the steps this run took. */
  meanStepSeconds: number | null;
  state: PpoState;
}

export const PPO_STATE_FILE = 'state.json';

/** The seed of generation batch g of step s: fixed by the run's seed, independent of restarts. */
export function generationSeed(seed: number, step: number, g: number): number {
  return (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b) ^ Math.imul(g + 1, 0xc2b2ae35)) >>> 0;
}

/** PPO steps in the phase: ppo.maxSteps, or as many as the prompts allow. */
export function ppoTotalSteps(config: Config, prompts: number): number {
  const { ppo } = config;
  const perEpoch = Math.floor(Math.ceil(prompts / ppo.promptBatchSize) / ppo.generationBatches);
  const all = perEpoch * ppo.epochs;
  return ppo.maxSteps > 0 ? Math.min(ppo.maxSteps, all) : all;
}

/**
 * Optimizer steps per PPO step when no answer is dropped: the length of the
 * learning-rate schedules. `minRows`: the training replicas (trainingReplicas()).
 */
export function updatesPerStep(config: Config, minRows: number): number {
  const { ppo } = config;
  const rows = ppo.promptBatchSize * (ppo.algorithm === 'ppo' ? 1 : ppo.groupSize);
  return ppo.ppoEpochs * ppo.generationBatches * microBatchRanges(rows, ppo.trainBatchSize, minRows).length;
}

function repeatRows(ids: Int32Array, mask: Int32Array, B: number, P: number, n: number): { ids: Int32Array; mask: Int32Array } {
  const outIds = new Int32Array(B * n * P), outMask = new Int32Array(B * n * P);
  for (let b = 0; b < B; b++) {
    for (let k = 0; k < n; k++) {
      outIds.set(ids.subarray(b * P, (b + 1) * P), (b * n + k) * P);
      outMask.set(mask.subarray(b * P, (b + 1) * P), (b * n + k) * P);
    }
  }
  return { ids: outIds, mask: outMask };
}

type StepFigures = Figures & { reward: number | null; kl: number | null };

interface GeneratedBatch {
  /** The kept rows, or null when every answer was dropped. */
  trimmed: Trimmed | null;
  dropped: number;
  genTokens: number;
}

/** A step's experience and how it was made. */
interface Collected {
  stepIndex: number;
  /** Prompt iterator position after the step's batches. */
  after: IteratorState;
  exps: Experience[];
  dropped: number;
  genTokens: number;
  timeGenerate: number;
  timeExperience: number;
}

export class PpoDriver {
  private readonly it: BatchIterator;
  private readonly ptx: PtxStream | null;
  private state: PpoState;
  private readonly total: number;
  private readonly grouped: boolean;
  private lastCheckpoint = -1;
  private readonly reward: RewardClient;

  constructor(private readonly roles: Roles, private readonly config: Config, private readonly data: PpoData,
    private readonly out: PpoOutputs, private readonly hooks: PpoHooks = {}) {
    const { ppo } = config;
    this.grouped = ppo.algorithm !== 'ppo';
    this.it = new BatchIterator(data.prompts.prompts.n, ppo.promptBatchSize, config.seed, { epochs: ppo.epochs });
    const wantPtx = ppo.ptxCoef > 0;
    if (wantPtx && !data.ptx) throw new Error('ppo.ptxCoef > 0 but no ptx data was loaded (data.ptxPaths)');
    this.ptx = wantPtx && data.ptx ? new PtxStream(data.ptx, data.padId, ppo.trainBatchSize, config.seed + 1) : null;
    this.total = ppoTotalSteps(config, data.prompts.prompts.n);
    // 200 ms, doubled: a scorer's transient failure (a busy judge, a restarting service) gets seconds, not minutes.
    this.reward = new RewardClient(roles, data.texts, { retries: config.reward.retries, backoffMs: 200 });
    this.state = { step: 0, prompts: this.it.state(), ptx: this.ptx?.state() ?? null, actorUpdates: 0, criticUpdates: 0 };
  }

  get totalSteps(): number {
    return this.total;
  }

  /** Loads a checkpoint's models (with optimizer state) and continues from its position. */
  async resume(from: PpoResume): Promise<void> {
    const s = from.state;
    this.it.restore(s.prompts);
    if (this.ptx && s.ptx) this.ptx.restore(s.ptx);
    const loads: Promise<unknown>[] = [this.roles.group('actor').broadcast('load', { meta: { dir: join(from.dir, 'actor'), optimizer: true } })];
    if (!this.grouped) loads.push(this.roles.group('critic').broadcast('load', { meta: { dir: join(from.dir, 'critic'), optimizer: true } }));
    await Promise.all(loads);
    this.state = { ...s, prompts: this.it.state(), ptx: this.ptx?.state() ?? null };
    this.hooks.log?.(`ppo: resumed from ${from.dir} after step ${s.step}`);
  }

  async run(): Promise<PpoResult> {
    const log = this.hooks.log ?? (() => {});
    const resumedAt = this.state.step;
    const bar = this.hooks.progress === false ? null
      : new Progress({ total: this.total - resumedAt, label: resumedAt ? `ppo (from step ${resumedAt})` : 'ppo', unit: 'steps' });
    let firstReward: number | null = null, lastReward: number | null = null, lastKl: number | null = null;
    const stepTimes: number[] = [];
    const onStep = async (figures: StepFigures) => {
      firstReward ??= figures.reward;
      lastReward = figures.reward;
      lastKl = figures.kl;
      if (typeof figures.time_step === 'number') stepTimes.push(figures.time_step);
      bar?.tick(1, `reward ${figures.reward?.toFixed(3) ?? '?'} kl ${figures.kl?.toFixed(3) ?? '?'}`);
      const every = this.config.ppo.saveEvery;
      if (every > 0 && this.state.step % every === 0 && this.state.step < this.total) await this.checkpoint();
    };
    if (this.config.ppo.overlap) await this.runOverlapped(onStep);
    else {
      while (this.state.step < this.total && !this.hooks.shouldStop?.()) {
        const figures = await this.step();
        if (figures === null) break;
        await onStep(figures);
      }
    }
    bar?.finish();
    // Stopped early (Ctrl-C): a checkpoint here lets --resume continue from this very step.
    if (this.state.step < this.total && this.state.step > resumedAt && this.lastCheckpoint !== this.state.step && this.hooks.shouldStop?.()) await this.checkpoint();
    await this.saveFinal();
    log(`ppo: ${this.state.step} steps; actor saved to ${this.out.actor}`);
    return { steps: this.state.step, firstReward, lastReward, lastKl, meanStepSeconds: mean(stepTimes), state: { ...this.state } };
  }

  /** One PPO step, on-policy; null when the prompts ran out before a full step. */
  async step(): Promise<StepFigures | null> {
    const t0 = performance.now();
    const c = await this.collect(this.state.step, Promise.resolve());
    if (!c) return null;
    const tTrain = performance.now();
    const train = c.exps.length ? await this.train(c.exps) : null;
    return this.finish(c, train, (performance.now() - tTrain) / 1000, (performance.now() - t0) / 1000);
  }

  /**
   * The overlap schedule: step k+1's prompts are generated while step k
   * trains, with the weights from before step k's update (one step
   * off-policy). The actor serves requests in arrival order, so its
   * `generate` calls are sent before `train_ppo`; the actor's old log-probs
   * and the critic's values of step k+1 wait for step k's updates (so the
   * PPO ratio starts at 1 and GAE uses the trained critic), while the
   * reference and reward work on step k+1 as soon as its answers exist.
   * A checkpoint records the data position before the prefetched batch, so
   * a resumed run generates it again (with the trained weights).
   */
  private async runOverlapped(onStep: (f: StepFigures) => Promise<void>): Promise<void> {
    let last = performance.now();
    let cur = this.state.step < this.total ? await this.collect(this.state.step, Promise.resolve()) : null;
    while (cur && !this.hooks.shouldStop?.()) {
      const prefetch = this.state.step + 1 < this.total;
      let trained!: () => void;
      const gate = new Promise<void>((r) => (trained = r));
      const next = prefetch ? this.collect(this.state.step + 1, gate) : null;
      // A failed prefetch surfaces when it is awaited; until then it must not count as unhandled.
      next?.catch(() => {});
      const tTrain = performance.now();
      let train: Figures | null;
      try {
        train = cur.exps.length ? await this.train(cur.exps) : null;
      } finally {
        trained();
      }
      const now = performance.now();
      const figures = this.finish(cur, train, (now - tTrain) / 1000, (now - last) / 1000);
      last = now;
      await onStep(figures);
      cur = next && this.state.step < this.total ? await next : null;
    }
  }

  /**
   * Generates the step's generationBatches prompt batches (all generate calls
   * sent at once: the actor serves them in order) and makes their experience;
   * the actor's log-probs and the critic's values wait for `gate`.
   */
  private async collect(stepIndex: number, gate: Promise<void>): Promise<Collected | null> {
    const { ppo } = this.config;
    const batches: number[][] = [];
    for (let g = 0; g < ppo.generationBatches; g++) {
      const indices = this.it.next();
      if (!indices) return null;
      batches.push(indices);
    }
    const after = this.it.state();
    const tg = performance.now();
    const gens = await Promise.all(batches.map((indices, g) => this.generateBatch(indices, generationSeed(this.config.seed, stepIndex, g), stepIndex + 1)));
    const te = performance.now();
    const exps = await Promise.all(gens.map((x) => (x.trimmed ? this.experience(x.trimmed, gate, stepIndex + 1) : Promise.resolve(null))));
    return {
      stepIndex, after,
      exps: exps.filter((e): e is Experience => e !== null),
      dropped: gens.reduce((a, x) => a + x.dropped, 0),
      genTokens: gens.reduce((a, x) => a + x.genTokens, 0),
      timeGenerate: (te - tg) / 1000,
      timeExperience: (performance.now() - te) / 1000,
    };
  }

  /** Metrics of a finished step; advances the state to it. */
  private finish(c: Collected, train: Figures | null, timeTrain: number, seconds: number): StepFigures {
    const { exps } = c;
    this.state = { ...this.state, step: c.stepIndex + 1, prompts: c.after, ptx: this.ptx?.state() ?? null };
    const all = (f: (e: Experience) => number[]) => exps.flatMap(f);
    const scores = all((e) => Array.from(e.scores));
    const kls = exps.map((e) => ({ kl: klStats(e, e.logprobs, e.refLogprobs), B: e.B }));
    const rows = scores.length;
    const seqTokens = exps.reduce((s, e) => s + e.B * e.T, 0);
    const figures: StepFigures = {
      reward: mean(scores),
      // kl: the never-negative k3 estimate (ppo-math.ts); kl_sampled: the plain one the penalty uses, noisy around it.
      kl: rows ? kls.reduce((s, k) => s + k.kl.klK3PerSequence * k.B, 0) / rows : null,
      kl_sampled: rows ? kls.reduce((s, k) => s + k.kl.klPerSequence * k.B, 0) / rows : null,
      kl_per_token: rows ? mean(kls.map((k) => k.kl.klPerToken)) : null,
      answer_len: mean(all((e) => Array.from(e.answerLens))),
      return: mean(all((e) => returnsPerSequence(e))),
      advantage: mean(all((e) => maskedValues(e, e.advantages))),
      ...(!this.grouped ? { value: mean(all((e) => maskedValues(e, e.values))) } : {}),
      samples: rows,
      dropped: c.dropped,
      ...(train ?? {}),
      ...meanFigures(exps.map((e) => e.scoreFigures)),
      time_generate: c.timeGenerate,
      time_experience: c.timeExperience,
      time_train: timeTrain,
      time_step: seconds,
      tokens_per_s: seconds > 0 ? seqTokens / seconds : null,
      gen_tokens_per_s: c.timeGenerate > 0 ? c.genTokens / c.timeGenerate : null,
      samples_per_s: seconds > 0 ? rows / seconds : null,
      data_epoch: c.after.epoch,
      data_batch: c.after.batch,
    };
    for (const e of exps) {
      const extra = this.hooks.onExperience?.({ step: c.stepIndex + 1, B: e.B, T: e.T, P: e.P, ids: e.ids, mask: e.mask, answerLens: e.answerLens, scores: e.scores });
      if (extra) Object.assign(figures, extra);
    }
    if (exps.length === 0) this.hooks.log?.(`ppo step ${c.stepIndex + 1}: every answer had at most one token and was dropped; no update`);
    this.hooks.metrics?.write('ppo', c.stepIndex + 1, figures);
    this.hooks.log?.(`ppo step ${c.stepIndex + 1}/${this.total}: ${formatFigures(figures, ['reward', 'kl', 'policy_loss', 'value_loss', 'clip_frac', 'answer_len', 'time_step'])}`);
    return figures;
  }

  /** `step`: the 1-based step it belongs to, named in the runtime's timeout and failure messages. */
  private async generateBatch(indices: number[], seed: number, step: number): Promise<GeneratedBatch> {
    const { ppo } = this.config;
    const { padId, eosId } = this.data;
    const batch = ppoBatch(this.data.prompts, indices, padId);
    const P = batch.T;
    const n = this.grouped ? ppo.groupSize : 1;
    const prompts = n > 1 ? repeatRows(batch.ids, batch.mask, batch.B, P, n) : { ids: batch.ids, mask: batch.mask };
    const B0 = batch.B * n;
    const gen = await this.roles.group('actor').call('generate', {
      meta: { maxNewTokens: ppo.maxNewTokens, temperature: ppo.temperature, topK: ppo.topK, topP: ppo.topP, seed } satisfies MetaOf<'actor', 'generate'>,
      tensors: { prompt_ids: i32([B0, P], prompts.ids), prompt_mask: i32([B0, P], prompts.mask) },
    }, { step });
    const ids = gen.tensors.ids;
    if (!ids || ids.dtype !== 'i32' || ids.shape.length !== 2 || ids.shape[0] !== B0 || ids.shape[1] < P)
      throw new Error(`ppo: actor.generate returned ids ${ids ? `${ids.dtype}[${ids.shape}]` : '(missing)'}, expected i32[${B0}, >=${P}]`);
    const T0 = ids.shape[1];
    const lens = answerLengths(ids.data as Int32Array, B0, T0, P, eosId, padId);
    const genTokens = lens.reduce((s, x) => s + x, 0);
    // Group algorithms keep every row: their advantages compare the answers of one prompt.
    const keep = this.grouped ? Array.from({ length: B0 }, (_, i) => i) : answersToKeep(lens);
    const trimmed = keep.length ? trimGenerated(ids.data as Int32Array, T0, prompts.mask, P, lens, keep, padId) : null;
    if (!trimmed || trimmed.A === 0) return { trimmed: null, dropped: B0, genTokens };
    return { trimmed, dropped: B0 - keep.length, genTokens };
  }

  /** The four forwards of one generated batch (actor and critic after `gate`), then rewards and advantages. */
  private async experience(x: Trimmed, gate: Promise<void>, step: number): Promise<Experience> {
    const { ppo } = this.config;
    const P = x.P;
    const seq = { ids: i32([x.B, x.T], x.ids), mask: i32([x.B, x.T], x.mask) };
    const afterGate = (f: () => Promise<CallResult>) => gate.then(f);
    const calls: Promise<CallResult>[] = [
      afterGate(() => this.roles.group('actor').call('logprobs', { tensors: seq }, { step })),
      this.roles.group('reference').call('logprobs', { tensors: seq }, { step }),
    ];
    const scored = this.reward.score(x, step);
    if (!this.grouped) calls.push(afterGate(() => this.roles.group('critic').call('values', { tensors: seq }, { step })));
    const [[old, ref, val], { scores, figures: scoreFigures }] = await Promise.all([Promise.all(calls), scored]);
    const perToken = (r: CallResult, role: string, name: string) => {
      const t = r.tensors[name];
      if (!t || t.dtype !== 'f32') throw new Error(`ppo: ${role} reply lacks f32 tensor '${name}'`);
      if (t.shape[0] !== x.B || t.shape[1] !== x.T - 1) throw new Error(`ppo: ${role} '${name}' has shape [${t.shape}], expected [${x.B}, ${x.T - 1}] (B, T-1)`);
      return toAnswerLayout(`${role}.${name}`, t.data as Float32Array, x);
    };
    const logprobs = perToken(old, 'actor', 'logprobs');
    const refLogprobs = perToken(ref, 'reference', 'logprobs');
    const values = val ? perToken(val, 'critic', 'values') : new Float32Array(x.B * x.A);

    const base = { B: x.B, A: x.A, answerLens: x.answerLens };
    let rewards: Float32Array | null = null;
    let adv: { advantages: Float32Array; returns: Float32Array };
    if (this.grouped) {
      adv = groupAdvantages({ ...base, algorithm: ppo.algorithm as 'grpo' | 'rloo', groupSize: ppo.groupSize, scores, logprobs, refLogprobs, klCtl: ppo.klCtl, clipRewardValue: ppo.clipRewardValue });
    } else {
      rewards = computeRewards({ ...base, logprobs, refLogprobs, scores, klCtl: ppo.klCtl, clipRewardValue: ppo.clipRewardValue });
      adv = gae({ ...base, rewards, values, gamma: ppo.gamma, lambda: ppo.lambda });
    }
    return { ...x, logprobs, refLogprobs, values, scores, scoreFigures, rewards, advantages: adv.advantages, returns: adv.returns };
  }

  private train(exps: Experience[]): Promise<Figures> {
    return trainOnExperience({ roles: this.roles, config: this.config, grouped: this.grouped, totalUpdates: updatesPerStep(this.config, trainingReplicas(this.roles, this.grouped)) * this.total, ptx: this.ptx }, exps, this.state);
  }

  /** Saves both trained models with their optimizer state and the run position into <checkpoints>/step-N. */
  async checkpoint(): Promise<string> {
    const dir = join(this.out.checkpoints, `step-${this.state.step}`);
    // Errors name the role, the path and the real errno (ENOSPC, EROFS), never a bare stack.
    makeDirs(dir, 'ppo checkpoint');
    const saves = [saveOn(this.roles, 'actor', join(dir, 'actor'), true)];
    if (!this.grouped) saves.push(saveOn(this.roles, 'critic', join(dir, 'critic'), true));
    await Promise.all(saves);
    // Written last: a checkpoint folder without it is incomplete and is never resumed from.
    writeJsonAtomic(join(dir, PPO_STATE_FILE), this.state);
    this.lastCheckpoint = this.state.step;
    this.hooks.log?.(`ppo: checkpoint ${dir}`);
    pruneCheckpoints(this.out.checkpoints, PPO_STATE_FILE, this.config.keepCheckpoints);
    return dir;
  }

  private async saveFinal(): Promise<void> {
    const saves = [saveOn(this.roles, 'actor', this.out.actor, false)];
    if (!this.grouped) saves.push(saveOn(this.roles, 'critic', this.out.critic, false));
    await Promise.all(saves);
    if (this.out.actorSource) copyTokenizerFiles(this.out.actorSource, this.out.actor);
    if (!this.grouped && this.out.criticSource) copyTokenizerFiles(this.out.criticSource, this.out.critic);
  }

  get position(): PpoState {
    return { ...this.state };
  }
}

/** Each sequence's return: its own entry for group algorithms, the first answer token's return for PPO. */
function returnsPerSequence(e: Experience): number[] {
  if (e.returns.length === e.B) return Array.from(e.returns);
  return Array.from({ length: e.B }, (_, b) => e.returns[b * e.A]);
}

function maskedValues(e: Experience, arr: Float32Array): number[] {
  const out: number[] = [];
  for (let b = 0; b < e.B; b++) for (let j = 0; j < e.answerLens[b]; j++) out.push(arr[b * e.A + j]);
  return out;
}

/** Runs the PPO phase: resume from a checkpoint when given, step to the end, save the final models. */
export async function runPpo(roles: Roles, config: Config, data: PpoData, out: PpoOutputs, hooks: PpoHooks = {}, resume?: PpoResume): Promise<PpoResult> {
  const d = new PpoDriver(roles, config, data, out, hooks);
  if (d.totalSteps === 0) throw new Error(`ppo: no full step of prompts (${data.prompts.prompts.n} prompts for promptBatchSize ${config.ppo.promptBatchSize} x generationBatches ${config.ppo.generationBatches})`);
  const { maxSteps, epochs } = config.ppo;
  if (maxSteps > d.totalSteps) hooks.log?.(`ppo: ppo.maxSteps = ${maxSteps}, but ${data.prompts.prompts.n} prompts make ${d.totalSteps} steps in ${epochs} epoch(s); running ${d.totalSteps} (raise ppo.epochs for more)`);
  if (resume) await d.resume(resume);
  return d.run();
}
