// Writes a trained byte-level BPE as Hugging Face tokenizer files: the
// `tokenizer.json` that the Rust `tokenizers` library, transformers and
// @huggingface/tokenizers all read (laid out as GPT-2's), and a
// `tokenizer_config.json` naming the special tokens and the context length.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainedBpe } from './bpe.js';

export interface TokenizerFileOptions {
  /** Context length of the model the tokenizer serves (`model_max_length`). */
  modelMaxLength: number;
  /** Each must be one of the trained special tokens. */
  bosToken: string;
  eosToken: string;
  padToken: string;
}

/** The `tokenizer.json` object for a trained BPE. */
export function tokenizerJson(bpe: TrainedBpe): object {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const vocab: Record<string, number> = {};
  for (const [token, id] of bpe.vocab) vocab[token] = id;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: bpe.specialTokens.map(({ content, id }) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    // Byte-level post-processing only fixes offsets; it adds no tokens, so
    // encode() gives exactly the BPE ids (no BOS), as GPT-2's tokenizer does.
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: bpe.merges,
    },
  };
}

/** The `tokenizer_config.json` object: special tokens and length, as transformers writes it. */
export function tokenizerConfigJson(bpe: TrainedBpe, opts: TokenizerFileOptions): object {
  const specials = new Map(bpe.specialTokens.map((t) => [t.content, t.id]));
  for (const field of ['bosToken', 'eosToken', 'padToken'] as const) {
    if (!specials.has(opts[field])) {
      throw new Error(`tokenizer_config: ${field} '${opts[field]}' is not one of the special tokens ${[...specials.keys()].join(', ')}`);
    }
  }
  if (!(Number.isInteger(opts.modelMaxLength) && opts.modelMaxLength > 0)) {
    throw new Error(`tokenizer_config: modelMaxLength must be a positive integer, got ${opts.modelMaxLength}`);
  }
  const addedTokensDecoder: Record<string, object> = {};
  for (const { content, id } of bpe.specialTokens) {
    addedTokensDecoder[String(id)] = { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  }
  return {
    add_bos_token: false,
    add_eos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: addedTokensDecoder,
    bos_token: opts.bosToken,
    eos_token: opts.eosToken,
    pad_token: opts.padToken,
    unk_token: null,
    // Cleaning would turn " ." into "." on decode and break the round trip.
    clean_up_tokenization_spaces: false,
    model_max_length: opts.modelMaxLength,
    tokenizer_class: 'GPT2Tokenizer',
  };
}

/** Writes `tokenizer.json` and `tokenizer_config.json` into `dir` (created if missing). */
export function writeTokenizer(dir: string, bpe: TrainedBpe, opts: TokenizerFileOptions): void {
  const config = tokenizerConfigJson(bpe, opts); // validates before anything is written
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson(bpe), null, 2) + '\n');
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
}
