// A tiny world for end-to-end runs: preference pairs whose chosen answer has
// a learnable property (more words from a "positive" set than the rejected
// one), a small byte-level BPE trained on them (src/demo/bpe.ts), and a tiny
// random GPT-2 (src/models/init.ts) that uses it. The SFT policy learns the
// answer format with a mix of words; the reward model learns to count the
// positive ones; PPO can then raise the share of positive words.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { trainBpe } from '../../src/demo/bpe.js';
import { mulberry32 } from '../../src/demo/rng.js';
import { writeTokenizer } from '../../src/demo/tokenizer-json.js';
import { initModelFolder } from '../../src/models/init.js';

export const POSITIVE = ['good', 'nice', 'great', 'happy'];
export const NEGATIVE = ['bad', 'sad', 'poor', 'ugly'];
const NOUNS = ['cat', 'dog', 'house', 'tree', 'car', 'river', 'book', 'song', 'city', 'garden', 'road', 'lamp'];
const EOT = '<|endoftext|>';

export interface TinyRun {
  model: string;
  data: string;
}

/** The share of an answer's words that are positive, ignoring everything else. */
export function positiveShare(text: string): number {
  const words = text.toLowerCase().match(/[a-z]+/g) ?? [];
  const scored = words.filter((w) => POSITIVE.includes(w) || NEGATIVE.includes(w));
  return scored.length ? scored.filter((w) => POSITIVE.includes(w)).length / scored.length : 0;
}

function answer(noun: string, rand: () => number): { text: string; positives: number } {
  let positives = 0;
  const words = Array.from({ length: 3 }, () => {
    const pos = rand() < 0.5;
    if (pos) positives++;
    const set = pos ? POSITIVE : NEGATIVE;
    return set[Math.floor(rand() * set.length)];
  });
  return { text: ` The ${noun} is ${words[0]} and ${words[1]} and ${words[2]}.`, positives };
}

/** Writes <dir>/model (config, weights, tokenizer) and <dir>/pairs.jsonl with `rows` preference pairs. */
export function makeTinyRun(dir: string, opts: { rows: number; seed: number; hidden?: number; layers?: number }): TinyRun {
  const rand = mulberry32(opts.seed);
  const lines: string[] = [];
  const texts: string[] = [];
  for (let i = 0; i < opts.rows; i++) {
    const noun = NOUNS[Math.floor(rand() * NOUNS.length)];
    let a = answer(noun, rand), b = answer(noun, rand);
    while (a.positives === b.positives) b = answer(noun, rand);
    if (a.positives < b.positives) [a, b] = [b, a];
    const prompt = `Tell me about the ${noun}.`;
    lines.push(JSON.stringify({ prompt, chosen: a.text, rejected: b.text }));
    texts.push(`Human: ${prompt} Assistant:${a.text}`, b.text);
  }
  mkdirSync(dir, { recursive: true });
  const data = join(dir, 'pairs.jsonl');
  writeFileSync(data, lines.join('\n') + '\n');
  const bpe = trainBpe(texts, { vocabSize: 320, specialTokens: [EOT] });
  const model = join(dir, 'model');
  initModelFolder(model, { modelType: 'gpt2', layers: opts.layers ?? 2, hidden: opts.hidden ?? 64, heads: 4, vocab: bpe.vocab.size, maxPositions: 64, seed: opts.seed });
  // The model's own GPT-2 tokenizer is replaced by the BPE trained on this data.
  writeTokenizer(model, bpe, { modelMaxLength: 64, bosToken: EOT, eosToken: EOT, padToken: EOT });
  return { model, data };
}
