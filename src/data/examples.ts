// The examples each step trains on, assembled from tokenised rows with the
// length limits applied: SFT sequences (prompt + chosen answer), RM pairs
// (prompt + chosen, prompt + rejected) and PPO prompts. Prompts longer than
// data.maxPromptLen lose their beginning but keep the tokenizer's special
// prefix (e.g. OPT's </s>); answers longer than data.maxAnswerLen lose their end.
import { chosenIds, promptIds, rejectedIds, type TokenTable } from './token-table.js';

/** Variable-length token sequences, flat: sequence i is ids[offsets[i] .. offsets[i+1]]. */
export interface Sequences {
  n: number;
  offsets: Int32Array;
  ids: Int32Array;
}

export function sequence(s: Sequences, i: number): Int32Array {
  return s.ids.subarray(s.offsets[i], s.offsets[i + 1]);
}

function toSequences(rows: Int32Array[]): Sequences {
  const offsets = new Int32Array(rows.length + 1);
  rows.forEach((r, i) => (offsets[i + 1] = offsets[i] + r.length));
  const ids = new Int32Array(offsets[rows.length]);
  rows.forEach((r, i) => ids.set(r, offsets[i]));
  return { n: rows.length, offsets, ids };
}

/** SFT: prompt + chosen answer; the first promptLens[i] tokens of sequence i are the prompt. */
export interface SftExamples {
  seqs: Sequences;
  promptLens: Int32Array;
}

/** RM: two sequences sharing a prompt of promptLens[i] tokens. */
export interface RmPairs {
  chosen: Sequences;
  rejected: Sequences;
  promptLens: Int32Array;
}

/** PPO: prompts only (the actor writes the answers). */
export interface PpoPrompts {
  prompts: Sequences;
}

export interface Limits {
  maxPromptLen: number;
  maxAnswerLen: number;
  /** Ids the tokenizer puts before every text (kept when a prompt is cut). */
  specialPrefix: readonly number[];
}

/** What assembling did to the data, for the log. */
export interface AssembleStats {
  promptsTruncated: number;
  answersTruncated: number;
  /** Rows left out of RM because they have no rejected answer. */
  withoutRejected: number;
}

function cutPrompt(p: Int32Array, lim: Limits, stats: AssembleStats): Int32Array {
  if (p.length <= lim.maxPromptLen) return p;
  stats.promptsTruncated++;
  const pre = lim.specialPrefix.length;
  if (lim.maxPromptLen <= pre) throw new Error(`data.maxPromptLen = ${lim.maxPromptLen} leaves no room after the tokenizer's ${pre} special prefix token(s)`);
  const out = new Int32Array(lim.maxPromptLen);
  out.set(lim.specialPrefix);
  out.set(p.subarray(p.length - (lim.maxPromptLen - pre)), pre);
  return out;
}

function cutAnswer(a: Int32Array, lim: Limits, stats: AssembleStats): Int32Array {
  if (a.length <= lim.maxAnswerLen) return a;
  stats.answersTruncated++;
  return a.subarray(0, lim.maxAnswerLen);
}

function joined(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function newStats(): AssembleStats {
  return { promptsTruncated: 0, answersTruncated: 0, withoutRejected: 0 };
}

export function sftExamples(t: TokenTable, lim: Limits): { examples: SftExamples; stats: AssembleStats } {
  const stats = newStats();
  const rows: Int32Array[] = [];
  const promptLens = new Int32Array(t.n);
  for (let i = 0; i < t.n; i++) {
    const p = cutPrompt(promptIds(t, i), lim, stats);
    rows.push(joined(p, cutAnswer(chosenIds(t, i), lim, stats)));
    promptLens[i] = p.length;
  }
  return { examples: { seqs: toSequences(rows), promptLens }, stats };
}

export function rmPairs(t: TokenTable, lim: Limits): { examples: RmPairs; stats: AssembleStats } {
  const stats = newStats();
  const chosen: Int32Array[] = [], rejected: Int32Array[] = [], lens: number[] = [];
  for (let i = 0; i < t.n; i++) {
    const r = rejectedIds(t, i);
    if (r === null) {
      stats.withoutRejected++;
      continue;
    }
    const p = cutPrompt(promptIds(t, i), lim, stats);
    chosen.push(joined(p, cutAnswer(chosenIds(t, i), lim, stats)));
    rejected.push(joined(p, cutAnswer(r, lim, stats)));
    lens.push(p.length);
  }
  return { examples: { chosen: toSequences(chosen), rejected: toSequences(rejected), promptLens: Int32Array.from(lens) }, stats };
}

export function ppoPrompts(t: TokenTable, lim: Limits): { examples: PpoPrompts; stats: AssembleStats } {
  const stats = newStats();
  const rows: Int32Array[] = [];
  for (let i = 0; i < t.n; i++) rows.push(cutPrompt(promptIds(t, i), lim, stats));
  return { examples: { prompts: toSequences(rows) }, stats };
}
