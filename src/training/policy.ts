// The actor engine (DeepSpeed-Chat's hybrid engine on one set of weights):
// generation with the KV cache, log-probs of sequences, an SFT step and a PPO
// step (clipped policy loss, optional ptx language-model loss), each step one
// optimizer update over micro-batches whose gradients accumulate.
import { writeCheckpoint } from '../models/checkpoint.js';
import { generate } from '../models/generate.js';
import type { Transformer } from '../models/transformer.js';
import { affine, fromData, noGrad, tidy } from '../tensor/index.js';
import { type Seqs, forwardOptions, microRanges, rows, sliceSeqs } from './batch.js';
import { Ema } from './ema.js';
import { lmLoss, policyLoss } from './losses.js';
import { type EngineOptions, buildModel } from './options.js';
import type { StepSettings } from './settings.js';
import { Trainer } from './trainer.js';

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

  /** ema: write the moving average instead of the live weights. */
  save(dir: string, withOptimizer: boolean, ema = false): void {
    if (ema) {
      if (!this.ema) throw new Error('save: meta.ema asks for the moving average, but this actor keeps none (start it with args.ema > 0)');
      writeCheckpoint(dir, this.model.cfg, this.ema.params, { tokenizerFrom: this.trainer.options.model });
      return;
    }
    this.trainer.save(dir, withOptimizer, this.ema ? this.ema.params : null);
  }

  load(dir: string, withOptimizer: boolean): void {
    this.trainer.load(dir, withOptimizer, this.ema ? this.ema.params : null);
  }
}
