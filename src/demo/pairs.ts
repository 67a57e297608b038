// Preference pairs for the reward model: the SFT policy answers each prompt
// twice, and the gold scorer (AFINN) labels the more positive answer chosen.
// Ties carry no preference and are dropped, as are pairs of equal answers.
// Rows are DeepSpeed-Chat's local format, one JSON object per line.
import { writeFileSync } from 'node:fs';
import { goldScore } from './gold.js';

export interface PreferenceRow {
  prompt: string;
  chosen: string;
  rejected: string;
}

export interface SampledPair {
  prompt: string;
  /** Two answers sampled from the same policy for this prompt. */
  answers: readonly string[];
}

export interface LabelledPairs {
  rows: PreferenceRow[];
  /** Pairs dropped because both answers scored the same. */
  ties: number;
  /** Mean gold score of the chosen minus the rejected answers, over the kept rows. */
  meanGap: number;
}

/** Labels each pair by gold score: the higher-scoring answer is chosen. */
export function labelPairs(pairs: readonly SampledPair[]): LabelledPairs {
  const rows: PreferenceRow[] = [];
  let ties = 0;
  let gap = 0;
  pairs.forEach((p, i) => {
    if (typeof p.prompt !== 'string' || !Array.isArray(p.answers) || p.answers.length !== 2 || p.answers.some((a) => typeof a !== 'string')) {
      throw new Error(`labelPairs: pair ${i} must have a string prompt and exactly two string answers`);
    }
    const [a, b] = p.answers;
    const sa = goldScore(a).score, sb = goldScore(b).score;
    if (sa === sb) {
      ties++;
      return;
    }
    rows.push(sa > sb ? { prompt: p.prompt, chosen: a, rejected: b } : { prompt: p.prompt, chosen: b, rejected: a });
    gap += Math.abs(sa - sb);
  });
  return { rows, ties, meanGap: rows.length > 0 ? gap / rows.length : 0 };
}

/** Rows as JSON Lines, one `{prompt, chosen, rejected}` object per line. */
export function toJsonl(rows: readonly object[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length > 0 ? '\n' : '');
}

/** Writes rows as a JSONL file (DeepSpeed-Chat local format). */
export function writeJsonl(path: string, rows: readonly object[]): void {
  writeFileSync(path, toJsonl(rows));
}
