// Generation of one sequence that hands each token to a callback as soon as it
// is chosen, so `quartet chat` can print an answer while it is being written:
// generate() with B = 1 and its onToken hook, so both give the same tokens for
// the same seed (test/cli/chat.test.ts checks it).
import type { Rng } from '../tensor/index.js';
import { generate } from '../models/generate.js';
import type { Transformer } from '../models/transformer.js';

export interface StreamOptions {
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Token ids that end the answer (the EOS is passed to onToken, then generation stops). */
  eosTokenIds: readonly number[];
}

/**
 * Generates after `prompt` until an EOS, maxNewTokens, or onToken returning
 * false. Returns the generated ids (an EOS included when it ended the answer).
 * `rng` is shared across calls, so a chat's answers continue one random stream.
 */
export function streamGenerate(model: Transformer, prompt: readonly number[], opts: StreamOptions, rng: Rng, onToken: (id: number) => boolean): number[] {
  const n = opts.maxNewTokens;
  if (prompt.length === 0) throw new Error('stream: the prompt has no tokens');
  // The chat's budget is the model's positions for every family, rotary ones included.
  if (prompt.length + n > model.cfg.maxPositions) {
    throw new Error(`stream: prompt (${prompt.length}) + max new tokens (${n}) exceed the model's ${model.cfg.maxPositions} positions`);
  }
  const { temperature, topK, topP } = opts;
  const out = generate(model, Int32Array.from(prompt), null, 1, prompt.length, {
    maxNewTokens: n,
    temperature,
    topK,
    topP,
    eosTokenId: [...opts.eosTokenIds],
    rng,
    onToken: (_step, tokens) => onToken(tokens[0]),
  });
  return Array.from(out.sequences.subarray(prompt.length));
}
