// What the three trainable engines share: a model, AdamW over
// DeepSpeed-Chat's parameter groups (decay on weights, none on biases and
// norms, LoRA adapters at their own rate), one optimizer step per training
// call with the call's lr and weight decay and global-norm clipping, and
// save/load of a Hugging Face folder with the optimizer state beside it.
import { readConfig } from '../models/config.js';
import { readWeights, saveModel } from '../models/checkpoint.js';
import { optimizerGroups } from '../models/lora.js';
import type { Params } from '../models/families/layout.js';
import type { NamedArray } from '../models/safetensors.js';
import type { Transformer } from '../models/transformer.js';
import { AdamW, clipGradNorm, gradNorm, type Tensor, zeroGrad } from '../tensor/index.js';
import type { EngineOptions } from './options.js';
import { loadOptimizerState, saveOptimizerState } from './optimizer-state.js';

/** The optimizer settings of one training call. */
export interface StepSettings {
  lr: number;
  weightDecay: number;
  /** Clip the global gradient norm to this; 0: no clipping. */
  gradClip: number;
  /** Rows per micro-batch; 0: the whole batch at once. */
  microBatch: number;
}

export interface StepResult {
  gradNorm: number;
  /** The step was skipped because the gradient norm was not finite. */
  skipped: boolean;
}

type GroupKind = 'decay' | 'noDecay' | 'lora';

export class Trainer {
  readonly optimizer: AdamW;
  /**
   * Averages the gradients in place across the replicas of this engine's
   * group (set by the role from its collective); null: a lone replica.
   */
  allReduce: ((grads: Float32Array[]) => Promise<void>) | null = null;
  private readonly kinds: GroupKind[];

  constructor(readonly model: Transformer, readonly options: EngineOptions) {
    // optimizerGroups puts the placeholder decay 1 on the groups that decay; the call's value replaces it.
    const groups = optimizerGroups(model, { weightDecay: 1, loraLr: options.lora?.lr });
    const lora = new Set<Tensor>([...model.lora.values()].flatMap((a) => [a.A, a.B]));
    this.kinds = groups.map((g) => (lora.has(g.params[0]) ? 'lora' : g.weightDecay === 0 ? 'noDecay' : 'decay'));
    this.optimizer = new AdamW(groups);
  }

  /** The trainable parameters with their names, in optimizer order. */
  namedParams(): { name: string; shape: readonly number[]; t: Tensor }[] {
    const names = new Map<Tensor, string>(this.model.namedParameters().map(([n, t]) => [t, n]));
    return this.optimizer.params().map((t) => ({ name: names.get(t)!, shape: t.shape, t }));
  }

  /**
   * Averages the accumulated gradients across replicas (when allReduce is
   * set), clips them, sets the call's lr and decay and takes one AdamW step
   * (skipped when the norm is NaN or infinite), then zeroes them.
   */
  async step(s: StepSettings): Promise<StepResult> {
    const params = this.optimizer.params();
    if (this.allReduce) {
      // Before the norm, so that every replica clips, skips and steps alike.
      try {
        await this.allReduce(params.filter((p) => p.grad !== null).map((p) => p.grad!.f32));
      } catch (e) {
        this.clearGrads();
        throw e;
      }
    }
    const norm = s.gradClip > 0 ? clipGradNorm(params, s.gradClip) : gradNorm(params);
    const skipped = !Number.isFinite(norm);
    if (!skipped) {
      const base = this.options.baseLr;
      this.optimizer.groups.forEach((g, i) => {
        const kind = this.kinds[i];
        // The LoRA rate follows the call's schedule factor lr / baseLr (as a torch scheduler scales every group).
        g.lr = kind === 'lora' ? this.options.lora!.lr * (base ? s.lr / base : 1) : s.lr;
        g.weightDecay = kind === 'noDecay' ? 0 : s.weightDecay;
      });
      this.optimizer.step();
    }
    zeroGrad(params);
    return { gradNorm: norm, skipped };
  }

  /** Frees gradients left by a failed call, so the next call starts clean. */
  clearGrads(): void {
    zeroGrad(this.optimizer.params());
  }

  /**
   * A Hugging Face folder (LoRA merged in, value head beside the base
   * tensors, tokenizer files copied from the source model) and, when asked,
   * the optimizer state with the unmerged LoRA tensors (and the weights'
   * moving average, when one is kept) beside it.
   */
  save(dir: string, withOptimizer: boolean, ema: Params | null = null): void {
    saveModel(this.model, dir, { tokenizerFrom: this.options.model });
    if (!withOptimizer) return;
    const extra: NamedArray[] = [];
    for (const [name, a] of this.model.lora) {
      const w = this.model.p(`${name}.w`);
      extra.push({ name: `lora.${name}.A`, shape: [...a.A.shape], data: a.A.f32 }, { name: `lora.${name}.B`, shape: [...a.B.shape], data: a.B.f32 },
        { name: `base.${name}.w`, shape: [...w.shape], data: w.f32 });
    }
    for (const [name, p] of ema ?? []) extra.push({ name: `ema.${name}`, shape: [...p.shape], data: p.data });
    saveOptimizerState(dir, this.optimizer.stateDict(), this.namedParams(), extra, this.model.rng.getState());
  }

  /**
   * Loads a folder saved by save() into this engine's tensors in place (the
   * optimizer keeps its references). Without optimizer state, LoRA adapters
   * restart at zero on top of the merged weights, which the model then equals.
   */
  load(dir: string, withOptimizer: boolean, ema: Params | null = null): void {
    const cfg = readConfig(dir);
    const w = readWeights(dir, cfg, { allowNonFinite: this.options.allowNonFiniteWeights });
    const copyInto = (name: string, dst: Tensor, src: { shape: readonly number[]; data: Float32Array }) => {
      if (dst.shape.join(',') !== src.shape.join(',')) throw new Error(`load: ${dir}: parameter '${name}' is [${src.shape}], this engine's model has [${dst.shape}]`);
      dst.f32.set(src.data);
    };
    for (const [name, p] of this.model.params) {
      const src = w.params.get(name);
      if (!src) throw new Error(`load: ${dir} has no parameter '${name}' (is it the same model family and size?)`);
      copyInto(name, p, src);
    }
    if (this.model.valueHead) {
      if (!w.valueHead) throw new Error(`load: ${dir} has no v_head.weight, and this engine's model has a value head`);
      copyInto('v_head', this.model.valueHead, { shape: this.model.valueHead.shape, data: w.valueHead });
    }
    this.clearGrads();
    if (!withOptimizer) {
      for (const a of this.model.lora.values()) a.B.f32.fill(0);
      // The average restarts from the loaded weights.
      for (const [name, p] of ema ?? []) p.data.set(w.params.get(name)!.data);
      return;
    }
    const { sd, extra, rng } = loadOptimizerState(dir, this.namedParams());
    const getExtra = (key: string, what: string) => {
      const v = extra.get(key);
      if (!v) throw new Error(`load: ${dir}: optimizer state lacks '${key}' (${what})`);
      return v;
    };
    for (const [name, p] of ema ?? []) p.data.set(getExtra(`ema.${name}`, 'the moving average of the weights'));
    for (const [name, a] of this.model.lora) {
      const get = (key: string) => getExtra(key, `the LoRA adapter on '${name}'`);
      a.A.f32.set(get(`lora.${name}.A`));
      a.B.f32.set(get(`lora.${name}.B`));
      this.model.p(`${name}.w`).f32.set(get(`base.${name}.w`));
    }
    this.optimizer.loadStateDict(sd);
    if (rng) this.model.rng.setState(rng);
  }
}
