// What an engine is built from, read from a role's start-up args (the
// placement plan of src/config/plan.ts: `{ model, seed, training: { lr,
// dropout, lora: { dim, alpha, moduleNames, onlyOptimizeLora, lr } } }`;
// docs/roles.md also allows `dropout` and `lora` at the top level). Each
// supplied key is checked and a bad one is reported by name.
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

type Args = Record<string, unknown>;

function obj(where: string, v: unknown): Args {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where} must be an object, got ${JSON.stringify(v)}`);
  return v as Args;
}

function num(where: string, v: unknown, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where} must be a finite number, got ${JSON.stringify(v)}`);
  return v;
}

function bool(where: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw new Error(`${where} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** Engine options from a role's args; `role` names the role in errors. */
export function engineOptions(role: string, args: Args): EngineOptions {
  if (typeof args.model !== 'string' || !args.model) throw new Error(`${role}: args.model must be the folder of a Hugging Face model, got ${JSON.stringify(args.model)}`);
  const training = obj(`${role}: args.training`, args.training);
  const at = (key: string) => (training[key] !== undefined ? [`${role}: args.training.${key}`, training[key]] : [`${role}: args.${key}`, args[key]]) as [string, unknown];
  const [loraWhere, loraRaw] = at('lora');
  const l = obj(loraWhere, loraRaw);
  const dim = num(`${loraWhere}.dim`, l.dim ?? l.rank, 0);
  if (!Number.isInteger(dim) || dim < 0) throw new Error(`${loraWhere}.dim must be a non-negative integer, got ${dim}`);
  const names = l.moduleNames ?? [];
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string' && n)) throw new Error(`${loraWhere}.moduleNames must be a list of non-empty strings, got ${JSON.stringify(names)}`);
  const lora = dim > 0 ? {
    dim, alpha: num(`${loraWhere}.alpha`, l.alpha, 1), moduleNames: names as string[],
    onlyOptimizeLora: bool(`${loraWhere}.onlyOptimizeLora`, l.onlyOptimizeLora, false), lr: num(`${loraWhere}.lr`, l.lr, 5e-4),
  } : null;
  const baseLr = training.lr === undefined ? null : num(`${role}: args.training.lr`, training.lr, 0);
  return {
    model: args.model,
    seed: num(`${role}: args.seed`, args.seed, 0),
    dropout: bool(...at('dropout'), false),
    // Present only when on, so that the options of runs without it read as before.
    ...(bool(...at('gradientCheckpointing'), false) ? { gradientCheckpointing: true } : {}),
    lora,
    baseLr: baseLr !== null && baseLr > 0 ? baseLr : null,
    ...(bool(`${role}: args.allowNonFiniteWeights`, args.allowNonFiniteWeights, false) ? { allowNonFiniteWeights: true } : {}),
  };
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
