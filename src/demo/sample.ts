// Answers of the actor role to a list of prompts: the prompts are tokenised
// and left-padded, sent to the actor's `generate` in batches, and the answers
// decoded with the special tokens (the end token, pads) skipped. The demo
// uses it for the preference pairs (step 2) and for the evaluation.
import { i32 } from '../coordinator/driver.js';
import { padBatch, type QTokenizer } from '../models/tokenizer.js';
import type { Roles, WireTensor } from '../runtime/index.js';
import type { MetaOf } from '../roles/methods.js';
import type { BpeEncoder } from './bpe-encoder.js';

export interface GenerateSettings {
  maxNewTokens: number;
  temperature: number;
  seed: number;
}

/** One generated batch: prompt + answer ids [B, T], the prompt length P, and the decoded answers. */
export interface GeneratedBatch {
  ids: Int32Array;
  mask: Int32Array;
  B: number;
  T: number;
  P: number;
  answers: string[];
}

/** Decodes the answer part (columns P..T-1) of each row; an empty answer decodes to ''. */
export function decodeAnswers(tok: QTokenizer, ids: Int32Array, mask: Int32Array, B: number, T: number, P: number): string[] {
  const out: string[] = [];
  for (let b = 0; b < B; b++) {
    const row: number[] = [];
    for (let t = P; t < T; t++) if (mask[b * T + t] && !tok.isSpecial(ids[b * T + t])) row.push(ids[b * T + t]);
    // @huggingface/tokenizers throws on decode([]).
    out.push(row.length ? tok.decode(row, { skipSpecialTokens: true }) : '');
  }
  return out;
}

/** Generates answers to `prompts` (one batch) with the actor role. */
export async function generateBatch(roles: Roles, enc: BpeEncoder, tok: QTokenizer, prompts: readonly string[], s: GenerateSettings): Promise<GeneratedBatch> {
  const rows = prompts.map((p, i) => {
    const ids = enc.encode(p);
    if (ids.length === 0) throw new Error(`demo: prompt ${i} is empty`);
    return ids;
  });
  const batch = padBatch(rows, tok.padId, { padding: 'left' });
  const tensors: Record<string, WireTensor> = {
    prompt_ids: i32([batch.B, batch.T], batch.ids),
    prompt_mask: i32([batch.B, batch.T], batch.mask),
  };
  // Plain temperature sampling: the demo filters no tokens.
  const meta = { maxNewTokens: s.maxNewTokens, temperature: s.temperature, topK: 0, topP: 1, seed: s.seed } satisfies MetaOf<'actor', 'generate'>;
  const r = await roles.group('actor').call('generate', { meta, tensors });
  const ids = r.tensors.ids.data as Int32Array;
  const [B, T] = r.tensors.ids.shape;
  if (tok.eosId === null) throw new Error('demo: the tokenizer names no eos_token');
  const mask = generatedMask(ids, batch.mask, B, T, batch.T, tok.eosId);
  return { ids, mask, B, T, P: batch.T, answers: decodeAnswers(tok, ids, mask, B, T, batch.T) };
}

/**
 * The mask of prompt + answer [B, T]: the prompt's own, then 1 on each
 * generated token up to and including the first `eosId` (the demo model's
 * only eos; the actor fills the columns after it with pads).
 */
export function generatedMask(ids: Int32Array, promptMask: Int32Array, B: number, T: number, P: number, eosId: number): Int32Array {
  const mask = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    mask.set(promptMask.subarray(b * P, (b + 1) * P), b * T);
    for (let t = P; t < T; t++) {
      mask[b * T + t] = 1;
      if (ids[b * T + t] === eosId) break;
    }
  }
  return mask;
}
