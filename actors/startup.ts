// A model role's start-up: its kernel threads and the engine options, read
// from the start-up args the placement plan wrote (src/roles/args.ts). Each
// key is checked and a bad or missing one is reported by name; a per-call
// knob never appears here (it travels in the request meta).
import { native } from '../src/native.js';
import type { RoleContext } from '../src/runtime/role-server.js';
import type { EngineOptions } from '../src/training/options.js';

type Args = Record<string, unknown>;

function obj(where: string, v: unknown): Args {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where} must be an object, got ${JSON.stringify(v)}`);
  return v as Args;
}

function num(where: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where} must be a finite number, got ${JSON.stringify(v)}`);
  return v;
}

function bool(where: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new Error(`${where} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Engine options from a role's args; `role` names the role in errors.
 * Without args.training the model runs as its folder has it (a frozen role).
 */
export function engineOptions(role: string, args: Args): EngineOptions {
  if (typeof args.model !== 'string' || !args.model) throw new Error(`${role}: args.model must be the folder of a Hugging Face model, got ${JSON.stringify(args.model)}`);
  const seed = num(`${role}: args.seed`, args.seed);
  // Present and true only with checks.allowNonFiniteWeights: a NaN or infinite weight fails the load otherwise.
  const nonFinite = args.allowNonFiniteWeights === undefined ? {} : bool(`${role}: args.allowNonFiniteWeights`, args.allowNonFiniteWeights) ? { allowNonFiniteWeights: true } : {};
  if (args.training === undefined) return { model: args.model, seed, dropout: false, lora: null, baseLr: null, ...nonFinite };
  const where = `${role}: args.training`;
  const training = obj(where, args.training);
  const l = obj(`${where}.lora`, training.lora);
  const dim = num(`${where}.lora.dim`, l.dim);
  if (!Number.isInteger(dim) || dim < 0) throw new Error(`${where}.lora.dim must be a non-negative integer, got ${dim}`);
  let lora: EngineOptions['lora'] = null;
  if (dim > 0) {
    const names = l.moduleNames;
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string' && n)) throw new Error(`${where}.lora.moduleNames must be a list of non-empty strings, got ${JSON.stringify(names)}`);
    lora = {
      dim, alpha: num(`${where}.lora.alpha`, l.alpha), moduleNames: names as string[],
      onlyOptimizeLora: bool(`${where}.lora.onlyOptimizeLora`, l.onlyOptimizeLora), lr: num(`${where}.lora.lr`, l.lr),
    };
  }
  const baseLr = num(`${where}.lr`, training.lr);
  return {
    model: args.model,
    seed,
    dropout: bool(`${where}.dropout`, training.dropout),
    // Present only when on, so that the options of runs without it read as before.
    ...(bool(`${where}.gradientCheckpointing`, training.gradientCheckpointing) ? { gradientCheckpointing: true } : {}),
    lora,
    baseLr: baseLr > 0 ? baseLr : null,
    ...nonFinite,
  };
}

/** The actor's args.ema: the moving average's beta; 0 or absent (an actor that never trains PPO): none. */
export function emaBeta(args: Args): number {
  if (args.ema === undefined) return 0;
  const beta = num('actor: args.ema', args.ema);
  if (beta < 0 || beta > 1) throw new Error(`actor: args.ema must be in [0, 1], got ${beta}`);
  return beta;
}

/** Sets this process's kernel threads (args.threads when the plan gives fewer than the cores) and reads the engine options. */
export function roleSetup(ctx: RoleContext): EngineOptions {
  const t = ctx.args.threads;
  if (t !== undefined && !(typeof t === 'number' && Number.isInteger(t) && t > 0)) throw new Error(`${ctx.role}: args.threads must be a positive integer, got ${JSON.stringify(t)}`);
  native.setThreads(t ?? Math.max(1, ctx.threads));
  return engineOptions(ctx.role, ctx.args);
}
