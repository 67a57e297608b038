// One preference row of a dataset, where it came from, and the checking that
// turns a malformed row into a report naming its file and line (or parquet
// row) instead of silent garbage.

export interface RowOrigin {
  file: string;
  /** 1-based line of a JSON/JSONL file, or 1-based row of a parquet file. */
  line: number;
  /** 'line' for text files, 'row' for parquet. */
  unit: 'line' | 'row';
}

export function where(o: RowOrigin): string {
  return o.unit === 'line' ? `${o.file}:${o.line}` : `${o.file}: row ${o.line}`;
}

/** A dataset row: DeepSpeed-Chat's prompt / chosen / rejected. */
export interface RawRow {
  prompt: string;
  chosen: string;
  /** null when the dataset has no rejected answer (usable for SFT and PPO, not RM). */
  rejected: string | null;
  origin: RowOrigin;
}

export class BadRowError extends Error {
  constructor(readonly origin: RowOrigin, readonly reason: string) {
    super(`${where(origin)}: ${reason}`);
    this.name = 'BadRowError';
  }
}

/**
 * Checks a parsed record and makes a RawRow of it. `prompt` and `chosen` must
 * be non-empty strings; `rejected` is optional but, when present, a string.
 * Other columns (e.g. Dahoas' `response`) are ignored.
 */
export function toRow(value: unknown, origin: RowOrigin): RawRow {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadRowError(origin, `expected an object with prompt/chosen/rejected, got ${Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'null' : typeof value}`);
  }
  const rec = value as Record<string, unknown>;
  for (const key of ['prompt', 'chosen'] as const) {
    if (!(key in rec) || rec[key] === null || rec[key] === undefined) throw new BadRowError(origin, `missing '${key}'`);
    if (typeof rec[key] !== 'string') throw new BadRowError(origin, `'${key}' must be a string, got ${typeof rec[key]}`);
    if ((rec[key] as string).trim() === '') throw new BadRowError(origin, `'${key}' is empty`);
  }
  const rejected = rec.rejected ?? null;
  if (rejected !== null && typeof rejected !== 'string') throw new BadRowError(origin, `'rejected' must be a string, got ${typeof rejected}`);
  return { prompt: rec.prompt as string, chosen: rec.chosen as string, rejected, origin };
}

/** Collects bad rows under the 'skip' policy, or throws the first under 'error'. */
export class BadRows {
  readonly skipped: BadRowError[] = [];
  constructor(readonly policy: 'error' | 'skip') {}

  report(err: BadRowError): void {
    if (this.policy === 'error') throw err;
    this.skipped.push(err);
  }

  /** A short summary for the log: the count and the first few places. */
  summary(max = 5): string {
    if (this.skipped.length === 0) return 'no bad rows';
    const first = this.skipped.slice(0, max).map((e) => `  ${e.message}`).join('\n');
    const more = this.skipped.length > max ? `\n  ... and ${this.skipped.length - max} more` : '';
    return `skipped ${this.skipped.length} bad row(s):\n${first}${more}`;
  }
}
