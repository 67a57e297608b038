// Number flags of `quartet chat` and `quartet eval`, checked and named in errors.

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
