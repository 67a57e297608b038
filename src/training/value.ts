// The critic engine: per-token values from the value head and one update of
// DeepSpeed-Chat's clipped value loss per call (micro-batches accumulate).
import type { Transformer } from '../models/transformer.js';
import { fromData, noGrad, split, tidy } from '../tensor/index.js';
import { type Seqs, forwardOptions, microRanges, rows, sliceSeqs } from './batch.js';
import { valueLoss } from './losses.js';
import { type EngineOptions, buildModel } from './options.js';
import { type StepSettings, Trainer } from './trainer.js';

export interface ValueBatch extends Seqs {
  /** [B, T-1] each. */
  oldValues: Float32Array;
  returns: Float32Array;
  actionMask: Float32Array;
}

export interface ValueSettings extends StepSettings {
  clipRangeValue: number;
}

export interface ValueResult {
  valueLoss: number;
  clipFrac: number;
  gradNorm: number;
  skipped: boolean;
}

export class ValueEngine {
  readonly trainer: Trainer;

  constructor(readonly model: Transformer, options: EngineOptions) {
    if (!model.valueHead) throw new Error('critic: the model has no value head');
    this.trainer = new Trainer(model, options);
  }

  /** A critic starts from the reward model; a folder without v_head.weight gets a fresh head. */
  static load(options: EngineOptions): ValueEngine {
    return new ValueEngine(buildModel(options, { valueHead: true }), options);
  }

  /** The value of the hidden state at each position but the last: [B, T-1] (DeepSpeed-Chat's values[:, :-1]). */
  values(s: Seqs): Float32Array {
    return noGrad(() => tidy(() => Float32Array.from(this.perToken(s, false).f32)));
  }

  private perToken(s: Seqs, train: boolean) {
    const v = this.model.values(fromData(s.ids, [s.B, s.T]), forwardOptions(s, train));
    return split(v, [s.T - 1, 1], 1)[0];
  }

  async trainValue(x: ValueBatch, st: ValueSettings): Promise<ValueResult> {
    const A = x.T - 1;
    let actions = 0;
    for (const m of x.actionMask) actions += m;
    if (actions === 0) throw new Error('train_value: action_mask selects no token');
    let loss = 0, clipped = 0;
    try {
      for (const [a, b] of microRanges(x.B, st.microBatch)) {
        const mb = sliceSeqs(x, a, b);
        loss += tidy(() => {
          const v = this.perToken(mb, true);
          const at = (arr: Float32Array) => fromData(rows(arr, A, a, b), v.shape);
          const r = valueLoss(v, at(x.oldValues), at(x.returns), at(x.actionMask), st.clipRangeValue, actions);
          r.loss.backward();
          clipped += r.clipped;
          return r.loss.item();
        });
      }
    } catch (e) {
      this.trainer.clearGrads();
      throw e;
    }
    const r = await this.trainer.step(st);
    return { valueLoss: loss, clipFrac: clipped / actions, gradNorm: r.gradNorm, skipped: r.skipped };
  }

  save(dir: string, withOptimizer: boolean): void {
    this.trainer.save(dir, withOptimizer);
  }

  load(dir: string, withOptimizer: boolean): void {
    this.trainer.load(dir, withOptimizer);
  }
}
