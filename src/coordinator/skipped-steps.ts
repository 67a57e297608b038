// A non-finite loss, or an update a role skipped because its gradient norm
// was not finite, must not train on to a "done": after checks.maxSkippedSteps
// such optimizer steps in a row, training stops with an error naming the
// phase, the step, the role and the loss. A finite step in between resets the
// count, so a lone spike is forgiven (as fp16 loss scalers skip an overflow
// step and go on); NaN weights or a diverged run fail within a few steps.

export type Losses = Record<string, number | null | undefined>;

export class SkippedSteps {
  private run = 0;
  private firstAt = '';

  /** `max`: bad steps in a row that stop training (0: never). */
  constructor(private readonly phase: string, private readonly role: string, private readonly max: number) {}

  /** After one optimizer step, at `where` ('step 7'): whether the role skipped it, and its loss figures. */
  record(where: string, skipped: boolean, losses: Losses): void {
    const bad = Object.values(losses).some((v) => typeof v === 'number' && !Number.isFinite(v));
    if (!skipped && !bad) {
      this.run = 0;
      return;
    }
    if (this.run === 0) this.firstAt = where;
    this.run++;
    if (this.max === 0 || this.run < this.max) return;
    const figures = Object.entries(losses).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${k} ${Number((v as number).toPrecision(6))}`).join(', ') || 'no loss reported';
    const what = skipped ? 'its update was skipped for a non-finite gradient norm' : 'its loss is not finite';
    const span = this.run === 1 ? '' : ` (${this.run} in a row, since ${this.firstAt})`;
    throw new Error(`${this.phase}: training stopped at ${where}: the ${this.role}'s ${figures}; ${what}${span}. `
      + `checks.maxSkippedSteps = ${this.max}. The usual causes: NaN or infinite weights, or too high a learning rate.`);
  }
}
