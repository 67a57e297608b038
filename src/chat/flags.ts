// Number flags of `quartet chat` and `quartet eval`, checked and named in errors.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** Flag `--name` as a number when given; `check` failing is an error naming the flag and `what` it must be. */
export function numberFlag(cmd: string, values: FlagValues, name: string, check: (n: number) => boolean, what: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !check(n)) throw new Error(`${cmd}: --${name} must be ${what}, got '${String(raw)}'`);
  return n;
}

/** The sampling flags shared by chat and eval prompts; none given means greedy. */
export function samplingFlags(cmd: string, values: FlagValues): { temperature?: number; topK?: number; topP?: number; seed: number } {
  return {
    temperature: numberFlag(cmd, values, 'temperature', (n) => n > 0, 'a number > 0'),
    topK: numberFlag(cmd, values, 'top-k', (n) => Number.isInteger(n) && n >= 0, 'a non-negative integer'),
    topP: numberFlag(cmd, values, 'top-p', (n) => n > 0 && n <= 1, 'in (0, 1]'),
    seed: numberFlag(cmd, values, 'seed', (n) => Number.isInteger(n) && n >= 0, 'a non-negative integer') ?? 0,
  };
}

export const SAMPLING_OPTIONS = {
  temperature: { type: 'string' }, 'top-k': { type: 'string' }, 'top-p': { type: 'string' }, seed: { type: 'string' },
} as const;

/**
 * The reason `dir` cannot be talked to, or null: it must be a folder with the
 * model's config.json and tokenizer.json (checked before any weights load).
 */
export function modelFolderProblem(cmd: string, flag: string, dir: string): string | null {
  if (!existsSync(dir)) return `${cmd}: ${flag} ${dir} does not exist`;
  if (!statSync(dir).isDirectory()) return `${cmd}: ${flag} ${dir} is not a folder (give a model folder with config.json and tokenizer.json)`;
  for (const f of ['config.json', 'tokenizer.json']) {
    if (!existsSync(join(dir, f))) return `${cmd}: ${flag} ${dir} holds no ${f}; a model folder needs config.json, the weights and tokenizer.json`;
  }
  return null;
}

/**
 * The answer length of chat and eval prompts: the flag when given (an error
 * naming it when it leaves no room for a prompt in `positions`), else the
 * default, shrunk to half the model's positions where it does not fit, with a note.
 */
export function newTokensFor(cmd: string, given: number | undefined, dflt: number, positions: number, note: (line: string) => void): number {
  if (given !== undefined) {
    if (given >= positions) throw new Error(`${cmd}: --max-new-tokens ${given} leaves no room for a prompt in the model's ${positions} positions; give at most ${positions - 1}`);
    return given;
  }
  if (dflt <= Math.floor(positions / 2)) return dflt;
  const fitted = Math.max(1, Math.floor(positions / 2));
  note(`(answers of at most ${fitted} tokens, half the model's ${positions} positions; --max-new-tokens sets it)`);
  return fitted;
}
