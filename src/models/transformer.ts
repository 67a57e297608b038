// One decoder stack for every family, driven by the normalised config:
// embeddings (+ learned positions, + OPT's project_in), L blocks (pre-LN,
// OPT-350m's post-LN, or NeoX's parallel residual; LayerNorm or RMSNorm;
// GELU/ReLU MLP or SwiGLU; MHA or grouped-query attention with optional
// partial rotary), the final norm (+ OPT's project_out), and the LM head
// (tied to the token embedding or not). A scalar value head turns it into a
// critic or reward model. LoRA adapters (lora.ts) wrap any of its linears.
//
// Positions follow transformers: a plain forward counts from 0 over the pads
// (GPT-2, NeoX, LLaMA), OPT always derives them from the mask (+ offset 2), and
// generation passes cumsum(mask) - 1 explicitly. Dropout follows the config
// (embedding, residual, and attention probabilities: `attn_pdrop`/`attention_dropout`,
// applied inside the fused attention kernel) and only runs when a forward asks for
// training and `dropoutEnabled` is on; KV-cache generation never drops.
// With `gradientCheckpointing`, a training forward keeps only each block's
// input and the backward recomputes the block (replaying its dropout).
import type { ModelConfig } from './config.js';
import type { Params } from './families/layout.js';
import type { LoraAdapter } from './lora.js';
import {
  Rng, type Tensor, add, attention, checkpoint, attentionCached, cacheWrite, dropout, embedding, fromData, fromI32, gelu,
  isGradEnabled, layerNorm, linear, logprobs, mul, param, permute, relu, reshape, rmsNorm, rope, silu, split, tensor, tidy, zeros, keep,
} from '../tensor/index.js';

export interface ForwardOptions {
  /** [B, T] row-major: 1 real token, 0 pad. Absent: no padding. */
  mask?: Int32Array | null;
  /** [B, T] position ids; absent: as transformers' forward (see above). */
  positions?: Int32Array | null;
  /** Apply the config's dropout (if dropoutEnabled). */
  train?: boolean;
  /** Generation: write this chunk's keys/values into the cache and attend over everything cached. */
  cache?: KVCache | null;
}

/** Preallocated keys and values of every layer, [B, NKV, cap, HS] each, plus the key mask so far. */
export class KVCache {
  readonly k: Tensor[] = [];
  readonly v: Tensor[] = [];
  /** Positions filled so far. */
  length = 0;
  /** [B, cap]: 1 for real (or generated) tokens, 0 for pads. */
  readonly keyMask: Float32Array;
  /** Whether any cached position is a pad (else attention needs no key mask). */
  padded = false;

  constructor(cfg: ModelConfig, readonly B: number, readonly cap: number) {
    for (let l = 0; l < cfg.layers; l++) {
      this.k.push(keep(zeros([B, cfg.kvHeads, cap, cfg.headDim])));
      this.v.push(keep(zeros([B, cfg.kvHeads, cap, cfg.headDim])));
    }
    this.keyMask = new Float32Array(B * cap);
  }

  /** The key mask of the first `n` positions as a [B, n] tensor. */
  maskTensor(n: number): Tensor {
    const m = new Float32Array(this.B * n);
    for (let b = 0; b < this.B; b++) m.set(this.keyMask.subarray(b * this.cap, b * this.cap + n), b * n);
    return fromData(m, [this.B, n]);
  }

  dispose(): void {
    for (const t of [...this.k, ...this.v]) t.dispose();
  }
}

/** Default position ids of a forward, as transformers computes them without position_ids. */
export function defaultPositions(cfg: ModelConfig, B: number, T: number, mask: Int32Array | null): Int32Array {
  const pos = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    let seen = 0;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (cfg.family === 'opt' && mask) {
        // OPT: cumsum(mask) * mask - 1, so pads sit at -1 (+ offset 2 = row 1 of the table).
        seen += mask[i];
        pos[i] = mask[i] ? seen - 1 : -1;
      } else {
        pos[i] = t;
      }
    }
  }
  return pos;
}

/** Position ids for generation: cumsum(mask) - 1, pads at 1 (transformers' generate()). */
export function generationPositions(mask: Int32Array, B: number, T: number, start: Int32Array | null = null): Int32Array {
  const pos = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    let seen = start ? start[b] : 0;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      seen += mask[i];
      pos[i] = mask[i] ? seen - 1 : 1;
    }
  }
  return pos;
}

export class Transformer {
  readonly cfg: ModelConfig;
  /** The stack's parameters by internal name (families/layout.ts). */
  readonly params = new Map<string, Tensor>();
  /** v_head.weight [1, embedDim] for critic and reward models. */
  valueHead: Tensor | null = null;
  /** LoRA adapters by the internal name of the linear they wrap (e.g. 'h.0.qkv'). */
  readonly lora = new Map<string, LoraAdapter>();
  /** DeepSpeed-Chat's --disable_dropout switches this off. */
  dropoutEnabled = true;
  /** DeepSpeed-Chat's --gradient_checkpointing: recompute each block in the backward of a training forward. */
  gradientCheckpointing = false;
  private dropoutOverride: number | null = null;
  rng: Rng;
  private readonly invFreq: Tensor | null;

  constructor(cfg: ModelConfig, weights: Params, opts: { valueHead?: Float32Array | null; seed?: number } = {}) {
    this.cfg = cfg;
    for (const [name, p] of weights) this.params.set(name, param(fromData(p.data, p.shape)));
    if (opts.valueHead) this.valueHead = param(fromData(opts.valueHead, [1, cfg.embedDim]));
    this.rng = new Rng(opts.seed ?? 0);
    if (cfg.positions === 'rotary') {
      const half = cfg.rotaryDim / 2;
      const inv = new Float32Array(half);
      for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(cfg.ropeTheta, (2 * i) / cfg.rotaryDim);
      this.invFreq = keep(tensor(inv));
    } else {
      this.invFreq = null;
    }
  }

  /**
   * DeepSpeed-Chat's --dropout: one probability for embedding, residual and attention dropout in
   * place of the config's (0 turns dropout off as --disable_dropout does).
   */
  setDropout(p: number): void {
    if (!(p >= 0 && p < 1)) throw new Error(`transformer: dropout must be in [0, 1), got ${p}`);
    this.dropoutOverride = p;
  }

  /** The dropout probability in use for embeddings, residual branches or attention probabilities. */
  dropoutP(kind: 'embed' | 'residual' | 'attention'): number {
    return this.dropoutOverride ?? this.cfg.dropout[kind];
  }

  /** A parameter by internal name. */
  p(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`transformer: no parameter '${name}' in this ${this.cfg.modelType} model`);
    return t;
  }

  private opt(name: string): Tensor | null {
    return this.params.get(name) ?? null;
  }

  /** A linear layer by internal name ('h.0.qkv'), with its LoRA adapter when one is attached. */
  linear(name: string, x: Tensor, train?: boolean): Tensor {
    const y = linear(x, this.p(`${name}.w`), this.opt(`${name}.b`));
    const a = this.lora.get(name);
    return a ? a.apply(x, y, this.dropoutOn(train) ? this.rng : null) : y;
  }

  private norm(name: string, x: Tensor): Tensor {
    const w = this.p(`${name}.w`);
    return this.cfg.norm === 'rmsnorm' ? rmsNorm(x, w, this.cfg.normEps) : layerNorm(x, w, this.opt(`${name}.b`), this.cfg.normEps);
  }

  private dropoutOn(train: boolean | undefined): boolean {
    return !!train && this.dropoutEnabled;
  }

  private drop(x: Tensor, p: number, train: boolean | undefined): Tensor {
    return this.dropoutOn(train) && p > 0 ? dropout(x, p, this.rng) : x;
  }

  private act(x: Tensor): Tensor {
    switch (this.cfg.activation) {
      case 'gelu_tanh': return gelu(x, true);
      case 'gelu': return gelu(x, false);
      case 'relu': return relu(x);
      case 'silu': return silu(x);
    }
  }

  private mlp(i: number, x: Tensor, train: boolean | undefined): Tensor {
    const up = this.linear(`h.${i}.up`, x, train);
    let h: Tensor;
    if (this.cfg.gatedMlp) {
      const [gate, u] = split(up, [this.cfg.intermediate, this.cfg.intermediate], -1);
      h = mul(silu(gate), u);
    } else {
      h = this.act(up);
    }
    return this.linear(`h.${i}.down`, h, train);
  }

  /** Rotary on x [B, H, T, HS] (heads-first, as attention wants it) via rows of [B*H, T, 1, HS]. */
  private rotate(x: Tensor, pos: Tensor): Tensor {
    const [B, H, T, HS] = x.shape;
    return reshape(rope(reshape(x, [B * H, T, 1, HS]), pos, this.invFreq!, this.cfg.rotaryDim, false), [B, H, T, HS]);
  }

  private attn(i: number, x: Tensor, ctx: BlockContext): Tensor {
    const { heads: NH, kvHeads: NKV, headDim: HS } = this.cfg;
    const [B, T] = x.shape;
    const qkv = this.linear(`h.${i}.qkv`, x, ctx.train);
    let q: Tensor, k: Tensor, v: Tensor;
    if (NKV === NH) {
      // One copy: [B, T, 3, NH, HS] -> [3, B, NH, T, HS]; the three pieces are then views.
      [q, k, v] = split(permute(reshape(qkv, [B, T, 3, NH, HS]), [2, 0, 3, 1, 4]), [1, 1, 1], 0).map((t) => reshape(t, [B, NH, T, HS]));
    } else {
      [q, k, v] = split(permute(reshape(qkv, [B, T, NH + 2 * NKV, HS]), [0, 2, 1, 3]), [NH, NKV, NKV], 1);
    }
    if (this.invFreq) {
      q = this.rotate(q, ctx.ropePos.get(NH)!);
      k = this.rotate(k, ctx.ropePos.get(NKV)!);
    }
    let scale = this.cfg.scaleAttnWeights ? 1 / Math.sqrt(HS) : 1;
    if (this.cfg.scaleByInverseLayerIdx) scale /= i + 1;
    let o: Tensor;
    if (ctx.cache) {
      const c = ctx.cache;
      cacheWrite(c.k[i], k, c.length);
      cacheWrite(c.v[i], v, c.length);
      o = attentionCached(q, c.k[i], c.v[i], c.length + T, { keyMask: ctx.keyMask, causal: true, scale });
    } else {
      const pa = this.dropoutP('attention');
      const dropout = this.dropoutOn(ctx.train) && pa > 0 ? { p: pa, rng: this.rng } : null;
      o = attention(q, k, v, { keyMask: ctx.keyMask, causal: true, scale, dropout });
    }
    // [B, NH, T, HS] -> [B, T, NH * HS]; with one query per row the layouts coincide.
    o = T === 1 ? reshape(o, [B, T, NH * HS]) : reshape(permute(o, [0, 2, 1, 3]), [B, T, NH * HS]);
    return this.linear(`h.${i}.o`, o, ctx.train);
  }

  private block(i: number, x: Tensor, ctx: BlockContext): Tensor {
    const pd = this.dropoutP('residual');
    const train = ctx.train;
    if (!this.cfg.preNorm) {
      // OPT-350m: the norm follows each residual add.
      x = this.norm(`h.${i}.ln1`, add(x, this.drop(this.attn(i, x, ctx), pd, train)));
      return this.norm(`h.${i}.ln2`, add(x, this.drop(this.mlp(i, x, train), pd, train)));
    }
    const a = this.drop(this.attn(i, this.norm(`h.${i}.ln1`, x), ctx), pd, train);
    if (this.cfg.parallelResidual) {
      const m = this.drop(this.mlp(i, this.norm(`h.${i}.ln2`, x), train), pd, train);
      return add(add(m, a), x);
    }
    x = add(x, a);
    return add(x, this.drop(this.mlp(i, this.norm(`h.${i}.ln2`, x), train), pd, train));
  }

  /**
   * A block whose activations are recomputed in the backward. The key mask and rotary positions go
   * in as inputs so that the checkpoint node holds them until then (the caller's tidy may not).
   */
  private checkpointedBlock(i: number, x: Tensor, ctx: BlockContext): Tensor {
    const heads = [...ctx.ropePos.keys()];
    const consts = [...ctx.ropePos.values()];
    if (ctx.keyMask) consts.push(ctx.keyMask);
    return checkpoint((h, ...c) => {
      const ropePos = new Map(heads.map((H, j) => [H, c[j]]));
      return this.block(i, h, { ...ctx, ropePos, keyMask: ctx.keyMask ? c[heads.length] : null });
    }, [x, ...consts], { rngs: [this.rng] });
  }

  /** The last hidden states [B, T, embedDim] (after the final norm and OPT's project_out). */
  hidden(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    const cfg = this.cfg;
    if (ids.dtype !== 'i32' || ids.shape.length !== 2) throw new Error(`transformer: ids must be i32 [B, T], got ${ids.dtype} [${ids.shape}]`);
    const [B, T] = ids.shape;
    const mask = opts.mask ?? null;
    if (mask && mask.length !== B * T) throw new Error(`transformer: mask has ${mask.length} entries, ids are [${B}, ${T}]`);
    const cache = opts.cache ?? null;
    const past = cache ? cache.length : 0;
    if (cache && past + T > cache.cap) throw new Error(`transformer: KV cache of ${cache.cap} positions cannot take ${past} + ${T}`);
    const pos = opts.positions ?? defaultPositions(cfg, B, T, mask);
    if (pos.length !== B * T) throw new Error(`transformer: positions have ${pos.length} entries, ids are [${B}, ${T}]`);
    if (cfg.slidingWindow !== null && past + T > cfg.slidingWindow) {
      throw new Error(`transformer: ${past + T} positions exceed mistral's sliding_window ${cfg.slidingWindow} (sliding-window attention is not implemented)`);
    }

    let x = embedding(ids, this.p('wte'));
    if (this.params.has('proj_in')) x = linear(x, this.p('proj_in'));
    if (cfg.positions === 'learned') {
      const idx = new Int32Array(B * T);
      const rows = this.p('wpe').shape[0];
      for (let i = 0; i < idx.length; i++) {
        idx[i] = pos[i] + cfg.positionOffset;
        if (idx[i] < 0 || idx[i] >= rows) throw new Error(`transformer: position ${pos[i]} is outside the ${cfg.maxPositions} learned positions of this ${cfg.modelType} model`);
      }
      x = add(x, embedding(fromI32(idx, [B, T]), this.p('wpe')));
    }
    x = this.drop(x, this.dropoutP('embed'), opts.train);

    // Without any pad the attention needs no key mask (causality alone).
    const padded = mask !== null && mask.includes(0);
    let keyMask: Tensor | null = null;
    if (cache) {
      if (mask) {
        for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) cache.keyMask[b * cache.cap + past + t] = mask[b * T + t];
      } else {
        for (let b = 0; b < B; b++) cache.keyMask.fill(1, b * cache.cap + past, b * cache.cap + past + T);
      }
      cache.padded ||= padded;
      if (cache.padded) keyMask = cache.maskTensor(past + T);
    } else if (padded) {
      keyMask = fromData(Float32Array.from(mask), [B, T]);
    }
    // Rotary positions per head row, [B * H, T], for the query and the key head counts; made here,
    // outside the blocks' tidy scopes, so that every block can use them.
    const ropePos = new Map<number, Tensor>();
    if (this.invFreq) {
      for (const H of new Set([cfg.heads, cfg.kvHeads])) {
        const rep = new Int32Array(B * H * T);
        for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) rep.set(pos.subarray(b * T, (b + 1) * T), (b * H + h) * T);
        ropePos.set(H, fromI32(rep, [B * H, T]));
      }
    }
    const ctx: BlockContext = { keyMask, cache, train: opts.train, ropePos };
    const recompute = this.gradientCheckpointing && !!opts.train && !cache && isGradEnabled();
    for (let i = 0; i < cfg.layers; i++) {
      // Each block's temporaries go as soon as it is done (tidy keeps what the backward needs);
      // without a graph the block's input can go too, so inference holds one block's activations.
      const next = tidy(() => (recompute ? this.checkpointedBlock(i, x, ctx) : this.block(i, x, ctx)));
      if (!isGradEnabled()) x.dispose();
      x = next;
    }
    if (cache) cache.length = past + T;
    if (cfg.finalNorm) x = this.norm('ln_f', x);
    if (this.params.has('proj_out')) x = linear(x, this.p('proj_out'));
    return x;
  }

  /** LM head: hidden [.., embedDim] -> logits [.., V]. */
  logits(hidden: Tensor): Tensor {
    return linear(hidden, this.params.get('lm_head') ?? this.p('wte'));
  }

  forward(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    return this.logits(this.hidden(ids, opts));
  }

  /**
   * Log-probs of each next token: out[b, t] = log p(ids[b, t+1] | ids[b, ..t]), [B, T-1]
   * (DeepSpeed-Chat's gather_log_probs(logits[:, :-1], seq[:, 1:])).
   */
  tokenLogprobs(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    const [B, T] = ids.shape;
    if (T < 2) throw new Error(`transformer: tokenLogprobs needs at least 2 tokens per row, got [${B}, ${T}]`);
    const logits = this.forward(ids, opts);
    const src = ids.i32;
    // The last position has no next token: label -1 gives log-prob 0 and no gradient.
    const labels = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      labels.set(src.subarray(b * T + 1, (b + 1) * T), b * T);
      labels[(b + 1) * T - 1] = -1;
    }
    const lp = logprobs(logits, fromI32(labels, [B, T]));
    return split(lp, [T - 1, 1], 1)[0];
  }

  /** Per-token values from the value head: [B, T]. */
  values(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    if (!this.valueHead) throw new Error('transformer: this model has no value head (v_head.weight); add one with addValueHead()');
    const [B, T] = ids.shape;
    return reshape(linear(this.hidden(ids, opts), this.valueHead), [B, T]);
  }

  /** Every trainable tensor with its name (internal names; 'v_head', 'lora.<name>.A/B'). */
  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [...this.params];
    if (this.valueHead) out.push(['v_head', this.valueHead]);
    for (const [n, a] of this.lora) out.push([`lora.${n}.A`, a.A], [`lora.${n}.B`, a.B]);
    return out.filter(([, t]) => t.requiresGrad);
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Frees every parameter buffer. */
  dispose(): void {
    for (const t of this.params.values()) t.dispose();
    this.valueHead?.dispose();
    for (const a of this.lora.values()) a.dispose();
    this.invFreq?.dispose();
  }
}

interface BlockContext {
  keyMask: Tensor | null;
  cache: KVCache | null;
  train: boolean | undefined;
  /** Rotary position ids by head count (empty without rotary). */
  ropePos: Map<number, Tensor>;
}
