// LoRA as DeepSpeed-Chat does it (LinearLayer_LoRA): y = x W^T + b +
// scaling * dropout(x) A^T B^T with A [r, in] (kaiming-uniform, a = sqrt(5)),
// B [out, r] (zeros) and scaling = lora_scaling / r. Adapters attach to the
// linears whose Hugging Face module path contains `moduleName` (DeepSpeed-Chat's
// --lora_module_name, e.g. 'decoder.layers.' for OPT or 'self_attn' for LLaMA).
// The stack fuses q/k/v (and LLaMA's gate/up) into one linear, so a match on any
// of its parts adapts the fused linear as a whole. Saving merges the adapters
// into copies of the base weights (W + scaling B A), so the folder is a plain
// Hugging Face checkpoint.
import { layoutOf } from './checkpoint.js';
import type { Params } from './families/layout.js';
import type { Transformer } from './transformer.js';
import { type ParamGroup, Rng, type Tensor, add, addMatmulBuffer, affine, dropout, linear, param, rand, zeros } from '../tensor/index.js';

export interface LoraOptions {
  /** Substring of the Hugging Face module path that selects the adapted linears. */
  moduleName: string;
  /** r (DeepSpeed-Chat's --lora_dim). */
  rank: number;
  /** scaling = alpha / rank (DeepSpeed-Chat's lora_scaling, default 1). */
  alpha?: number;
  /** Dropout on the adapter's input (training only). */
  dropout?: number;
  /** Freeze every base parameter (the value head stays trainable). */
  onlyOptimizeLora?: boolean;
  seed?: number;
}

export class LoraAdapter {
  constructor(readonly A: Tensor, readonly B: Tensor, readonly scaling: number, readonly dropoutP: number) {}

  /** y + scaling * dropout(x) A^T B^T. rng null: no dropout. */
  apply(x: Tensor, y: Tensor, rng: Rng | null): Tensor {
    const xin = rng && this.dropoutP > 0 ? dropout(x, this.dropoutP, rng) : x;
    return add(y, affine(linear(linear(xin, this.A), this.B), this.scaling, 0));
  }

  dispose(): void {
    this.A.dispose();
    this.B.dispose();
  }
}

/** Attaches adapters to every matching linear; returns the internal names adapted. */
export function addLora(model: Transformer, opts: LoraOptions): string[] {
  const { rank } = opts;
  if (!Number.isInteger(rank) || rank <= 0) throw new Error(`lora: rank must be a positive integer, got ${rank}`);
  if (!opts.moduleName) throw new Error('lora: moduleName must name part of a module path (e.g. "decoder.layers.")');
  const p = opts.dropout ?? 0;
  if (!(p >= 0 && p < 1)) throw new Error(`lora: dropout must be in [0, 1), got ${p}`);
  const scaling = (opts.alpha ?? 1) / rank;
  const rng = new Rng(opts.seed ?? 0);
  const names: string[] = [];
  for (const spec of layoutOf(model.cfg).params) {
    if (!spec.name.endsWith('.w') || spec.shape.length !== 2 || !spec.name.startsWith('h.')) continue;
    if (!spec.modules.some((m) => m.includes(opts.moduleName))) continue;
    const name = spec.name.slice(0, -2);
    if (model.lora.has(name)) throw new Error(`lora: '${name}' already has an adapter`);
    const [out, inp] = spec.shape;
    // kaiming_uniform_(a=sqrt(5)) on DeepSpeed-Chat's [in, r] tensor: bound 1/sqrt(r).
    const bound = 1 / Math.sqrt(rank);
    const A = param(rand([rank, inp], rng, -bound, bound));
    const B = param(zeros([out, rank]));
    model.lora.set(name, new LoraAdapter(A, B, scaling, p));
    names.push(name);
  }
  if (names.length === 0) {
    throw new Error(`lora: no linear layer of this ${model.cfg.modelType} model has a module path containing '${opts.moduleName}'`);
  }
  if (opts.onlyOptimizeLora) for (const t of model.params.values()) t.requiresGrad = false;
  return names;
}

/** The adapters' parameters (for their own learning rate). */
export function loraParameters(model: Transformer): Tensor[] {
  return [...model.lora.values()].flatMap((a) => [a.A, a.B]);
}

/** The base parameters with every adapter merged in (copies for adapted weights; the model is unchanged). */
export function mergedParams(model: Transformer): Params {
  const out: Params = new Map();
  for (const [name, t] of model.params) out.set(name, { shape: t.shape.slice(), data: t.f32 });
  for (const [name, a] of model.lora) {
    const w = model.p(`${name}.w`);
    const [outF, inF] = w.shape;
    const r = a.A.shape[0];
    const merged = Float32Array.from(w.f32);
    addMatmulBuffer(merged, a.B.f32, a.A.f32, outF, inF, r, a.scaling);
    out.set(`${name}.w`, { shape: [outF, inF], data: merged });
  }
  return out;
}

/**
 * Parameter groups as DeepSpeed-Chat's get_optimizer_grouped_parameters: weight decay on
 * weights, none on biases and norm weights, and the LoRA adapters at their own learning rate.
 * Frozen parameters are left out; empty groups are dropped.
 */
export function optimizerGroups(model: Transformer, opts: { weightDecay: number; loraLr?: number }): ParamGroup[] {
  const decay: Tensor[] = [];
  const noDecay: Tensor[] = [];
  for (const [name, t] of model.namedParameters()) {
    if (name.startsWith('lora.')) continue;
    (/\.b$|(^|\.)(ln1|ln2|ln_f)\.w$/.test(name) ? noDecay : decay).push(t);
  }
  const lora = loraParameters(model).filter((t) => t.requiresGrad);
  const groups: ParamGroup[] = [
    { params: decay, weightDecay: opts.weightDecay },
    { params: noDecay, weightDecay: 0 },
    { params: lora, weightDecay: opts.weightDecay, ...(opts.loraLr !== undefined ? { lr: opts.loraLr } : {}) },
  ];
  return groups.filter((g) => g.params.length > 0);
}
