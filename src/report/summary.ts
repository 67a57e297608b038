// The run's `summary.json`: the figures a user wants from the demo at a
// glance. The pipeline writes it (the demo adds its gold figures, computed by
// its own scorer); the report only reads it, and shows no gold score the run
// did not record. Every field is optional so that a partial run still gets a
// report; a field of the wrong type is reported by name and left out.
import { readFileSync, writeFileSync } from 'node:fs';

/** The gold scores of a set of answers, as the demo's scorer sums them up (src/demo/gold.ts). */
export interface GoldFigures {
  count: number;
  meanScore: number;
  meanPerWord: number;
  /** Share of answers scoring above 0, and below 0. */
  sharePositive: number;
  shareNegative: number;
  meanWords: number;
  meanRepetition: number;
  meanRepeatedWords: number;
}

export interface SampleAnswer {
  prompt: string;
  before: string;
  after: string;
  gold_before?: number;
  gold_after?: number;
}

export interface RunSummary {
  /** Gold scores of the policy's answers to the held-out prompts, before and after PPO. */
  gold?: { before?: GoldFigures; after?: GoldFigures };
  /** Mean learned reward of those answers, before and after PPO. */
  reward?: { before?: number; after?: number };
  /** Reward model: held-out pairwise accuracy and the number of pairs it was trained on. */
  rm?: { accuracy?: number; pairs?: number };
  /** KL to the reference at the last PPO step (nats per answer). */
  kl?: { final?: number };
  /** Wall times in seconds: per PPO step (mean), per phase and for the whole run. */
  time?: { per_step_s?: number; total_s?: number; phases_s?: Record<string, number> };
  /** A few held-out prompts with the policy's answers before and after PPO. */
  samples?: SampleAnswer[];
  /** Anything else the run records, e.g. seed and settings; shown as a list. */
  [other: string]: unknown;
}

export interface SummaryFile {
  summary: RunSummary;
  problems: string[];
}

const isNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v);

/** Checks the known fields' types; `path` names the file in problem messages. */
export function parseSummary(text: string, path: string): SummaryFile {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (err) {
    return { summary: {}, problems: [`${path}: not valid JSON (${(err as Error).message})`] };
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    return { summary: {}, problems: [`${path}: expected a JSON object`] };
  }
  const summary = { ...(obj as RunSummary) };
  const problems: string[] = [];
  const numbers: [string, string][] = [
    ['reward', 'before'], ['reward', 'after'], ['rm', 'accuracy'], ['rm', 'pairs'], ['kl', 'final'],
    ['time', 'per_step_s'], ['time', 'total_s'],
  ];
  for (const [group, field] of numbers) {
    const g = summary[group] as Record<string, unknown> | undefined;
    if (g === undefined) continue;
    if (typeof g !== 'object' || g === null) {
      problems.push(`${path}: field '${group}' must be an object; skipped`);
      delete summary[group];
      continue;
    }
    if (field in g && !isNum(g[field])) {
      problems.push(`${path}: field '${group}.${field}' must be a number, got ${JSON.stringify(g[field])}; skipped`);
      summary[group] = { ...g, [field]: undefined };
    }
  }
  if (summary.samples !== undefined) {
    const ok = Array.isArray(summary.samples) && summary.samples.every(
      (s) => typeof s === 'object' && s !== null && typeof s.prompt === 'string' && typeof s.before === 'string' && typeof s.after === 'string',
    );
    if (!ok) {
      problems.push(`${path}: field 'samples' must be a list of {prompt, before, after} strings; skipped`);
      delete summary.samples;
    }
  }
  return { summary, problems };
}

/** Reads summary.json. */
export function readSummary(path: string): SummaryFile {
  return parseSummary(readFileSync(path, 'utf8'), path);
}

/** Writes summary.json, pretty-printed. */
export function writeSummary(path: string, summary: RunSummary): void {
  writeFileSync(path, JSON.stringify(summary, null, 2) + '\n');
}
