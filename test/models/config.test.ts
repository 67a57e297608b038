// Config normalisation: each family's fields from real config.json files written by
// transformers 5.18, the older top-level keys of earlier versions, and clear errors.
import t from 'tap';
import { normaliseConfig, readConfig } from '../../src/models/config.js';
import { variantDir } from './fixtures.js';

t.test('fixture configs normalise to the right stack', (t) => {
  const gpt2 = readConfig(variantDir('gpt2'));
  t.match(gpt2, { family: 'gpt2', hidden: 32, heads: 4, kvHeads: 4, headDim: 8, intermediate: 128, activation: 'gelu_tanh', positions: 'learned', positionOffset: 0, tieWordEmbeddings: true, preNorm: true, finalNorm: true });
  const optPre = readConfig(variantDir('opt_pre_proj'));
  t.match(optPre, { family: 'opt', embedDim: 16, hidden: 32, positionOffset: 2, preNorm: true, finalNorm: true, activation: 'relu', normEps: 1e-5 });
  const optPost = readConfig(variantDir('opt_post'));
  t.match(optPost, { preNorm: false, finalNorm: false, embedDim: 16 });
  const neox = readConfig(variantDir('neox_parallel'));
  t.match(neox, { family: 'gpt_neox', headDim: 16, rotaryDim: 4, ropeTheta: 10000, parallelResidual: true, activation: 'gelu', tieWordEmbeddings: false });
  const neoxSeq = readConfig(variantDir('neox_sequential'));
  t.match(neoxSeq, { rotaryDim: 8, ropeTheta: 500, parallelResidual: false });
  const llama = readConfig(variantDir('llama_gqa'));
  t.match(llama, { family: 'llama', modelType: 'llama', heads: 4, kvHeads: 2, headDim: 8, rotaryDim: 8, ropeTheta: 50000, norm: 'rmsnorm', normEps: 1e-6, gatedMlp: true, qkvBias: false, outBias: false, tieWordEmbeddings: false });
  const qwen = readConfig(variantDir('qwen2'));
  t.match(qwen, { family: 'llama', modelType: 'qwen2', kvHeads: 1, qkvBias: true, outBias: false, tieWordEmbeddings: true });
  const mistral = readConfig(variantDir('mistral'));
  t.match(mistral, { modelType: 'mistral', slidingWindow: 64, qkvBias: false });
  t.end();
});

t.test('older config.json keys and family defaults', (t) => {
  // GPT-NeoX before transformers 5: rotary_pct and rotary_emb_base at the top level.
  const neox = normaliseConfig({ model_type: 'gpt_neox', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 2, intermediate_size: 256, vocab_size: 100, max_position_embeddings: 64, rotary_pct: 0.25, rotary_emb_base: 10000 });
  t.match(neox, { rotaryDim: 4, ropeTheta: 10000, parallelResidual: true, qkvBias: true, tieWordEmbeddings: false });
  const llama = normaliseConfig({ model_type: 'llama', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 2, intermediate_size: 128, vocab_size: 100, max_position_embeddings: 64, rope_theta: 500000, rope_scaling: null, attention_bias: true });
  t.match(llama, { ropeTheta: 500000, kvHeads: 4, qkvBias: true, outBias: true });
  // Older gpt2/opt configs leave tie_word_embeddings out: it defaults to true.
  t.equal(normaliseConfig({ model_type: 'gpt2', n_embd: 64, n_head: 4, n_layer: 2, vocab_size: 100, n_positions: 64 }).tieWordEmbeddings, true);
  t.match(normaliseConfig({ model_type: 'opt', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 2, ffn_dim: 128, vocab_size: 100, max_position_embeddings: 64 }), { tieWordEmbeddings: true, embedDim: 64 });
  t.match(normaliseConfig({ model_type: 'opt', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 2, ffn_dim: 128, vocab_size: 100, max_position_embeddings: 64, _remove_final_layer_norm: true }), { finalNorm: false });
  t.same(normaliseConfig({ model_type: 'llama', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 1, intermediate_size: 8, vocab_size: 10, max_position_embeddings: 64, eos_token_id: [2, 7] }).eosTokenIds, [2, 7]);
  t.end();
});

t.test('unknown model types and unsupported options are errors naming them', (t) => {
  t.throws(() => normaliseConfig({ model_type: 'bloom' }, 'x/config.json'), /x\/config\.json: model_type 'bloom' is not supported \(supported: gpt2, opt, gpt_neox, llama, mistral, qwen2\)/);
  t.throws(() => normaliseConfig({}), /'model_type' is missing/);
  const base = { hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 2, intermediate_size: 128, vocab_size: 100, max_position_embeddings: 64 };
  const g2 = { model_type: 'gpt2', n_layer: 2, vocab_size: 100, n_positions: 64 };
  t.throws(() => normaliseConfig({ model_type: 'llama', ...base, rope_scaling: { rope_type: 'linear', factor: 2 } }), /'rope_scaling' = .*linear.* is not supported/);
  t.throws(() => normaliseConfig({ model_type: 'llama', ...base, rope_parameters: { rope_type: 'yarn', rope_theta: 1e4 } }), /rope_type 'yarn'/);
  t.throws(() => normaliseConfig({ model_type: 'llama', ...base, num_key_value_heads: 3 }), /'num_key_value_heads' = 3 must divide num_attention_heads = 4/);
  t.throws(() => normaliseConfig({ model_type: 'llama', ...base, hidden_act: 'gelu' }), /'hidden_act'.*not supported/);
  t.throws(() => normaliseConfig({ model_type: 'qwen2', ...base, use_sliding_window: true }), /'use_sliding_window' = true is not supported/);
  t.throws(() => normaliseConfig({ ...g2, n_embd: 64, n_head: 4, add_cross_attention: true }), /'add_cross_attention' = true is not supported/);
  t.throws(() => normaliseConfig({ ...g2, n_embd: 64, n_head: 5 }), /not a multiple of the 5 attention heads/);
  t.throws(() => normaliseConfig({ ...g2, n_embd: 64, n_head: 4, activation_function: 'quick_gelu' }), /'activation_function' = 'quick_gelu' is not a supported activation/);
  t.throws(() => normaliseConfig({ model_type: 'opt', ...base, ffn_dim: 8, layer_norm_elementwise_affine: false }), /'layer_norm_elementwise_affine' = false is not supported/);
  t.throws(() => normaliseConfig({ ...g2, n_embd: 'big', n_head: 4 }), /'n_embd' must be a non-negative integer, got "big"/);
  t.end();
});

t.test('a missing architecture size is an error naming the file, the key and the family, never a default', (t) => {
  const g2 = { model_type: 'gpt2', n_layer: 2, vocab_size: 100, n_positions: 64, n_embd: 64, n_head: 4 };
  const { n_embd, ...noEmbd } = g2;
  t.throws(() => normaliseConfig(noEmbd, 'm/config.json'), /config: m\/config\.json: 'n_embd' \(hidden size\) is missing; a gpt2 config\.json must give every architecture size/);
  // Every missing size is named at once.
  t.throws(() => normaliseConfig({ model_type: 'qwen2', hidden_size: 64 }, 'q/config.json'),
    /q\/config\.json: 'vocab_size' \(vocabulary size\), 'max_position_embeddings' \(maximum positions\), 'num_hidden_layers' \(number of layers\), 'num_attention_heads' \(number of attention heads\), 'intermediate_size' \(MLP width\) are missing; a qwen2 config/);
  t.throws(() => normaliseConfig({ model_type: 'opt', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 2, vocab_size: 100, max_position_embeddings: 64 }), /'ffn_dim' \(MLP width\) is missing; a opt config/);
  // null counts as missing, as transformers would then use its class default.
  t.throws(() => normaliseConfig({ ...g2, n_head: null }), /'n_head' \(number of attention heads\) is missing/);
  // HF's genuinely optional keys keep their HF defaults: n_inner (4 x n_embd), layer_norm_epsilon 1e-5, num_key_value_heads = heads.
  t.match(normaliseConfig(g2), { intermediate: 256, normEps: 1e-5 });
  t.match(normaliseConfig({ model_type: 'llama', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 2, intermediate_size: 128, vocab_size: 100, max_position_embeddings: 64 }), { kvHeads: 4, normEps: 1e-6, ropeTheta: 10000 });
  void n_embd;
  t.end();
});
