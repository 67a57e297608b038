// Reads a run's `metrics.jsonl`: one JSON object per line,
//   {"phase": "pretrain" | "sft" | "rm" | "ppo" | "dpo", "step": 12, "loss": 2.31, ...}
// where every other field is a figure (a number, or null for "not measured").
// Known PPO figures: reward, gold, gold_per_word, repetition, answer_len, kl,
// policy_loss, value_loss, clip_frac, value_clip_frac, time_generate,
// time_experience, time_train, tokens_per_s; other steps: loss, accuracy, lr,
// tokens_per_s. Unknown figures are charted too.
//
// A run that dies mid-write leaves a torn last line, and a report is most
// wanted then: bad lines and fields are collected as `file:line: problem`
// messages and skipped, rather than stopping the report.
import { readFileSync } from 'node:fs';

export const phases = ['pretrain', 'sft', 'rm', 'ppo', 'dpo'] as const;
export type Phase = (typeof phases)[number];

export interface MetricRow {
  phase: Phase;
  step: number;
  /** Figures by name; null where the run recorded no value. */
  figures: Record<string, number | null>;
}

export interface MetricsFile {
  rows: MetricRow[];
  /** Supervision events (a role lost and restored, ...): lines with an 'event' field, not charted. */
  events: Record<string, unknown>[];
  /** `path:line: what is wrong`, in file order. */
  problems: string[];
}

/** Fields that may hold text besides the figures (a clock time, a note); not charted. */
const textFields = new Set(['time', 'timestamp', 'note']);

/** Parses metrics text; `path` names the file in problem messages. */
export function parseMetrics(text: string, path: string): MetricsFile {
  const rows: MetricRow[] = [];
  const events: Record<string, unknown>[] = [];
  const problems: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const where = `${path}:${i + 1}`;
    if (line.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      problems.push(`${where}: not valid JSON (${(err as Error).message})`);
      return;
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      problems.push(`${where}: expected a JSON object, got ${Array.isArray(obj) ? 'an array' : typeof obj}`);
      return;
    }
    const rec = obj as Record<string, unknown>;
    if (!phases.includes(rec.phase as Phase)) {
      problems.push(`${where}: field 'phase' must be one of ${phases.join(', ')}, got ${JSON.stringify(rec.phase)}`);
      return;
    }
    if (!(typeof rec.step === 'number' && Number.isInteger(rec.step) && rec.step >= 0)) {
      problems.push(`${where}: field 'step' must be a non-negative integer, got ${JSON.stringify(rec.step)}`);
      return;
    }
    if (typeof rec.event === 'string') {
      events.push(rec);
      return;
    }
    const figures: Record<string, number | null> = {};
    for (const [key, value] of Object.entries(rec)) {
      if (key === 'phase' || key === 'step') continue;
      if (typeof value === 'string' && textFields.has(key)) continue;
      if (value === null || typeof value === 'number') figures[key] = value;
      else problems.push(`${where}: field '${key}' must be a number or null, got ${JSON.stringify(value)}; skipped`);
    }
    rows.push({ phase: rec.phase as Phase, step: rec.step, figures });
  });
  return { rows, events, problems };
}

/** Reads and parses a metrics.jsonl file. */
export function readMetrics(path: string): MetricsFile {
  return parseMetrics(readFileSync(path, 'utf8'), path);
}

/** The [step, value] points of one figure in one phase, in step order. */
export function seriesOf(rows: readonly MetricRow[], phase: Phase, figure: string): [number, number | null][] {
  return rows
    .filter((r) => r.phase === phase && figure in r.figures)
    .map((r): [number, number | null] => [r.step, r.figures[figure]])
    .sort((a, b) => a[0] - b[0]);
}

/** Names of the figures present in a phase, in first-seen order. */
export function figuresOf(rows: readonly MetricRow[], phase: Phase): string[] {
  const names = new Set<string>();
  for (const r of rows) if (r.phase === phase) for (const k of Object.keys(r.figures)) names.add(k);
  return [...names];
}
