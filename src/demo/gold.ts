// The demo's gold scorer: AFINN-165 sentiment through the `sentiment` package,
// a judge that nobody here wrote. It sums word valences (-5..+5) and flips the
// sign of a word that follows a negator ("not good" scores -3). Because it sums,
// longer answers and repeated positive words score higher: the per-word score
// and the repetition rates beside it show when a policy games that.
import { createRequire } from 'node:module';
import type { GoldFigures, RunSummary } from '../report/summary.js';

interface SentimentResult {
  score: number;
  tokens: string[];
  positive: string[];
  negative: string[];
}
interface SentimentAnalyzer {
  analyze(text: string): SentimentResult;
}

const require = createRequire(import.meta.url);
const Sentiment = require('sentiment') as new () => SentimentAnalyzer;
const analyzer = new Sentiment();

export interface GoldScore {
  /** AFINN sum over the answer's words, after negation flips. */
  score: number;
  /** Words as the scorer splits them (lower case, punctuation removed). */
  words: number;
  /** score / words (0 for an empty answer). */
  perWord: number;
  /** Share of word bigrams that already occurred earlier in the answer. */
  repetition: number;
  /** Share of words that already occurred earlier in the answer. */
  repeatedWords: number;
  /** Words that counted positive and negative (after negation). */
  positive: string[];
  negative: string[];
}

/** Share of the n-grams of `words` that repeat an earlier n-gram (0 when there are none). */
export function repetitionRate(words: readonly string[], n: number): number {
  const total = words.length - n + 1;
  if (total <= 0) return 0;
  const seen = new Set<string>();
  let repeats = 0;
  for (let i = 0; i < total; i++) {
    const gram = words.slice(i, i + n).join(' ');
    if (seen.has(gram)) repeats++;
    else seen.add(gram);
  }
  return repeats / total;
}

/** Scores one answer. */
export function goldScore(text: string): GoldScore {
  const r = analyzer.analyze(text);
  const words = r.tokens.filter((w) => w !== '');
  return {
    score: r.score,
    words: words.length,
    perWord: words.length > 0 ? r.score / words.length : 0,
    repetition: repetitionRate(words, 2),
    repeatedWords: repetitionRate(words, 1),
    positive: r.positive,
    negative: r.negative,
  };
}

/** The gold figures of summary.json (the report reads them from there). */
export type AnswerSummary = GoldFigures;

/** Means and shares of the gold scores of a set of answers. */
export function summariseAnswers(answers: readonly string[]): AnswerSummary {
  if (answers.length === 0) throw new Error('summariseAnswers: no answers to summarise');
  const scores = answers.map(goldScore);
  const mean = (f: (g: GoldScore) => number) => scores.reduce((s, g) => s + f(g), 0) / scores.length;
  return {
    count: scores.length,
    meanScore: mean((g) => g.score),
    meanPerWord: mean((g) => g.perWord),
    sharePositive: mean((g) => (g.score > 0 ? 1 : 0)),
    shareNegative: mean((g) => (g.score < 0 ? 1 : 0)),
    meanWords: mean((g) => g.words),
    meanRepetition: mean((g) => g.repetition),
    meanRepeatedWords: mean((g) => g.repeatedWords),
  };
}

/**
 * The gold part of a summary from the policy's answers to the evaluation
 * prompts before and after PPO (same prompts, same order), with the first
 * `samples` of them as sample answers.
 */
export function goldSummary(prompts: readonly string[], before: readonly string[], after: readonly string[], samples = 6): Pick<RunSummary, 'gold' | 'samples'> {
  if (before.length !== prompts.length || after.length !== prompts.length) {
    throw new Error(`goldSummary: ${prompts.length} prompts but ${before.length} answers before and ${after.length} after`);
  }
  return {
    gold: { before: summariseAnswers(before), after: summariseAnswers(after) },
    samples: prompts.slice(0, samples).map((prompt, i) => ({
      prompt,
      before: before[i],
      after: after[i],
      gold_before: goldScore(before[i]).score,
      gold_after: goldScore(after[i]).score,
    })),
  };
}
