// DeepSpeed-Chat's prompt_eval: the same prompts answered by a baseline and a
// fine-tuned model, greedy unless sampling is asked for. Prompts come from a
// file (one per line in .txt; a "prompt" field per line in .jsonl) or the
// built-in set, and are formatted as in training (src/data/format.ts).
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { answerText, decodeIds, stopMarkers } from '../chat/answer.js';
import { type ChatFormat, Conversation } from '../chat/conversation.js';
import { loadModel } from '../models/checkpoint.js';
import { generate } from '../models/generate.js';
import { QTokenizer, padBatch } from '../models/tokenizer.js';

/** DeepSpeed-Chat's prompt_eval.py English prompts, without their "Human: ... Assistant:" wrapping. */
export const BUILTIN_PROMPTS = [
  'Please tell me about Microsoft in a few sentence?',
  'Explain the moon landing to a 6 year old in a few sentences.',
  'Write a short poem about a wise frog.',
  'Who was president of the United States in 1955?',
  'How does a telescope work?',
  'Why do birds migrate south for the winter?',
];

/** Prompts of a .txt file (one a line, blank lines skipped) or a .jsonl file ({"prompt": ...} a line). */
export function readPrompts(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`eval prompts: cannot read ${file}: ${(err as Error).message}`);
  }
  const jsonl = extname(file).toLowerCase() === '.jsonl';
  const prompts: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    if (!jsonl) {
      prompts.push(line);
      return;
    }
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (err) {
      throw new Error(`${file}:${i + 1}: not JSON: ${(err as Error).message}`);
    }
    const p = (rec as Record<string, unknown> | null)?.prompt;
    if (typeof p !== 'string' || p.trim() === '') throw new Error(`${file}:${i + 1}: expected an object with a non-empty string 'prompt'`);
    prompts.push(p);
  });
  if (prompts.length === 0) throw new Error(`eval prompts: ${file} holds no prompts`);
  return prompts;
}

export interface AnswerOptions {
  format: ChatFormat;
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed: number;
  /** Prompts generated together (left-padded). */
  batchSize: number;
}

/** The answers of the model in `dir` to each prompt, in order. */
export function answerPrompts(dir: string, prompts: readonly string[], o: AnswerOptions): string[] {
  const tok = QTokenizer.load(dir);
  const model = loadModel(dir);
  try {
    const budget = model.cfg.maxPositions - o.maxNewTokens;
    if (budget < 1) throw new Error(`eval prompts: --max-new-tokens ${o.maxNewTokens} leaves no room for a prompt in the ${model.cfg.maxPositions} positions of ${dir}`);
    const eosIds = tok.eosId !== null ? [tok.eosId] : model.cfg.eosTokenIds;
    const markers = stopMarkers(o.format.template, o.format.eot);
    const fresh = new Conversation(o.format);
    const answers: string[] = [];
    for (let start = 0; start < prompts.length; start += o.batchSize) {
      const rows = prompts.slice(start, start + o.batchSize).map((p) => fresh.fit(tok, p, budget).ids);
      const batch = padBatch(rows, tok.padId, { padding: 'left' });
      const r = generate(model, batch.ids, batch.mask, batch.B, batch.T, {
        maxNewTokens: o.maxNewTokens, temperature: o.temperature, topK: o.topK, topP: o.topP,
        seed: o.seed + start, eosTokenId: eosIds, padTokenId: tok.padId,
      });
      for (let b = 0; b < batch.B; b++) {
        const ids: number[] = [];
        for (let s = 0; s < r.newTokens; s++) {
          const at = b * r.T + r.promptLength + s;
          if (!r.mask[at] || eosIds.includes(r.sequences[at])) break;
          ids.push(r.sequences[at]);
        }
        answers.push(answerText(decodeIds(tok, ids), markers).text);
      }
    }
    return answers;
  } finally {
    model.dispose();
  }
}
