// The reward-model engine (DeepSpeed-Chat's RewardModel): a sequence's score
// is the value at its last real token; training compares a chosen and a
// rejected answer to the same prompt with -log sigmoid(chosen - rejected)
// averaged over the positions from where the two sequences diverge up to the
// later of their ends, then over pairs.
import type { Transformer } from '../models/transformer.js';
import { type Tensor, fromData, fromI32, gatherRows, noGrad, reshape, tidy } from '../tensor/index.js';
import { type Seqs, forwardOptions, lastReal, microRanges, sliceSeqs } from './batch.js';
import { pairwiseLoss } from './losses.js';
import { type EngineOptions, buildModel } from './options.js';
import { type StepSettings, Trainer } from './trainer.js';

export interface RmResult {
  /** Mean pairwise loss over pairs. */
  loss: number;
  /** Share of pairs whose chosen score is above the rejected one. */
  acc: number;
  chosenMean: number;
  rejectedMean: number;
  chosenScores: Float32Array;
  rejectedScores: Float32Array;
}

/** The compared positions of each pair: [div, end) and the two score positions. */
export interface PairSpan {
  div: number;
  end: number;
  chosenLast: number;
  rejectedLast: number;
}

/** DeepSpeed-Chat's divergence rule, on masks: pairs are [B, T] each, right-padded or not. */
export function pairSpans(chosen: Seqs, rejected: Seqs): PairSpan[] {
  const { B, T } = chosen;
  const cl = lastReal(chosen), rl = lastReal(rejected);
  const spans: PairSpan[] = [];
  for (let b = 0; b < B; b++) {
    const end = Math.max(cl[b], rl[b]) + 1;
    let div = -1;
    for (let t = 0; t < end && div < 0; t++) {
      const i = b * T + t;
      const cm = chosen.mask[i], rm = rejected.mask[i];
      if (cm !== rm || (cm === 1 && chosen.ids[i] !== rejected.ids[i])) div = t;
    }
    // Identical answers: compare at the last token only (their difference is 0 and carries no gradient).
    spans.push({ div: div < 0 ? end - 1 : div, end, chosenLast: cl[b], rejectedLast: rl[b] });
  }
  return spans;
}

export class RewardEngine {
  readonly trainer: Trainer;

  constructor(readonly model: Transformer, options: EngineOptions) {
    if (!model.valueHead) throw new Error('reward: the model has no value head');
    this.trainer = new Trainer(model, options);
  }

  static load(options: EngineOptions): RewardEngine {
    return new RewardEngine(buildModel(options, { valueHead: true }), options);
  }

  private valuesOf(s: Seqs, train: boolean): Tensor {
    return this.model.values(fromData(s.ids, [s.B, s.T]), forwardOptions(s, train));
  }

  /**
   * The value at the last real token of each sequence: [B]. promptLength (the
   * `score` contract, which custom scorers use to cut the answer out) does not
   * move it (a row with an empty answer scores at its prompt's last token).
   */
  score(s: Seqs, promptLength: number): Float32Array {
    const last = lastReal(s);
    return noGrad(() => tidy(() => {
      const v = this.valuesOf(s, false).f32;
      return Float32Array.from(last, (t, b) => v[b * s.T + t]);
    }));
  }

  /** Loss, scores and (train) gradients of a batch of pairs of one width, micro-batch by micro-batch. */
  private pairs(chosen: Seqs, rejected: Seqs, microBatch: number, train: boolean): RmResult {
    const { B, T } = chosen;
    const spans = pairSpans(chosen, rejected);
    const chosenScores = new Float32Array(B), rejectedScores = new Float32Array(B);
    let loss = 0;
    for (const [a, b] of microRanges(B, microBatch)) {
      const n = b - a;
      const c = sliceSeqs(chosen, a, b), r = sliceSeqs(rejected, a, b);
      // One forward over [chosen; rejected] rows of this micro-batch.
      const both: Seqs = { ids: new Int32Array(2 * n * T), mask: new Int32Array(2 * n * T), B: 2 * n, T };
      both.ids.set(c.ids);
      both.ids.set(r.ids, n * T);
      both.mask.set(c.mask);
      both.mask.set(r.mask, n * T);
      const cIdx: number[] = [], rIdx: number[] = [], weight: number[] = [];
      for (let i = 0; i < n; i++) {
        const sp = spans[a + i];
        for (let t = sp.div; t < sp.end; t++) {
          cIdx.push(i * T + t);
          rIdx.push((n + i) * T + t);
          weight.push(1 / ((sp.end - sp.div) * B));
        }
      }
      const run = () => tidy(() => {
        const v = reshape(this.valuesOf(both, train), [2 * n * T, 1]);
        const pick = (idx: number[]) => gatherRows(v, fromI32(idx, [idx.length]));
        const l = pairwiseLoss(pick(cIdx), pick(rIdx), Float32Array.from(weight));
        if (train) l.backward();
        for (let i = 0; i < n; i++) {
          chosenScores[a + i] = v.f32[i * T + spans[a + i].chosenLast];
          rejectedScores[a + i] = v.f32[(n + i) * T + spans[a + i].rejectedLast];
        }
        return l.item();
      });
      loss += train ? run() : noGrad(run);
    }
    let acc = 0, cm = 0, rm = 0;
    for (let b = 0; b < B; b++) {
      if (chosenScores[b] > rejectedScores[b]) acc++;
      cm += chosenScores[b];
      rm += rejectedScores[b];
    }
    return { loss, acc: acc / B, chosenMean: cm / B, rejectedMean: rm / B, chosenScores, rejectedScores };
  }

  async trainRm(chosen: Seqs, rejected: Seqs, st: StepSettings): Promise<RmResult & { gradNorm: number; skipped: boolean }> {
    let r: RmResult;
    try {
      r = this.pairs(chosen, rejected, st.microBatch, true);
    } catch (e) {
      this.trainer.clearGrads();
      throw e;
    }
    const s = await this.trainer.step(st);
    return { ...r, gradNorm: s.gradNorm, skipped: s.skipped };
  }

  evalRm(chosen: Seqs, rejected: Seqs, microBatch = 0): RmResult {
    return this.pairs(chosen, rejected, microBatch, false);
  }

  save(dir: string, withOptimizer: boolean): void {
    this.trainer.save(dir, withOptimizer);
  }

  load(dir: string, withOptimizer: boolean): void {
    this.trainer.load(dir, withOptimizer);
  }
}
