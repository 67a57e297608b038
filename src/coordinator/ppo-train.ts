// The training half of a PPO step: ppo.ppoEpochs passes over the gathered
// experience in micro-batches of ppo.trainBatchSize rows, each one optimizer
// step of the actor (`train_ppo`, with ptx rows when the ptx loss is on) and,
// in parallel, of the critic (`train_value`), at the learning rates of their
// schedules. Per-token arrays go to the roles in their [B, T-1] layout.
import type { Config } from '../config/defaults.js';
import { BatchIterator, type IteratorState } from '../data/batches.js';
import { sequence, type SftExamples } from '../data/examples.js';
import type { CallResult, Roles, WireTensor } from '../runtime/index.js';
import { f32, figure, i32, lrFor, perReplica } from './driver.js';
import { actionMask, experienceRows, toRoleLayout, type Experience } from './experience.js';
import { mean, type Figures } from './metrics.js';
import type { MetaOf } from '../roles/methods.js';
import { SkippedSteps } from './skipped-steps.js';

/** Optimizer steps taken so far: the position in each learning-rate schedule (advanced here). */
export interface UpdateCounters {
  actorUpdates: number;
  criticUpdates: number;
  /** PPO steps done before this one: names the step in the runtime's timeout and failure messages. */
  step?: number;
}

export interface TrainContext {
  roles: Roles;
  config: Config;
  /** GRPO/RLOO: no critic. */
  grouped: boolean;
  /** Length of the learning-rate schedules, in optimizer steps. */
  totalUpdates: number;
  ptx: PtxStream | null;
}

/**
 * Plain-text blocks for the ptx loss, drawn in seeded order and cycled
 * without end; its position is saved with PPO checkpoints.
 */
export class PtxStream {
  private readonly it: BatchIterator;

  constructor(private readonly blocks: SftExamples, private readonly padId: number, batchRows: number, seed: number) {
    this.it = new BatchIterator(blocks.seqs.n, batchRows, seed, { epochs: Number.MAX_SAFE_INTEGER });
  }

  /** The next `rows` blocks (as many rows as the micro-batch they go with, so a group shards both alike). */
  next(rows: number): { ptx_ids: WireTensor; ptx_mask: WireTensor } {
    const idx = this.it.next()!.slice(0, rows);
    while (idx.length < rows) idx.push(...this.it.next()!.slice(0, rows - idx.length));
    const seqs = idx.map((i) => sequence(this.blocks.seqs, i));
    const L = Math.max(...seqs.map((s) => s.length));
    const ids = new Int32Array(rows * L).fill(this.padId), mask = new Int32Array(rows * L);
    seqs.forEach((s, b) => {
      ids.set(s, b * L);
      mask.fill(1, b * L, b * L + s.length);
    });
    return { ptx_ids: i32([rows, L], ids), ptx_mask: i32([rows, L], mask) };
  }

  state(): IteratorState {
    return this.it.state();
  }

  restore(s: IteratorState): void {
    this.it.restore(s);
  }
}

/**
 * The [from, to) rows of the training micro-batches over B experience rows:
 * `size` rows each, except that a last chunk with fewer than `minRows` rows
 * (the replicas of a training group, which all must get a row) joins the one
 * before it.
 */
export function microBatchRanges(B: number, size: number, minRows: number): [number, number][] {
  const out: [number, number][] = [];
  for (let from = 0; from < B; from += size) out.push([from, Math.min(B, from + size)]);
  const last = out[out.length - 1];
  if (out.length > 1 && last[1] - last[0] < minRows) {
    out.pop();
    out[out.length - 1][1] = B;
  }
  return out;
}

/** The most replicas of a group that a PPO update calls: the actor's, and the critic's unless `grouped` (no critic). */
export function trainingReplicas(roles: Roles, grouped: boolean): number {
  return Math.max(roles.group('actor').size, grouped ? 1 : roles.group('critic').size);
}

/**
 * The non-finite updates in a row of each trained role, per run: keyed by the
 * run's roles, which live as long as the run (the counters object is replaced
 * at every step), so that a run of skips spanning two PPO steps is counted whole.
 */
const skipsOf = new WeakMap<Roles, { actor: SkippedSteps; critic: SkippedSteps }>();

/** Trains on a step's experience; returns the step's training figures and advances `counters`. */
export async function trainOnExperience(ctx: TrainContext, exps: Experience[], counters: UpdateCounters): Promise<Figures> {
  const { roles, config, grouped } = ctx;
  let skips = skipsOf.get(roles);
  if (!skips) {
    const max = config.checks.maxSkippedSteps;
    skips = { actor: new SkippedSteps('ppo', 'actor', max), critic: new SkippedSteps('ppo', 'critic', max) };
    skipsOf.set(roles, skips);
  }
  // The PPO step being trained (1-based), when the counters are the run's state (which holds the steps done).
  const done = (counters as UpdateCounters & { step?: unknown }).step;
  const stepName = typeof done === 'number' ? `step ${done + 1}, ` : '';
  const { ppo, actor, critic } = config;
  const upd = ctx.totalUpdates;
  const actorMetrics: Record<string, number>[] = [];
  const criticMetrics: Record<string, number>[] = [];
  const actorLrs: number[] = [], criticLrs: number[] = [];
  const minRows = trainingReplicas(roles, grouped);
  for (let epoch = 0; epoch < ppo.ppoEpochs; epoch++) {
    for (const e of exps) {
      for (const [from, to] of microBatchRanges(e.B, ppo.trainBatchSize, minRows)) {
        const mb = experienceRows(e, from, to);
        const seq = { ids: i32([mb.B, mb.T], mb.ids), mask: i32([mb.B, mb.T], mb.mask) };
        const amask = f32([mb.B, mb.T - 1], actionMask(mb));
        const actorLr = lrFor(actor, counters.actorUpdates, upd);
        const ptx = ctx.ptx?.next(mb.B) ?? null;
        const calls: Promise<CallResult>[] = [roles.group('actor').call('train_ppo', {
          meta: { lr: actorLr, weightDecay: actor.weightDecay, gradClip: actor.gradClip, clipRange: ppo.clipRange, microBatch: perReplica(roles, 'actor', mb.B), ptxCoef: ppo.ptxCoef } satisfies MetaOf<'actor', 'train_ppo'>,
          tensors: {
            ...seq,
            old_logprobs: f32([mb.B, mb.T - 1], toRoleLayout(mb.logprobs, mb)),
            advantages: f32([mb.B, mb.T - 1], toRoleLayout(mb.advantages, mb)),
            action_mask: amask,
            ...(ptx ?? {}),
          },
        }, { allReplicas: true, step: (counters.step ?? 0) + 1 })];
        actorLrs.push(actorLr);
        if (!grouped) {
          const criticLr = lrFor(critic, counters.criticUpdates, upd);
          criticLrs.push(criticLr);
          calls.push(roles.group('critic').call('train_value', {
            meta: { lr: criticLr, weightDecay: critic.weightDecay, gradClip: critic.gradClip, clipRangeValue: ppo.clipRangeValue, microBatch: perReplica(roles, 'critic', mb.B) } satisfies MetaOf<'critic', 'train_value'>,
            tensors: {
              ...seq,
              old_values: f32([mb.B, mb.T - 1], toRoleLayout(mb.values, mb)),
              returns: f32([mb.B, mb.T - 1], toRoleLayout(mb.returns, mb)),
              action_mask: amask,
            },
          }, { allReplicas: true, step: (counters.step ?? 0) + 1 }));
        }
        const [a, c] = await Promise.all(calls);
        actorMetrics.push(a.metrics);
        counters.actorUpdates++;
        skips.actor.record(`${stepName}actor update ${counters.actorUpdates}`, (figure(a.metrics, 'skipped') ?? 0) > 0,
          { policy_loss: figure(a.metrics, 'policy_loss'), ...(ppo.ptxCoef > 0 ? { ptx_loss: figure(a.metrics, 'ptx_loss') } : {}) });
        if (c) {
          criticMetrics.push(c.metrics);
          counters.criticUpdates++;
          skips.critic.record(`${stepName}critic update ${counters.criticUpdates}`, (figure(c.metrics, 'skipped') ?? 0) > 0, { value_loss: figure(c.metrics, 'value_loss') });
        }
      }
    }
  }
  const avg = (ms: Record<string, number>[], k: string) => mean(ms.map((m) => figure(m, k)).filter((v): v is number => v !== null));
  const figures: Figures = {
    policy_loss: avg(actorMetrics, 'policy_loss'),
    clip_frac: avg(actorMetrics, 'clip_frac'),
    approx_kl: avg(actorMetrics, 'approx_kl'),
    actor_grad_norm: avg(actorMetrics, 'grad_norm'),
    // Share of updates a role skipped for non-finite gradients.
    skipped_updates: avg(actorMetrics, 'skipped'),
    lr_actor: mean(actorLrs),
    updates: actorMetrics.length,
  };
  if (ppo.ptxCoef > 0) figures.ptx_loss = avg(actorMetrics, 'ptx_loss');
  if (!grouped) {
    figures.value_loss = avg(criticMetrics, 'value_loss');
    figures.value_clip_frac = avg(criticMetrics, 'vf_clip_frac');
    figures.critic_grad_norm = avg(criticMetrics, 'grad_norm');
    figures.lr_critic = mean(criticLrs);
  }
  return figures;
}
