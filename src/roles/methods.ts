// The request meta of every role method (docs/roles.md), as one table that is
// both the TypeScript type the coordinator's drivers send and the check a
// role applies where a request enters it. Every key is required: a per-call
// knob has one default, in src/config/defaults.ts, and the coordinator sends
// it; a role that finds a key missing names role, method and key instead of
// guessing. This module imports nothing, so both src/coordinator and
// actors/ may use it without crossing a boundary (ARCHITECTURE.md §8).

interface NumberKey {
  kind: 'number';
  min: number;
  /** Strictly above min (a DPO beta of 0 would divide the loss away). */
  aboveMin?: boolean;
  max?: number;
  integer?: boolean;
}
/** A list with one entry per row of the request's tensors (the caller checks the count against B). */
type ListKey = { kind: 'strings' } | { kind: 'bools' };
type Key = NumberKey | { kind: 'bool' } | { kind: 'string' } | ListKey;

const num = (min: number, o: Omit<NumberKey, 'kind' | 'min'> = {}) => ({ kind: 'number', min, ...o }) as const;
const int = (min: number) => ({ kind: 'number', min, integer: true }) as const;
const bool = { kind: 'bool' } as const;
const str = { kind: 'string' } as const;
const strs = { kind: 'strings' } as const;
const bools = { kind: 'bools' } as const;

/** One optimizer step: the schedule's lr for this step, AdamW decay, global-norm clip (0: off), rows per micro-batch (0: all). */
const step = { lr: num(0), weightDecay: num(0), gradClip: num(0), microBatch: int(0) } as const;
const dpo = { beta: num(0, { aboveMin: true }), labelSmoothing: num(0, { max: 0.5 }) } as const;
/** `save` and `load` of a trainable role; optimizer: with the optimizer state (for resuming). */
const checkpoint = { save: { dir: str, optimizer: bool }, load: { dir: str, optimizer: bool } } as const;

export const roleMethods = {
  actor: {
    // temperature 0: greedy; topK 0: off; topP 1: off.
    generate: { maxNewTokens: int(1), temperature: num(0), topK: int(0), topP: num(0, { max: 1 }), seed: int(0) },
    logprobs: {},
    train_sft: step,
    eval_sft: {},
    train_ppo: { ...step, clipRange: num(0), ptxCoef: num(0) },
    train_dpo: { ...step, ...dpo },
    eval_dpo: dpo,
    ...checkpoint,
    /** The moving average of the weights (an actor started with args.ema > 0), as a model folder. */
    save_ema: { dir: str },
  },
  critic: {
    values: {},
    train_value: { ...step, clipRangeValue: num(0) },
    ...checkpoint,
  },
  reference: { logprobs: {} },
  reward: {
    // Per row b: the decoded prompt, the decoded answer (no pads, no end token)
    // and whether the answer ended with the end token (false: cut at
    // maxNewTokens). Text-based scorers read these; model scorers read the ids.
    score: { promptLength: int(0), prompts: strs, answers: strs, eos: bools },
    train_rm: step,
    eval_rm: {},
    ...checkpoint,
  },
} as const satisfies Record<string, Record<string, Record<string, Key>>>;

type Table = typeof roleMethods;
export type RoleName = keyof Table;
export type MethodName<R extends RoleName> = keyof Table[R] & string;
type ValueOf<K> = K extends { kind: 'number' } ? number : K extends { kind: 'bool' } ? boolean
  : K extends { kind: 'strings' } ? string[] : K extends { kind: 'bools' } ? boolean[] : string;
/** The meta a call of `role`.`method` carries. */
export type MetaOf<R extends RoleName, M extends MethodName<R>> = { -readonly [K in keyof Table[R][M]]: ValueOf<Table[R][M][K]> };

function describe(k: Key): string {
  if (k.kind === 'bool') return 'true or false';
  if (k.kind === 'string') return 'a non-empty string';
  if (k.kind === 'strings') return 'a list of strings, one per row';
  if (k.kind === 'bools') return 'a list of true/false, one per row';
  const what = k.integer ? 'an integer' : 'a number';
  const lo = k.min === -Infinity ? '' : ` ${k.aboveMin ? '>' : '>='} ${k.min}`;
  return `${what}${lo}${k.max === undefined ? '' : ` <= ${k.max}`}`;
}

function fits(k: Key, v: unknown): boolean {
  if (k.kind === 'bool') return typeof v === 'boolean';
  if (k.kind === 'string') return typeof v === 'string' && v.length > 0;
  if (k.kind === 'strings') return Array.isArray(v) && v.every((x) => typeof x === 'string');
  if (k.kind === 'bools') return Array.isArray(v) && v.every((x) => typeof x === 'boolean');
  return typeof v === 'number' && Number.isFinite(v) && (k.aboveMin ? v > k.min : v >= k.min)
    && (k.max === undefined || v <= k.max) && (!k.integer || Number.isInteger(v));
}

/**
 * The checked meta of a call: every key of the method's row present and of
 * its kind, and no other key (a misspelt knob would otherwise be ignored).
 */
export function readMeta<R extends RoleName, M extends MethodName<R>>(role: R, method: M, meta: Record<string, unknown>): MetaOf<R, M> {
  const spec = (roleMethods[role] as Record<string, Record<string, Key>>)[method];
  if (!spec) throw new Error(`${role}.${method}: not a method of the ${role} role (docs/roles.md)`);
  for (const key of Object.keys(meta)) {
    if (!(key in spec)) throw new Error(`${role}.${method}: meta.${key} is not a setting of this method (it takes ${Object.keys(spec).join(', ') || 'none'})`);
  }
  for (const [key, k] of Object.entries(spec)) {
    const v = meta[key];
    if (v === undefined || v === null) throw new Error(`${role}.${method}: meta.${key} is required (${describe(k)})`);
    if (!fits(k, v)) throw new Error(`${role}.${method}: meta.${key} must be ${describe(k)}, got ${JSON.stringify(v).slice(0, 80)}`);
  }
  return meta as MetaOf<R, M>;
}

/** Per-row meta lists (e.g. score's prompts, answers, eos) must have one entry per row of the tensors. */
export function checkRows<R extends RoleName, M extends MethodName<R>>(role: R, method: M, meta: MetaOf<R, M>, rows: number): void {
  const spec = (roleMethods[role] as Record<string, Record<string, Key>>)[method];
  for (const [key, k] of Object.entries(spec)) {
    const v = (meta as Record<string, unknown>)[key];
    if ((k.kind === 'strings' || k.kind === 'bools') && (v as unknown[]).length !== rows)
      throw new Error(`${role}.${method}: meta.${key} has ${(v as unknown[]).length} entries for ${rows} rows`);
  }
}
