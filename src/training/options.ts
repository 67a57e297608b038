// What an engine is built from: typed options (a role reads them from its
// start-up args in actors/startup.ts; the CLI and tests build them directly),
// and the model they describe.
import { layoutOf, loadModel } from '../models/checkpoint.js';
import { addLora } from '../models/lora.js';
import type { Transformer } from '../models/transformer.js';
import { addValueHead } from '../models/value-head.js';

export interface LoraSettings {
  dim: number;
  alpha: number;
  /** Substrings of Hugging Face module paths; empty: every linear of the blocks. */
  moduleNames: string[];
  onlyOptimizeLora: boolean;
  /** The adapters' learning rate at the schedule's peak. */
  lr: number;
}

export interface EngineOptions {
  /** Hugging Face folder the model loads from (and the tokenizer files are copied from on save). */
  model: string;
  seed: number;
  /** Keep the model's dropout in training forwards. */
  dropout: boolean;
  /** Recompute each block in the backward (absent: off). */
  gradientCheckpointing?: boolean;
  lora: LoraSettings | null;
  /** The peak learning rate of the base weights: a call's lr / baseLr scales the LoRA lr as a schedule would. */
  baseLr: number | null;
  /** Load NaN or infinite weights (args.allowNonFiniteWeights, from checks.allowNonFiniteWeights; absent: refused). */
  allowNonFiniteWeights?: boolean;
}

/**
 * Loads the model of an engine: dropout switched as asked, LoRA adapters
 * attached, and (valueHead) a fresh value head when the folder has none.
 */
export function buildModel(o: EngineOptions, opts: { valueHead?: boolean } = {}): Transformer {
  const model = loadModel(o.model, { seed: o.seed, allowNonFinite: o.allowNonFiniteWeights });
  model.dropoutEnabled = o.dropout;
  model.gradientCheckpointing = o.gradientCheckpointing === true;
  if (opts.valueHead && !model.valueHead) addValueHead(model, o.seed);
  if (o.lora) attachLora(model, o.lora, o.seed);
  return model;
}

/**
 * Adapters on the linears named by moduleNames. Several names may select the
 * same fused linear (q_proj and v_proj both select LLaMA's fused q/k/v), so a
 * name whose linears are all adapted already is skipped.
 */
function attachLora(model: Transformer, l: LoraSettings, seed: number): void {
  const blockLinears = layoutOf(model.cfg).params.filter((s) => s.name.startsWith('h.') && s.name.endsWith('.w') && s.shape.length === 2);
  // Every Hugging Face module path of a block linear contains a dot, so '.' selects them all.
  const names = l.moduleNames.length ? l.moduleNames : ['.'];
  names.forEach((moduleName, i) => {
    const hits = blockLinears.filter((s) => s.modules.some((m) => m.includes(moduleName))).map((s) => s.name.slice(0, -2));
    const done = hits.filter((h) => model.lora.has(h));
    if (hits.length > 0 && done.length === hits.length) return;
    if (done.length > 0) throw new Error(`lora: moduleNames '${moduleName}' selects ${done.join(', ')}, already adapted through an earlier name, and ${hits.filter((h) => !model.lora.has(h)).join(', ')}; choose names that do not overlap`);
    addLora(model, { moduleName, rank: l.dim, alpha: l.alpha, onlyOptimizeLora: l.onlyOptimizeLora, seed: seed + i });
  });
}
