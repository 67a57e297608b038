// The actor engine (DeepSpeed-Chat's hybrid engine on one set of weights):
// generation with the KV cache, log-probs of sequences, an SFT step, a PPO
// step (clipped policy loss, optional ptx language-model loss) and a DPO step,
// each step one optimizer update over micro-batches whose gradients accumulate.
import { writeCheckpoint } from '../models/checkpoint.js';
import { generate } from '../models/generate.js';
import type { Transformer } from '../models/transformer.js';
import { type Tensor, affine, fromData, mul, noGrad, sliceRows, sumLastDim, tidy } from '../tensor/index.js';
import { type Seqs, forwardOptions, microRanges, rows, sliceSeqs } from './batch.js';
import { Ema } from './ema.js';
import { dpoLoss, lmLoss, policyLoss } from './losses.js';
import { type EngineOptions, buildModel } from './options.js';
import { type StepSettings, Trainer } from './trainer.js';

export interface GenerateSettings {
  maxNewTokens: number;
  /** 0: greedy. */
  temperature: number;
  /** 0: off. */
  topK: number;
  /** 1: off. */
  topP: number;
  seed: number;
}

export interface SftResult {
  /** Mean negative log-likelihood per target token. */
  loss: number;
  tokens: number;
  gradNorm: number;
  skipped: boolean;
}

export interface PpoSettings extends StepSettings {
  clipRange: number;
  ptxCoef: number;
}

export interface PpoBatch extends Seqs {
  /** [B, T-1] each. */
  oldLogprobs: Float32Array;
  advantages: Float32Array;
  actionMask: Float32Array;
}

export interface PpoResult {
  policyLoss: number;
  clipFrac: number;
  approxKl: number;
  ptxLoss: number;
  gradNorm: number;
  skipped: boolean;
}

export interface DpoSettings extends StepSettings {
  beta: number;
  labelSmoothing: number;
}

/** Preference pairs with the frozen reference's summed answer log-probs (checked where they enter the role). */
export interface DpoBatch {
  /** [B, T] each, padded to one width. */
  chosen: Seqs;
  rejected: Seqs;
  /** [B, T-1] each: 1 on the next-token targets that are answer tokens (their log-probs are summed). */
  chosenAnswer: Float32Array;
  rejectedAnswer: Float32Array;
  /** [B] each: the reference's sums over the same targets. */
  refChosen: Float32Array;
  refRejected: Float32Array;
}

export interface DpoResult {
  /** Mean DPO loss over pairs. */
  loss: number;
  /** Share of pairs whose implicit reward beta * (logp - ref_logp) is higher for the chosen answer. */
  acc: number;
  /** Mean implicit rewards of the chosen and rejected answers, and of their difference. */
  chosenReward: number;
  rejectedReward: number;
  margin: number;
  pairs: number;
  gradNorm: number;
  skipped: boolean;
}

/**
 * Weights of next-token targets, [B, T-1]: entry (b, t-1) is target token t's
 * loss-mask weight when token t and the token before it are real (the first
 * real token of a row has no context to be predicted from).
 */
function targetWeights(s: Seqs, lossMask: Float32Array | null): Float32Array {
  const { B, T } = s;
  const w = new Float32Array(B * (T - 1));
  for (let b = 0; b < B; b++) {
    for (let t = 1; t < T; t++) {
      const i = b * T + t;
      w[b * (T - 1) + t - 1] = s.mask[i] * s.mask[i - 1] * (lossMask ? lossMask[i] : 1);
    }
  }
  return w;
}

function total(a: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

/** Rows of both sequences of the pairs [a, b) stacked as [chosen; rejected]: one forward for both. */
function stackPairs(x: DpoBatch, a: number, b: number): { seqs: Seqs; weights: Float32Array } {
  const n = b - a, { T } = x.chosen, A = T - 1;
  const c = sliceSeqs(x.chosen, a, b), r = sliceSeqs(x.rejected, a, b);
  const ids = new Int32Array(2 * n * T), mask = new Int32Array(2 * n * T), weights = new Float32Array(2 * n * A);
  ids.set(c.ids);
  ids.set(r.ids, n * T);
  mask.set(c.mask);
  mask.set(r.mask, n * T);
  weights.set(rows(x.chosenAnswer, A, a, b));
  weights.set(rows(x.rejectedAnswer, A, a, b), n * A);
  return { seqs: { ids, mask, B: 2 * n, T }, weights };
}

/** Implicit-reward figures of a batch from the policy's and reference's summed log-probs. */
class DpoTally {
  acc = 0; chosen = 0; rejected = 0;
  constructor(private readonly beta: number) {}
  add(pc: Float32Array, pr: Float32Array, rc: Float32Array, rr: Float32Array): void {
    for (let i = 0; i < pc.length; i++) {
      const c = this.beta * (pc[i] - rc[i]), r = this.beta * (pr[i] - rr[i]);
      if (c > r) this.acc++;
      this.chosen += c;
      this.rejected += r;
    }
  }
}

export class PolicyEngine {
  readonly trainer: Trainer;
  /** The moving average of the weights over PPO updates, when asked for (emaBeta > 0). */
  readonly ema: Ema | null;

  constructor(readonly model: Transformer, options: EngineOptions, emaBeta = 0) {
    this.trainer = new Trainer(model, options);
    this.ema = emaBeta > 0 ? new Ema(model, emaBeta) : null;
  }

  static load(options: EngineOptions, emaBeta = 0): PolicyEngine {
    return new PolicyEngine(buildModel(options), options, emaBeta);
  }

  /** Left-padded prompts [B, P] -> prompt + answer [B, T] with its mask (0 on pads and after EOS). */
  generate(prompts: Seqs, g: GenerateSettings): { ids: Int32Array; mask: Int32Array; T: number; newTokens: number } {
    const sample = g.temperature > 0;
    const r = generate(this.model, prompts.ids, prompts.mask, prompts.B, prompts.T, {
      maxNewTokens: g.maxNewTokens, doSample: sample, seed: g.seed,
      ...(sample ? { temperature: g.temperature, topK: g.topK, topP: g.topP } : {}),
    });
    return { ids: r.sequences, mask: r.mask, T: r.T, newTokens: r.newTokens };
  }

  /** log p(ids[b, t+1] | ids[b, ..t]) without dropout: [B, T-1]. */
  logprobs(s: Seqs): Float32Array {
    return noGrad(() => tidy(() => {
      const lp = this.model.tokenLogprobs(fromData(s.ids, [s.B, s.T]), forwardOptions(s, false));
      return Float32Array.from(lp.f32);
    }));
  }

  /** Next-token loss over targets where lossMask (f32 [B, T]) is 1; one optimizer step. */
  async trainSft(s: Seqs, lossMask: Float32Array, st: StepSettings): Promise<SftResult> {
    const weights = targetWeights(s, lossMask);
    const tokens = total(weights);
    if (tokens === 0) throw new Error('train_sft: loss_mask selects no target token (a target is a real token after the first)');
    let loss = 0;
    try {
      for (const [a, b] of microRanges(s.B, st.microBatch)) {
        const mb = sliceSeqs(s, a, b);
        loss += tidy(() => {
          const lp = this.model.tokenLogprobs(fromData(mb.ids, [mb.B, mb.T]), forwardOptions(mb, true));
          const l = lmLoss(lp, fromData(rows(weights, s.T - 1, a, b), lp.shape), tokens);
          l.backward();
          return l.item();
        });
      }
    } catch (e) {
      this.trainer.clearGrads();
      throw e;
    }
    const r = await this.trainer.step(st);
    return { loss, tokens, gradNorm: r.gradNorm, skipped: r.skipped };
  }

  /** The SFT loss without training (no dropout): mean per target token. */
  evalSft(s: Seqs, lossMask: Float32Array): { loss: number; tokens: number } {
    const weights = targetWeights(s, lossMask);
    const tokens = total(weights);
    if (tokens === 0) throw new Error('eval_sft: loss_mask selects no target token');
    const loss = noGrad(() => tidy(() => {
      const lp = this.model.tokenLogprobs(fromData(s.ids, [s.B, s.T]), forwardOptions(s, false));
      return lmLoss(lp, fromData(weights, lp.shape), tokens).item();
    }));
    return { loss, tokens };
  }

  /**
   * One PPO update: the clipped policy loss over the action tokens, plus
   * ptxCoef times the language-model loss of the ptx batch when one is given.
   */
  async trainPpo(x: PpoBatch, st: PpoSettings, ptx: Seqs | null): Promise<PpoResult> {
    const A = x.T - 1;
    const actions = total(x.actionMask);
    if (actions === 0) throw new Error('train_ppo: action_mask selects no token');
    let pl = 0, clipped = 0, kl = 0, ptxLoss = 0;
    try {
      for (const [a, b] of microRanges(x.B, st.microBatch)) {
        const mb = sliceSeqs(x, a, b);
        pl += tidy(() => {
          const lp = this.model.tokenLogprobs(fromData(mb.ids, [mb.B, mb.T]), forwardOptions(mb, true));
          const at = (arr: Float32Array) => fromData(rows(arr, A, a, b), lp.shape);
          const { loss, stats } = policyLoss(lp, at(x.oldLogprobs), at(x.advantages), at(x.actionMask), st.clipRange, actions);
          loss.backward();
          clipped += stats.clipped;
          kl += stats.klSum;
          return loss.item();
        });
      }
      if (ptx && st.ptxCoef > 0) {
        const weights = targetWeights(ptx, null);
        const tokens = total(weights);
        if (tokens === 0) throw new Error('train_ppo: ptx_mask holds no target token');
        for (const [a, b] of microRanges(ptx.B, st.microBatch)) {
          const mb = sliceSeqs(ptx, a, b);
          ptxLoss += tidy(() => {
            const lp = this.model.tokenLogprobs(fromData(mb.ids, [mb.B, mb.T]), forwardOptions(mb, true));
            const l = lmLoss(lp, fromData(rows(weights, ptx.T - 1, a, b), lp.shape), tokens);
            affine(l, st.ptxCoef, 0).backward();
            return l.item();
          });
        }
      }
    } catch (e) {
      this.trainer.clearGrads();
      throw e;
    }
    const r = await this.trainer.step(st);
    if (!r.skipped) this.ema?.update(this.model);
    return { policyLoss: pl, clipFrac: clipped / actions, approxKl: kl / actions, ptxLoss, gradNorm: r.gradNorm, skipped: r.skipped };
  }

  /** Summed answer log-probs [2n] of stacked pairs, split into chosen [n] and rejected [n]. */
  private pairLogps(seqs: Seqs, weights: Float32Array, train: boolean): { chosen: Tensor; rejected: Tensor } {
    const lp = this.model.tokenLogprobs(fromData(seqs.ids, [seqs.B, seqs.T]), forwardOptions(seqs, train));
    const sums = sumLastDim(mul(lp, fromData(weights, lp.shape)));
    const n = seqs.B / 2;
    return { chosen: sliceRows(sums, 0, n), rejected: sliceRows(sums, n, 2 * n) };
  }

  /** Loss and figures of a batch of pairs, micro-batch by micro-batch; train: with gradients. */
  private dpoPass(x: DpoBatch, beta: number, labelSmoothing: number, microBatch: number, train: boolean): { loss: number; tally: DpoTally } {
    const { B } = x.chosen;
    const tally = new DpoTally(beta);
    let loss = 0;
    for (const [a, b] of microRanges(B, microBatch)) {
      const { seqs, weights } = stackPairs(x, a, b);
      const run = () => tidy(() => {
        const p = this.pairLogps(seqs, weights, train);
        const rc = x.refChosen.subarray(a, b), rr = x.refRejected.subarray(a, b);
        const l = dpoLoss(p.chosen, p.rejected, rc, rr, beta, labelSmoothing, B);
        if (train) l.backward();
        tally.add(p.chosen.f32, p.rejected.f32, rc, rr);
        return l.item();
      });
      loss += train ? run() : noGrad(run);
    }
    return { loss, tally };
  }

  /** One DPO update over the pairs (DeepSpeed-Chat's step2_dpo); the reference's sums come with the batch. */
  async trainDpo(x: DpoBatch, st: DpoSettings): Promise<DpoResult> {
    let pass;
    try {
      pass = this.dpoPass(x, st.beta, st.labelSmoothing, st.microBatch, true);
    } catch (e) {
      this.trainer.clearGrads();
      throw e;
    }
    const r = await this.trainer.step(st);
    return dpoResult(pass.loss, pass.tally, x.chosen.B, r.gradNorm, r.skipped);
  }

  /** The DPO loss and implicit-reward figures without training (no dropout). */
  evalDpo(x: DpoBatch, beta: number, labelSmoothing: number): DpoResult {
    const pass = this.dpoPass(x, beta, labelSmoothing, 0, false);
    return dpoResult(pass.loss, pass.tally, x.chosen.B, 0, false);
  }

  /** The live weights (and, withOptimizer, the optimizer state with the moving average beside it). */
  save(dir: string, withOptimizer: boolean): void {
    this.trainer.save(dir, withOptimizer, this.ema ? this.ema.params : null);
  }

  /** The moving average of the weights as a model folder. */
  saveEma(dir: string): void {
    if (!this.ema) throw new Error('save_ema: this actor keeps no moving average (start it with args.ema > 0)');
    writeCheckpoint(dir, this.model.cfg, this.ema.params, { tokenizerFrom: this.trainer.options.model });
  }

  load(dir: string, withOptimizer: boolean): void {
    this.trainer.load(dir, withOptimizer, this.ema ? this.ema.params : null);
  }
}

function dpoResult(loss: number, t: DpoTally, B: number, gradNorm: number, skipped: boolean): DpoResult {
  return {
    loss, acc: t.acc / B, chosenReward: t.chosen / B, rejectedReward: t.rejected / B, margin: (t.chosen - t.rejected) / B,
    pairs: B, gradNorm, skipped,
  };
}
