// Learning-rate schedules with linear warmup, as transformers' get_scheduler:
// the factor at step s (0-based count of optimizer steps taken) is s/warmup
// during warmup, then constant 1, linear decay to 0 at `total`, or a cosine
// half-cycle to 0 at `total`. LRScheduler applies it like torch's LambdaLR:
// the factor for step 0 at construction, the next one after every step().
import type { AdamW } from './adamw.js';

export type ScheduleName = 'constant' | 'linear' | 'cosine';

export interface ScheduleOptions {
  schedule: ScheduleName;
  /** Warmup steps (0: none). */
  warmup: number;
  /** Total optimizer steps (linear and cosine reach 0 there). */
  total: number;
}

function check(o: ScheduleOptions): void {
  if (!['constant', 'linear', 'cosine'].includes(o.schedule)) throw new Error(`schedule: unknown schedule ${JSON.stringify(o.schedule)} (constant, linear, cosine)`);
  if (!(Number.isInteger(o.warmup) && o.warmup >= 0)) throw new Error(`schedule: warmup must be an integer >= 0, got ${o.warmup}`);
  if (o.schedule !== 'constant' && !(Number.isInteger(o.total) && o.total >= o.warmup)) {
    throw new Error(`schedule: total must be an integer >= warmup (${o.warmup}), got ${o.total}`);
  }
}

/** Multiplier of the base learning rate at `step`. */
export function lrFactor(step: number, o: ScheduleOptions): number {
  check(o);
  if (step < o.warmup) return step / Math.max(1, o.warmup);
  if (o.schedule === 'constant') return 1;
  const progressSteps = o.total - step;
  const span = Math.max(1, o.total - o.warmup);
  if (o.schedule === 'linear') return Math.max(0, progressSteps / span);
  const progress = (step - o.warmup) / span;
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** The learning rate at `step` for a base rate `lr`. */
export function lrAt(step: number, o: ScheduleOptions & { lr: number }): number {
  return o.lr * lrFactor(step, o);
}

export class LRScheduler {
  private step_ = 0;

  constructor(private readonly opt: AdamW, private readonly options: ScheduleOptions) {
    check(options);
    this.apply();
  }

  /** Call after each optimizer step. */
  step(): void {
    this.step_++;
    this.apply();
  }

  /** Optimizer steps taken so far. */
  get stepCount(): number {
    return this.step_;
  }

  /** The current rate of each group. */
  get lastLr(): number[] {
    return this.opt.groups.map((g) => g.lr);
  }

  stateDict(): { step: number } {
    return { step: this.step_ };
  }

  loadStateDict(sd: { step: number }): void {
    if (!Number.isInteger(sd?.step) || sd.step < 0) throw new Error(`LRScheduler.loadStateDict: bad step ${JSON.stringify(sd?.step)}`);
    this.step_ = sd.step;
    this.apply();
  }

  private apply(): void {
    const f = lrFactor(this.step_, this.options);
    for (const g of this.opt.groups) g.lr = g.initialLr * f;
  }
}
