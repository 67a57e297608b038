// A normalised decoder config, filled in per family from a Hugging Face
// `config.json`. Every field the decoder stack reads is explicit here, with the
// family defaults of transformers' configuration classes where config.json
// leaves a key out (older checkpoints omit many). The keys that size the
// architecture (REQUIRED) are the exception: transformers always writes them,
// so a file without one is a mistake, and its class default (GPT-2's 768, ...)
// would build a model the weights do not fit, or silently the wrong one.
// Options the stack does not implement are errors naming the key, never
// silently ignored.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export type Family = 'gpt2' | 'opt' | 'gpt_neox' | 'llama';
export type Activation = 'gelu_tanh' | 'gelu' | 'relu' | 'silu';

export interface ModelConfig {
  /** As in config.json: gpt2, opt, gpt_neox, llama, mistral, qwen2. */
  modelType: string;
  family: Family;
  /** V, C, L, NH, NKV, HS. */
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Inner width of the MLP (of each half of a gated MLP). */
  intermediate: number;
  maxPositions: number;
  norm: 'layernorm' | 'rmsnorm';
  normEps: number;
  /** false: OPT-350m's post-LN blocks (norm after each residual add). */
  preNorm: boolean;
  finalNorm: boolean;
  activation: Activation;
  /** SwiGLU: down(act(gate(x)) * up(x)). */
  gatedMlp: boolean;
  /** GPT-NeoX: x + attn(ln1(x)) + mlp(ln2(x)). */
  parallelResidual: boolean;
  positions: 'learned' | 'rotary';
  /** OPT's learned positions are looked up at position + 2. */
  positionOffset: number;
  /** Rotary: the first rotaryDim dims of each head rotate, with frequencies theta^(-2i/rotaryDim). */
  rotaryDim: number;
  ropeTheta: number;
  qkvBias: boolean;
  outBias: boolean;
  mlpBias: boolean;
  /** GPT-2's scale_attn_weights (1/sqrt(HS)) and scale_attn_by_inverse_layer_idx (also / (layer + 1)). */
  scaleAttnWeights: boolean;
  scaleByInverseLayerIdx: boolean;
  tieWordEmbeddings: boolean;
  /** Width of the token embedding and LM head: OPT's word_embed_proj_dim (project_in/out), else hidden. */
  embedDim: number;
  /** Mistral: attention sees at most this many previous tokens; forward refuses longer sequences. */
  slidingWindow: number | null;
  /** Dropout probabilities read from the config (applied only in training with dropout on). */
  dropout: { embed: number; residual: number; attention: number };
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** The config.json as read (or as written by init), kept to write it back unchanged. */
  raw: Record<string, unknown>;
}

type Raw = Record<string, unknown>;

const FAMILY_OF: Record<string, Family> = {
  gpt2: 'gpt2', opt: 'opt', gpt_neox: 'gpt_neox', llama: 'llama', mistral: 'llama', qwen2: 'llama',
};

export const SUPPORTED_MODEL_TYPES = Object.keys(FAMILY_OF);

/** Per family, the config.json keys that size the architecture, with what each sets: required, never defaulted. */
export const REQUIRED: Record<Family, [key: string, what: string][]> = {
  gpt2: [['vocab_size', 'vocabulary size'], ['n_positions', 'maximum positions'], ['n_embd', 'hidden size'], ['n_layer', 'number of layers'], ['n_head', 'number of attention heads']],
  opt: [['vocab_size', 'vocabulary size'], ['max_position_embeddings', 'maximum positions'], ['hidden_size', 'hidden size'], ['num_hidden_layers', 'number of layers'],
    ['num_attention_heads', 'number of attention heads'], ['ffn_dim', 'MLP width']],
  gpt_neox: [['vocab_size', 'vocabulary size'], ['max_position_embeddings', 'maximum positions'], ['hidden_size', 'hidden size'], ['num_hidden_layers', 'number of layers'],
    ['num_attention_heads', 'number of attention heads'], ['intermediate_size', 'MLP width']],
  llama: [['vocab_size', 'vocabulary size'], ['max_position_embeddings', 'maximum positions'], ['hidden_size', 'hidden size'], ['num_hidden_layers', 'number of layers'],
    ['num_attention_heads', 'number of attention heads'], ['intermediate_size', 'MLP width']],
};

class Reader {
  constructor(private readonly raw: Raw, private readonly where: string) {}

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  fail(key: string, why: string): Error {
    return new Error(`config: ${this.where}: '${key}' ${why}`);
  }

  int(key: string, fallback?: number): number {
    const v = this.has(key) ? this.raw[key] : fallback;
    if (v === undefined) throw this.fail(key, 'is required');
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw this.fail(key, `must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v;
  }

  num(key: string, fallback?: number): number {
    const v = this.has(key) ? this.raw[key] : fallback;
    if (v === undefined) throw this.fail(key, 'is required');
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.fail(key, `must be a number, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.has(key) ? this.raw[key] : fallback;
    if (typeof v !== 'boolean') throw this.fail(key, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  str(key: string, fallback: string): string {
    const v = this.has(key) ? this.raw[key] : fallback;
    if (typeof v !== 'string') throw this.fail(key, `must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  /** A key that must be absent, false or null (an option the stack does not implement). */
  unsupported(key: string, allowed: unknown[] = [false]): void {
    if (!this.has(key)) return;
    if (!allowed.some((a) => JSON.stringify(a) === JSON.stringify(this.raw[key]))) {
      throw this.fail(key, `= ${JSON.stringify(this.raw[key])} is not supported`);
    }
  }

  tokenId(key: string): number | null {
    const v = this.raw[key];
    if (v === undefined || v === null) return null;
    if (Array.isArray(v)) return this.int(key, v[0] as number);
    return this.int(key);
  }

  tokenIds(key: string): number[] {
    const v = this.raw[key];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => Number.isInteger(x) && x >= 0)) throw this.fail(key, `must be a token id or a list of them, got ${JSON.stringify(v)}`);
    return list as number[];
  }
}

function activationOf(r: Reader, key: string, fallback: string): Activation {
  const name = r.str(key, fallback);
  switch (name) {
    case 'gelu_new': case 'gelu_pytorch_tanh': case 'gelu_fast': return 'gelu_tanh';
    case 'gelu': return 'gelu';
    case 'relu': return 'relu';
    case 'silu': case 'swish': return 'silu';
    default: throw r.fail(key, `= '${name}' is not a supported activation (gelu_new, gelu_pytorch_tanh, gelu_fast, gelu, relu, silu)`);
  }
}

/**
 * Rotary settings, in transformers 5's `rope_parameters` or the older top-level keys
 * (`rope_theta`, NeoX's `rotary_emb_base` and `rotary_pct`). Only the default (unscaled) rope.
 */
function ropeOf(r: Reader, raw: Raw, thetaKeys: string[], pctKeys: string[], pctDefault: number): { theta: number; pct: number } {
  const params = (raw.rope_parameters ?? null) as Raw | null;
  if (params !== null && typeof params === 'object') {
    const type = params.rope_type ?? params.type ?? 'default';
    if (type !== 'default') throw r.fail('rope_parameters', `has rope_type '${String(type)}'; only the default rope is supported`);
  }
  const scaling = (raw.rope_scaling ?? null) as Raw | null;
  if (scaling !== null) {
    const type = scaling.rope_type ?? scaling.type;
    if (type !== 'default') throw r.fail('rope_scaling', `= ${JSON.stringify(scaling)} is not supported (only the default rope)`);
  }
  const pick = (keys: string[], fallback: number): number => {
    for (const k of keys) {
      if (params && typeof params[k] === 'number') return params[k] as number;
      if (r.has(k)) return r.num(k);
    }
    return fallback;
  };
  return { theta: pick(thetaKeys, 10000), pct: pick(pctKeys, pctDefault) };
}

function common(r: Reader, raw: Raw): Pick<ModelConfig, 'bosTokenId' | 'eosTokenIds' | 'padTokenId' | 'raw' | 'modelType'> {
  return {
    modelType: raw.model_type as string,
    bosTokenId: r.tokenId('bos_token_id'),
    eosTokenIds: r.tokenIds('eos_token_id'),
    padTokenId: r.tokenId('pad_token_id'),
    raw,
  };
}

function gpt2(r: Reader, raw: Raw): ModelConfig {
  r.unsupported('add_cross_attention');
  const C = r.int('n_embd');
  const NH = r.int('n_head');
  return {
    ...common(r, raw),
    family: 'gpt2',
    vocabSize: r.int('vocab_size'),
    hidden: C, layers: r.int('n_layer'), heads: NH, kvHeads: NH, headDim: C / NH,
    intermediate: r.has('n_inner') ? r.int('n_inner') : 4 * C,
    maxPositions: r.int('n_positions'),
    norm: 'layernorm', normEps: r.num('layer_norm_epsilon', 1e-5), preNorm: true, finalNorm: true,
    activation: activationOf(r, 'activation_function', 'gelu_new'), gatedMlp: false, parallelResidual: false,
    positions: 'learned', positionOffset: 0, rotaryDim: 0, ropeTheta: 0,
    qkvBias: true, outBias: true, mlpBias: true,
    scaleAttnWeights: r.bool('scale_attn_weights', true),
    scaleByInverseLayerIdx: r.bool('scale_attn_by_inverse_layer_idx', false),
    tieWordEmbeddings: r.bool('tie_word_embeddings', true),
    embedDim: C, slidingWindow: null,
    dropout: { embed: r.num('embd_pdrop', 0.1), residual: r.num('resid_pdrop', 0.1), attention: r.num('attn_pdrop', 0.1) },
  };
}

function opt(r: Reader, raw: Raw): ModelConfig {
  r.unsupported('layer_norm_elementwise_affine', [true]);
  const C = r.int('hidden_size');
  const NH = r.int('num_attention_heads');
  const preNorm = r.bool('do_layer_norm_before', true);
  const bias = r.bool('enable_bias', true);
  return {
    ...common(r, raw),
    family: 'opt',
    vocabSize: r.int('vocab_size'),
    hidden: C, layers: r.int('num_hidden_layers'), heads: NH, kvHeads: NH, headDim: C / NH,
    intermediate: r.int('ffn_dim'),
    maxPositions: r.int('max_position_embeddings'),
    // OPT's LayerNorms always use torch's default eps; the config has no key for it.
    norm: 'layernorm', normEps: 1e-5, preNorm,
    // OPTDecoder builds final_layer_norm only for pre-LN models not flagged `_remove_final_layer_norm`.
    finalNorm: preNorm && !r.bool('_remove_final_layer_norm', false),
    activation: activationOf(r, 'activation_function', 'relu'), gatedMlp: false, parallelResidual: false,
    positions: 'learned', positionOffset: 2, rotaryDim: 0, ropeTheta: 0,
    qkvBias: bias, outBias: bias, mlpBias: bias,
    scaleAttnWeights: true, scaleByInverseLayerIdx: false,
    tieWordEmbeddings: r.bool('tie_word_embeddings', true),
    embedDim: r.has('word_embed_proj_dim') ? r.int('word_embed_proj_dim') : C, slidingWindow: null,
    dropout: { embed: 0, residual: r.num('dropout', 0.1), attention: r.num('attention_dropout', 0) },
  };
}

function gptNeox(r: Reader, raw: Raw): ModelConfig {
  const C = r.int('hidden_size');
  const NH = r.int('num_attention_heads');
  const HS = C / NH;
  const rope = ropeOf(r, raw, ['rope_theta', 'rotary_emb_base'], ['partial_rotary_factor', 'rotary_pct'], 0.25);
  const bias = r.bool('attention_bias', true);
  return {
    ...common(r, raw),
    family: 'gpt_neox',
    vocabSize: r.int('vocab_size'),
    hidden: C, layers: r.int('num_hidden_layers'), heads: NH, kvHeads: NH, headDim: HS,
    intermediate: r.int('intermediate_size'),
    maxPositions: r.int('max_position_embeddings'),
    norm: 'layernorm', normEps: r.num('layer_norm_eps', 1e-5), preNorm: true, finalNorm: true,
    activation: activationOf(r, 'hidden_act', 'gelu'), gatedMlp: false,
    parallelResidual: r.bool('use_parallel_residual', true),
    positions: 'rotary', positionOffset: 0,
    // transformers takes int(head_size * rotary_pct) dims.
    rotaryDim: Math.floor(HS * rope.pct), ropeTheta: rope.theta,
    qkvBias: bias, outBias: bias, mlpBias: true,
    scaleAttnWeights: true, scaleByInverseLayerIdx: false,
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    embedDim: C, slidingWindow: null,
    dropout: { embed: r.num('hidden_dropout', 0), residual: r.num('hidden_dropout', 0), attention: r.num('attention_dropout', 0) },
  };
}

function llama(r: Reader, raw: Raw, type: string): ModelConfig {
  r.unsupported('use_sliding_window');
  const C = r.int('hidden_size');
  const NH = r.int('num_attention_heads');
  const NKV = r.has('num_key_value_heads') ? r.int('num_key_value_heads') : NH;
  if (NH % NKV !== 0) throw r.fail('num_key_value_heads', `= ${NKV} must divide num_attention_heads = ${NH}`);
  const HS = r.has('head_dim') ? r.int('head_dim') : C / NH;
  const rope = ropeOf(r, raw, ['rope_theta'], ['partial_rotary_factor'], 1);
  if (r.str('hidden_act', 'silu') !== 'silu') throw r.fail('hidden_act', `= '${String(raw.hidden_act)}' is not supported for ${type} (only silu)`);
  // qwen2 always has q/k/v biases and never an o_proj bias; llama's attention_bias covers all four; mistral has none.
  const attnBias = type === 'llama' ? r.bool('attention_bias', false) : false;
  const qkvBias = type === 'qwen2' ? true : attnBias;
  const slidingWindow = type === 'mistral' && r.has('sliding_window') ? r.int('sliding_window') : null;
  return {
    ...common(r, raw),
    family: 'llama',
    vocabSize: r.int('vocab_size'),
    hidden: C, layers: r.int('num_hidden_layers'), heads: NH, kvHeads: NKV, headDim: HS,
    intermediate: r.int('intermediate_size'),
    maxPositions: r.int('max_position_embeddings'),
    norm: 'rmsnorm', normEps: r.num('rms_norm_eps', 1e-6), preNorm: true, finalNorm: true,
    activation: 'silu', gatedMlp: true, parallelResidual: false,
    positions: 'rotary', positionOffset: 0,
    rotaryDim: Math.floor(HS * rope.pct), ropeTheta: rope.theta,
    qkvBias, outBias: attnBias, mlpBias: type === 'llama' ? r.bool('mlp_bias', false) : false,
    scaleAttnWeights: true, scaleByInverseLayerIdx: false,
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    embedDim: C, slidingWindow,
    dropout: { embed: 0, residual: 0, attention: r.num('attention_dropout', 0) },
  };
}

/** Normalises a parsed config.json; `where` names its source in errors. */
export function normaliseConfig(raw: Raw, where = 'config.json'): ModelConfig {
  const type = raw.model_type;
  if (typeof type !== 'string') throw new Error(`config: ${where}: 'model_type' is missing (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
  const family = FAMILY_OF[type];
  if (!family) throw new Error(`config: ${where}: model_type '${type}' is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
  const r = new Reader(raw, where);
  const missing = REQUIRED[family].filter(([k]) => !r.has(k));
  if (missing.length) {
    const list = missing.map(([k, what]) => `'${k}' (${what})`).join(', ');
    throw new Error(`config: ${where}: ${list} ${missing.length === 1 ? 'is' : 'are'} missing; a ${type} config.json must give every architecture size (Quartet does not fall back to a default size)`);
  }
  const cfg = family === 'gpt2' ? gpt2(r, raw) : family === 'opt' ? opt(r, raw) : family === 'gpt_neox' ? gptNeox(r, raw) : llama(r, raw, type);
  if (!Number.isInteger(cfg.headDim) || cfg.headDim <= 0) {
    throw new Error(`config: ${where}: hidden size ${cfg.hidden} is not a multiple of the ${cfg.heads} attention heads`);
  }
  if (cfg.positions === 'rotary' && (cfg.rotaryDim % 2 !== 0 || cfg.rotaryDim > cfg.headDim)) {
    throw new Error(`config: ${where}: rotary dims ${cfg.rotaryDim} must be even and at most head_dim ${cfg.headDim}`);
  }
  for (const [k, p] of Object.entries(cfg.dropout)) {
    if (!(p >= 0 && p < 1)) throw new Error(`config: ${where}: ${k} dropout ${p} must be in [0, 1)`);
  }
  return cfg;
}

/** Reads and normalises `<dir>/config.json`. */
export function readConfig(dir: string): ModelConfig {
  const path = join(dir, 'config.json');
  let raw: Raw;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Raw;
  } catch (err) {
    throw new Error(`config: cannot read ${path}: ${(err as Error).message}`);
  }
  return normaliseConfig(raw, path);
}
