// Tokenizers from a checkpoint folder's `tokenizer.json` (+ `tokenizer_config.json`)
// through @huggingface/tokenizers, with what training and generation need on top:
// the bos/eos/pad ids, batch encoding into padded [B, T] id and mask arrays (left
// padding for generation, right padding for training) and batch decoding.
// Also builds GPT-2's byte-level BPE tokenizer.json from its original
// encoder.json + vocab.bpe, optionally cut to a smaller vocabulary (for
// `quartet init-model`): GPT-2's merges are ordered so that the first k of them
// only use tokens made by earlier ones.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

type Json = Record<string, unknown>;

export interface BatchEncoding {
  /** [B, T] row-major; pads hold the pad id. */
  ids: Int32Array;
  /** [B, T]: 1 for a real token, 0 for a pad. */
  mask: Int32Array;
  B: number;
  T: number;
  /** Real tokens per row. */
  lengths: number[];
}

export interface BatchOptions {
  /** 'left' for generation prompts (default), 'right' for training. */
  padding?: 'left' | 'right';
  /** Rows longer than this are cut: from the left when padding left (keep the prompt's end), else from the right. */
  maxLength?: number;
  /** Pad every row to exactly maxLength rather than to the longest row. */
  padToMaxLength?: boolean;
  addSpecialTokens?: boolean;
}

/** A token named in tokenizer_config.json: a string, or an AddedToken object with `content`. */
function tokenName(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

// The vocabulary shape of each model type of tokenizers' tokenizer.json.
const MODEL_VOCAB: Record<string, 'map' | 'list'> = { BPE: 'map', WordPiece: 'map', WordLevel: 'map', Unigram: 'list' };

/**
 * The `model` section, checked before the library sees it: the library
 * refuses some bad sections with a message that names no file, and accepts
 * others (a vocab that is a number) as an empty vocabulary that encodes
 * every text to nothing.
 */
function checkModelSection(json: Json, where: string): void {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`tokenizer: ${where} is not a JSON object`);
  const m = json.model as Json | undefined;
  if (m === undefined || m === null) throw new Error(`tokenizer: ${where} has no 'model' section`);
  if (typeof m !== 'object' || Array.isArray(m)) throw new Error(`tokenizer: ${where}: 'model' must be an object, got ${JSON.stringify(m).slice(0, 80)}`);
  const type = m.type;
  const kind = typeof type === 'string' ? MODEL_VOCAB[type] : undefined;
  if (!kind) throw new Error(`tokenizer: ${where}: model.type ${JSON.stringify(type)} is not one of ${Object.keys(MODEL_VOCAB).join(', ')}`);
  const vocab = m.vocab;
  const ok = kind === 'list' ? Array.isArray(vocab) : vocab !== null && typeof vocab === 'object' && !Array.isArray(vocab);
  if (!ok) throw new Error(`tokenizer: ${where}: model.vocab of a ${type} model must be ${kind === 'list' ? 'a list of [token, score]' : 'an object of token -> id'}, got ${JSON.stringify(vocab)?.slice(0, 80)}`);
  if (kind === 'map' && !Object.values(vocab as Json).every((id) => Number.isInteger(id) && (id as number) >= 0)) {
    throw new Error(`tokenizer: ${where}: model.vocab must map tokens to non-negative integer ids`);
  }
  if (type === 'BPE') checkMerges(m, where);
}

/** As tokenizers' BPE builder: each merge is 'a b' or [a, b], and a, b and the merged token are in the vocabulary. */
function checkMerges(m: Json, where: string): void {
  if (m.merges === undefined) return;
  if (!Array.isArray(m.merges)) throw new Error(`tokenizer: ${where}: model.merges must be a list`);
  const vocab = m.vocab as Record<string, number>;
  const prefix = typeof m.continuing_subword_prefix === 'string' ? m.continuing_subword_prefix : '';
  m.merges.forEach((merge: unknown, i: number) => {
    const pair = typeof merge === 'string' ? merge.split(' ') : merge;
    if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((p) => typeof p === 'string')) {
      throw new Error(`tokenizer: ${where}: model.merges[${i}] = ${JSON.stringify(merge)} is not a pair of tokens`);
    }
    const [a, b] = pair as [string, string];
    const merged = a + (prefix && b.startsWith(prefix) ? b.slice(prefix.length) : b);
    for (const tok of [a, b, merged]) {
      if (!Object.hasOwn(vocab, tok)) throw new Error(`tokenizer: ${where}: model.merges[${i}] (${JSON.stringify(merge)}) uses '${tok}', which is not in model.vocab`);
    }
  });
}

export class QTokenizer {
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** The pad id: tokenizer_config's pad_token, else the eos token (as GPT-2 and OPT users set it). */
  readonly padId: number;
  readonly vocabSize: number;
  private readonly tok: Tokenizer;
  private readonly specialIds: Set<number>;

  constructor(tokenizerJson: Json, tokenizerConfig: Json = {}, where = 'tokenizer.json') {
    checkModelSection(tokenizerJson, where);
    try {
      this.tok = new Tokenizer(tokenizerJson, tokenizerConfig);
      // Some parts are only built on first use: a probe makes their errors load errors, with the file named.
      this.tok.encode('a probe, 1', { add_special_tokens: true });
    } catch (err) {
      throw new Error(`tokenizer: ${where}: ${(err as Error).message}`);
    }
    const idOf = (key: string): number | null => {
      const name = tokenName(tokenizerConfig[key]);
      if (name === null) return null;
      const id = this.tok.token_to_id(name);
      if (id === undefined) throw new Error(`tokenizer: ${where}: ${key} '${name}' from tokenizer_config.json is not in the vocabulary`);
      return id;
    };
    const added = (tokenizerJson.added_tokens ?? []) as { id: number; content: string; special?: boolean }[];
    this.specialIds = new Set(added.filter((t) => t.special).map((t) => t.id));
    this.bosId = idOf('bos_token');
    this.eosId = idOf('eos_token');
    const pad = idOf('pad_token') ?? this.eosId;
    if (pad === null) throw new Error(`tokenizer: ${where} names neither a pad_token nor an eos_token in tokenizer_config.json`);
    this.padId = pad;
    this.vocabSize = this.tok.get_vocab(true).size;
  }

  /** Loads `<dir>/tokenizer.json` and, when present, `<dir>/tokenizer_config.json`. */
  static load(dir: string): QTokenizer {
    const path = join(dir, 'tokenizer.json');
    if (!existsSync(path)) throw new Error(`tokenizer: ${dir} has no tokenizer.json`);
    const read = (p: string): Json => {
      try {
        return JSON.parse(readFileSync(p, 'utf8')) as Json;
      } catch (err) {
        throw new Error(`tokenizer: cannot parse ${p}: ${(err as Error).message}`);
      }
    };
    const cfgPath = join(dir, 'tokenizer_config.json');
    return new QTokenizer(read(path), existsSync(cfgPath) ? read(cfgPath) : {}, path);
  }

  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    // Spaces before punctuation are cleaned up only when tokenizer_config.json asks for it (as transformers does).
    return this.tok.decode(Array.from(ids), { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Encodes texts into one padded [B, T] batch. */
  encodeBatch(texts: readonly string[], opts: BatchOptions = {}): BatchEncoding {
    return padBatch(texts.map((t) => this.encode(t, { addSpecialTokens: opts.addSpecialTokens })), this.padId, opts);
  }

  /** Decodes each row of a [B, T] batch, dropping pads (mask 0) and, by default, special tokens. */
  decodeBatch(ids: Int32Array, mask: Int32Array | null, B: number, T: number, opts: { skipSpecialTokens?: boolean } = {}): string[] {
    const out: string[] = [];
    for (let b = 0; b < B; b++) {
      const row: number[] = [];
      for (let t = 0; t < T; t++) if (!mask || mask[b * T + t]) row.push(ids[b * T + t]);
      out.push(this.decode(row, { skipSpecialTokens: opts.skipSpecialTokens ?? true }));
    }
    return out;
  }
}

/** Pads token id rows into a [B, T] batch (left padding by default, as generation wants). */
export function padBatch(rows: readonly (readonly number[])[], padId: number, opts: BatchOptions = {}): BatchEncoding {
  const side = opts.padding ?? 'left';
  const max = opts.maxLength ?? Infinity;
  const cut = rows.map((r) => (r.length <= max ? r : side === 'left' ? r.slice(r.length - max) : r.slice(0, max)));
  const T = opts.padToMaxLength && Number.isFinite(max) ? max : Math.max(1, ...cut.map((r) => r.length));
  const B = cut.length;
  const ids = new Int32Array(B * T).fill(padId);
  const mask = new Int32Array(B * T);
  cut.forEach((r, b) => {
    const start = b * T + (side === 'left' ? T - r.length : 0);
    ids.set(r, start);
    mask.fill(1, start, start + r.length);
  });
  return { ids, mask, B, T, lengths: cut.map((r) => r.length) };
}

export const GPT2_EOS = '<|endoftext|>';

/**
 * GPT-2's tokenizer.json and tokenizer_config.json from encoder.json and vocab.bpe.
 * With vocabSize < 50257 the vocabulary keeps the 256 byte tokens and the first
 * vocabSize - 257 merges, and <|endoftext|> takes the last id.
 */
export function gpt2TokenizerFiles(encoder: Record<string, number>, vocabBpe: string, opts: { vocabSize?: number; maxLength?: number } = {}): { tokenizer: Json; config: Json } {
  const merges = vocabBpe.split('\n').filter((l) => l.length > 0 && !l.startsWith('#version'));
  const full = merges.length + 257;
  const V = opts.vocabSize ?? full;
  if (!Number.isInteger(V) || V < 257 || V > full) throw new Error(`tokenizer: a GPT-2 byte-level vocabulary needs 257..${full} tokens, got ${V}`);
  const eosId = V - 1;
  const vocab: Record<string, number> = {};
  for (const [tok, id] of Object.entries(encoder)) if (id < eosId) vocab[tok] = id;
  vocab[GPT2_EOS] = eosId;
  if (Object.keys(vocab).length !== V) throw new Error(`tokenizer: encoder.json does not hold ids 0..${eosId - 1}`);
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: eosId, content: GPT2_EOS, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, add_prefix_space: true, trim_offsets: false },
    decoder: { ...byteLevel, add_prefix_space: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, ignore_merges: false,
      vocab, merges: merges.slice(0, V - 257),
    },
  };
  const config = {
    tokenizer_class: 'GPT2Tokenizer',
    model_max_length: opts.maxLength ?? 1024,
    add_prefix_space: false,
    bos_token: GPT2_EOS, eos_token: GPT2_EOS, unk_token: GPT2_EOS, pad_token: GPT2_EOS,
    clean_up_tokenization_spaces: false,
  };
  return { tokenizer, config };
}
