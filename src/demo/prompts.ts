// Prompts for the demo, cut from corpus sentences in DeepSpeed-Chat's
// conversation form: the start of a sentence becomes the request, its
// continuation the answer:
//   prompt: "Human: Continue this: The jury said Assistant:"
//   answer: " it did find that many of Georgia's laws are outmoded."
// The pipeline appends the end-of-conversation token to SFT answers.
//
// Three disjoint sets, all seeded: SFT examples and reward-model prompts come
// from the pre-training documents (the model has read them; the steps teach
// the format and preferences), evaluation prompts from held-out documents.
import type { CorpusSplit } from './corpus.js';
import { sentencesOf } from './corpus.js';
import { mulberry32, shuffled } from './rng.js';

/** The DeepSpeed-Chat style prompt for a sentence start. */
export function continuationPrompt(start: string): string {
  return `Human: Continue this: ${start} Assistant:`;
}

/** A prompt and its reference answer; the answer starts with a space, so `prompt + answer` reads naturally. */
export interface SftExample {
  prompt: string;
  answer: string;
}

export interface PromptOptions {
  /** Tokens of a text under the model's tokenizer; lengths below are in its tokens. */
  countTokens: (text: string) => number;
  /** Longest reference answer (NOTES: 24 fits a 64-token context). */
  maxAnswerTokens: number;
  /** Longest prompt, template included. */
  maxPromptTokens: number;
  /** Words taken as the start of a sentence: from min to max, and never all but the last 3. */
  minStartWords: number;
  maxStartWords: number;
}

export const defaultPromptOptions: Omit<PromptOptions, 'countTokens'> = {
  maxAnswerTokens: 24,
  maxPromptTokens: 32,
  minStartWords: 3,
  maxStartWords: 8,
};

const minAnswerWords = 3;

/**
 * Cuts a sentence into a prompt and answer, or returns null when the sentence
 * does not fit the limits (too short, an answer or prompt too long, or not
 * starting with a capital).
 */
export function sentenceToExample(sentence: string, rand: () => number, opts: PromptOptions): SftExample | null {
  // Brown also splits after colons and semicolons; a lower-case start reads
  // as a fragment, so only sentences that open like one are used.
  if (!/^["(]?[A-Z0-9]/.test(sentence)) return null;
  const words = sentence.split(' ').filter((w) => w !== '');
  const most = Math.min(opts.maxStartWords, words.length - minAnswerWords);
  if (most < opts.minStartWords) return null;
  const k = opts.minStartWords + Math.floor(rand() * (most - opts.minStartWords + 1));
  const prompt = continuationPrompt(words.slice(0, k).join(' '));
  const answer = ' ' + words.slice(k).join(' ');
  if (opts.countTokens(answer) > opts.maxAnswerTokens) return null;
  if (opts.countTokens(prompt) > opts.maxPromptTokens) return null;
  return { prompt, answer };
}

function check(opts: PromptOptions): void {
  for (const key of ['maxAnswerTokens', 'maxPromptTokens', 'minStartWords', 'maxStartWords'] as const) {
    if (!(Number.isInteger(opts[key]) && opts[key] > 0)) throw new Error(`prompts: ${key} must be a positive integer, got ${opts[key]}`);
  }
  if (opts.minStartWords > opts.maxStartWords) {
    throw new Error(`prompts: minStartWords (${opts.minStartWords}) exceeds maxStartWords (${opts.maxStartWords})`);
  }
}

/** Up to `count` examples from the sentences, in a seeded order; fewer only if too few sentences fit. */
export function makeExamples(sentences: readonly string[], count: number, seed: number, opts: PromptOptions): SftExample[] {
  check(opts);
  const rand = mulberry32(seed);
  const out: SftExample[] = [];
  for (const s of shuffled(sentences, rand)) {
    if (out.length >= count) break;
    const ex = sentenceToExample(s, rand, opts);
    if (ex) out.push(ex);
  }
  return out;
}

export interface DemoPromptSets {
  /** Step 1: prompt + reference answer. */
  sft: SftExample[];
  /** Step 2: prompts whose two sampled answers the gold scorer labels; step 3 reuses them for PPO. */
  rm: SftExample[];
  /** Before/after evaluation, from held-out documents (the answers are the corpus's own continuations). */
  eval: SftExample[];
}

/** Draws the demo's prompt sets from a corpus split; exact counts, or an error naming the one that fell short. */
export function makeDemoPrompts(
  split: CorpusSplit,
  counts: { sft: number; rm: number; eval: number },
  seed: number,
  opts: PromptOptions,
): DemoPromptSets {
  const train = makeExamples(sentencesOf(split.pretrain), counts.sft + counts.rm, seed, opts);
  const held = makeExamples(sentencesOf(split.heldOut), counts.eval, seed + 1, opts);
  if (train.length < counts.sft + counts.rm) {
    throw new Error(`makeDemoPrompts: only ${train.length} pre-training sentences fit, but sft + rm ask for ${counts.sft + counts.rm}`);
  }
  if (held.length < counts.eval) {
    throw new Error(`makeDemoPrompts: only ${held.length} held-out sentences fit, but eval asks for ${counts.eval}`);
  }
  return { sft: train.slice(0, counts.sft), rm: train.slice(counts.sft), eval: held };
}
